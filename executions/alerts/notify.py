"""Telling people: a signed webhook (the control plane's HMAC scheme, body documented in
docs/alerts.md), a Slack-compatible incoming webhook, and email through Django's email
backend. Each attempt is a task of the queue and a Notification row; a failed attempt
is retried with exponential backoff up to ALERT_NOTIFY_MAX_ATTEMPTS. Webhook targets
go through the guarded sender (control/outbound.py): public addresses only, unless
WEBHOOK_ALLOWED_TARGETS says otherwise.
"""

import json
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.tasks import task
from django.utils import timezone

from executions.control import outbound
from executions.control.dispatch import EVENT_HEADER, SIGNATURE_HEADER, USER_AGENT, sign

from . import metrics
from .models import AlertEvent, Channel, Metric, Notification

TIMEOUT_SECONDS = 10


def max_attempts() -> int:
    return int(getattr(settings, "ALERT_NOTIFY_MAX_ATTEMPTS", 4))


def backoff_seconds(attempt: int) -> float:
    return float(getattr(settings, "ALERT_NOTIFY_BACKOFF_SECONDS", 30)) * (2 ** (attempt - 1))


def channels(rule) -> list[tuple[str, str]]:
    found = []
    if rule.webhook_url:
        found.append((Channel.WEBHOOK, rule.webhook_url))
    if rule.slack_url:
        found.append((Channel.SLACK, rule.slack_url))
    if rule.emails.strip():
        found.append((Channel.EMAIL, rule.emails))
    return found


def enqueue(event: AlertEvent, *, attempt: int = 1, channel: str | None = None, delay=None):
    """Queue the event's notifications once the transaction commits; nothing for a
    muted or snoozed rule (its history still records the change)."""
    rule = event.rule
    if rule.muted or rule.snoozed:
        return
    for name, _target in channels(rule):
        if channel is not None and name != channel:
            continue
        queued = send.using()
        if delay and queued.get_backend().supports_defer:
            queued = queued.using(run_after=timezone.now() + timedelta(seconds=delay))
        transaction.on_commit(lambda q=queued, n=name: q.enqueue(event.pk, str(n), attempt))


def links(event: AlertEvent) -> dict:
    rule = event.rule
    scope = metrics.scope_of(rule)
    site = settings.SITE_URL.rstrip("/")
    return {
        "rule": f"{site}{rule.get_absolute_url()}",
        "chart": site + metrics.chart_link(rule, scope),
        "runs": site + metrics.table_link(rule, scope, event.window_start, event.window_end),
    }


def payload(event: AlertEvent) -> dict:
    """The signed webhook's body (docs/alerts.md): JSON-native values only."""
    rule = event.rule
    return {
        "event": f"alert.{event.state}",
        "id": event.pk,
        "at": event.at.isoformat(),
        "state": event.state,
        "message": event.message,
        "rule": {
            "id": rule.pk,
            "name": rule.name,
            "metric": rule.metric,
            "scope": rule.scope_label,
            "window_minutes": rule.window_minutes,
            "condition": rule.condition,
            "threshold": float(rule.threshold) if rule.threshold is not None else None,
            "baseline_factor": (
                float(rule.baseline_factor) if rule.baseline_factor is not None else None
            ),
            "min_runs": rule.min_runs,
            "sustain": rule.sustain,
        },
        "value": event.value,
        "baseline": event.baseline,
        "limit": event.threshold,
        "runs": event.runs,
        "window": {"start": event.window_start.isoformat(), "end": event.window_end.isoformat()},
        "workspace": rule.workspace.slug,
        "links": links(event),
    }


def slack_message(event: AlertEvent) -> dict:
    link = links(event)
    icon = {"firing": ":rotating_light:", "resolved": ":white_check_mark:"}.get(event.state, "")
    text = f"{icon} {event.message}".strip()
    return {
        "text": f"{text} <{link['chart']}|Chart> · <{link['runs']}|Runs>",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"<{link['chart']}|Chart> · <{link['runs']}|Runs>"
                        f" · <{link['rule']}|Rule>",
                    }
                ],
            },
        ],
    }


def _post(url: str, body: dict, headers: dict) -> tuple[int | None, str]:
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    signed = dict(headers)
    if "secret" in signed:
        secret = signed.pop("secret")
        if secret:
            signed[SIGNATURE_HEADER] = sign(raw, secret)
    outcome = outbound.post(url, raw, signed, timeout=TIMEOUT_SECONDS)
    error = outcome.error
    if not error and (outcome.status is None or not 200 <= outcome.status < 300):
        error = f"HTTP {outcome.status}"
    return outcome.status, error


@task()
def send(event_id: int, channel: str, attempt: int = 1) -> dict:
    """One attempt on one channel, logged; a failure queues the next attempt."""
    event = AlertEvent.objects.select_related("rule__workspace").filter(pk=event_id).first()
    if event is None:
        return {"skipped": "the event no longer exists"}
    rule = event.rule
    status_code, error = None, ""
    if channel == Channel.WEBHOOK:
        target, body = rule.webhook_url, payload(event)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_HEADER: body["event"],
            "secret": rule.webhook_secret,
        }
        status_code, error = _post(target, body, headers)
    elif channel == Channel.SLACK:
        target, body = rule.slack_url, slack_message(event)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        status_code, error = _post(target, body, headers)
    else:
        target = rule.emails
        link = links(event)
        body = {
            "subject": f"[Runboard] {event.message}"[:200],
            "text": f"{event.message}\n\nChart: {link['chart']}\nRuns: {link['runs']}\n"
            f"Rule: {link['rule']}\n",
        }
        recipients = [a.strip() for a in rule.emails.split(",") if a.strip()]
        try:
            send_mail(body["subject"], body["text"], None, recipients)
        except Exception as exc:  # any mail failure is logged and retried
            error = f"{type(exc).__name__}: {exc}"[:500]
    succeeded = not error
    Notification.objects.create(
        event=event,
        channel=channel,
        target=target[:1000],
        attempt=attempt,
        succeeded=succeeded,
        status_code=status_code,
        error=error,
        body=body,
    )
    if not succeeded and attempt < max_attempts():
        with transaction.atomic():
            enqueue(event, attempt=attempt + 1, channel=channel, delay=backoff_seconds(attempt))
    return {"attempt": attempt, "succeeded": succeeded}


__all__ = ["Metric", "enqueue", "payload", "send", "slack_message"]
