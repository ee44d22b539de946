"""Alert notifications against real local HTTP servers (pytest-httpserver) and Django's
locmem email: the signed webhook's documented body, the Slack message, email,
retries with every attempt logged, mute and snooze, and the address rules."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from werkzeug import Response

from executions.alerts import evaluate
from executions.alerts.models import AlertRule, Notification, State
from executions.control import dispatch
from tests.factories import AgentVersionFactory, ExecutionFactory

pytestmark = pytest.mark.django_db

SECRET = "alert-secret"


@pytest.fixture
def loopback(settings):
    settings.WEBHOOK_ALLOWED_TARGETS = ["127.0.0.1", "::1"]
    settings.ALERT_NOTIFY_BACKOFF_SECONDS = 0
    settings.SITE_URL = "https://runboard.example"
    return settings


@pytest.fixture
def busy(workspace):
    """Three runs of agent bot in the last minutes: enough to fire a run-count rule."""
    version = AgentVersionFactory(agent__workspace=workspace, agent__name="bot")
    for i in range(3):
        ExecutionFactory(agent_version=version, created_at=timezone.now() - timedelta(minutes=i))
    return version


def firing_rule(workspace, **channels) -> AlertRule:
    return AlertRule.objects.create(
        workspace=workspace,
        name="Bot is busy",
        metric="run_count",
        agent_name="bot",
        window_minutes=15,
        threshold=Decimal(2),
        **channels,
    )


class Recorder:
    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.requests = []

    def __call__(self, request):
        self.requests.append((request.get_data(), dict(request.headers)))
        status = self.statuses[min(len(self.requests), len(self.statuses)) - 1]
        return Response("ok" if status < 300 else "boom", status=status)


def tick(capture):
    with capture(execute=True):
        evaluate.evaluate()


def test_the_signed_webhook_carries_the_documented_body(
    workspace, busy, loopback, httpserver, django_capture_on_commit_callbacks
):
    recorder = Recorder()
    httpserver.expect_request("/alert", method="POST").respond_with_handler(recorder)
    rule = firing_rule(workspace, webhook_url=httpserver.url_for("/alert"), webhook_secret=SECRET)
    tick(django_capture_on_commit_callbacks)
    [(body, headers)] = recorder.requests
    assert dispatch.verify(body, SECRET, headers["X-Runboard-Signature"])
    assert headers["X-Runboard-Event"] == "alert.firing"
    sent = json.loads(body)
    assert sent["state"] == "firing" and sent["value"] == 3.0 and sent["runs"] == 3
    assert sent["rule"]["id"] == rule.pk and sent["rule"]["threshold"] == 2.0
    assert sent["workspace"] == workspace.slug
    runs = sent["links"]["runs"]
    assert runs.startswith("https://runboard.example/executions/?agent=bot&after=")
    assert "&before=" in runs
    assert sent["links"]["chart"] == "https://runboard.example/overview/?range=24h&agent=bot"
    [logged] = Notification.objects.all()
    assert (logged.channel, logged.attempt, logged.succeeded, logged.status_code) == (
        "webhook",
        1,
        True,
        200,
    )


def test_slack_gets_an_incoming_webhook_message_with_links(
    workspace, busy, loopback, httpserver, django_capture_on_commit_callbacks
):
    recorder = Recorder()
    httpserver.expect_request("/slack", method="POST").respond_with_handler(recorder)
    firing_rule(workspace, slack_url=httpserver.url_for("/slack"))
    tick(django_capture_on_commit_callbacks)
    [(body, headers)] = recorder.requests
    message = json.loads(body)
    assert "Bot is busy is firing" in message["text"]
    assert "|Chart>" in message["text"] and "|Runs>" in message["text"]
    assert message["blocks"][0]["type"] == "section"
    assert "X-Runboard-Signature" not in headers


def test_email_goes_through_the_django_backend(
    workspace, busy, loopback, django_capture_on_commit_callbacks
):
    firing_rule(workspace, emails="ops@example.com, lead@example.com")
    tick(django_capture_on_commit_callbacks)
    [sent] = mail.outbox
    assert sent.to == ["ops@example.com", "lead@example.com"]
    assert sent.subject.startswith("[Runboard] Bot is busy is firing")
    assert "Runs: https://runboard.example/executions/?agent=bot" in sent.body
    assert Notification.objects.get().succeeded


def test_failures_are_retried_and_every_attempt_is_logged(
    workspace, busy, loopback, httpserver, django_capture_on_commit_callbacks
):
    loopback.ALERT_NOTIFY_MAX_ATTEMPTS = 4
    recorder = Recorder(statuses=[500, 503, 200])
    httpserver.expect_request("/alert", method="POST").respond_with_handler(recorder)
    firing_rule(workspace, webhook_url=httpserver.url_for("/alert"))
    tick(django_capture_on_commit_callbacks)
    attempts = list(Notification.objects.order_by("attempt").values_list("attempt", "succeeded"))
    assert attempts == [(1, False), (2, False), (3, True)]
    assert Notification.objects.get(attempt=1).error == "HTTP 500 INTERNAL SERVER ERROR"
    assert len(recorder.requests) == 3


def test_retries_stop_at_the_maximum(
    workspace, busy, loopback, httpserver, django_capture_on_commit_callbacks
):
    loopback.ALERT_NOTIFY_MAX_ATTEMPTS = 2
    httpserver.expect_request("/alert", method="POST").respond_with_handler(Recorder([500]))
    firing_rule(workspace, webhook_url=httpserver.url_for("/alert"))
    tick(django_capture_on_commit_callbacks)
    assert Notification.objects.filter(succeeded=False).count() == 2


def test_loopback_targets_are_refused_unless_allowed(
    workspace, busy, settings, httpserver, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_ALLOWED_TARGETS = []
    settings.ALERT_NOTIFY_MAX_ATTEMPTS = 1
    recorder = Recorder()
    httpserver.expect_request("/alert", method="POST").respond_with_handler(recorder)
    firing_rule(workspace, webhook_url=httpserver.url_for("/alert"))
    tick(django_capture_on_commit_callbacks)
    assert recorder.requests == []
    assert Notification.objects.get().error.startswith("refused")


@pytest.mark.parametrize("quiet", [{"muted": True}, {"snoozed_until": "future"}])
def test_muted_and_snoozed_rules_change_state_but_notify_nobody(
    workspace, busy, loopback, quiet, django_capture_on_commit_callbacks
):
    if "snoozed_until" in quiet:
        quiet = {"snoozed_until": timezone.now() + timedelta(hours=1)}
    rule = firing_rule(workspace, emails="ops@example.com", **quiet)
    tick(django_capture_on_commit_callbacks)
    rule.refresh_from_db()
    assert rule.state == State.FIRING
    assert rule.events.count() == 1
    assert mail.outbox == [] and not Notification.objects.exists()


def test_resolving_notifies_too(workspace, busy, loopback, django_capture_on_commit_callbacks):
    rule = firing_rule(workspace, emails="ops@example.com")
    tick(django_capture_on_commit_callbacks)
    AlertRule.objects.filter(pk=rule.pk).update(threshold=Decimal(50))
    tick(django_capture_on_commit_callbacks)
    assert [m.subject.split(":")[0] for m in mail.outbox] == [
        "[Runboard] Bot is busy is firing",
        "[Runboard] Bot is busy resolved",
    ]
