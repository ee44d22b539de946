"""Handing executions to their runtimes: signed webhooks sent through Django's task queue.

Every webhook is one `deliver` task in the database-backed queue (django-tasks-db),
enqueued only once the transaction that decided to send it has committed. A task
makes one HTTP attempt, writes it to the delivery log (WebhookDelivery), and on
failure enqueues the next attempt with exponential backoff; after the last attempt
an execute event fails the execution with the reason.

Order: the queue runs higher task priority first, then the oldest. Execution
priority maps onto task priority, and control events (cancel, approval decisions)
go ahead of all new work, so a cancel never waits behind a thousand queued runs.

At least once: a worker claims a task by marking it RUNNING. A worker killed
mid-delivery leaves its claim behind; `tasks_reclaim` (run by the scheduler loop)
puts claims older than the lease back in the queue, and another worker delivers
again. The execution id and event let a runtime ignore the duplicate.
"""

import contextlib
import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.tasks import TaskResultStatus, task
from django.urls import reverse
from django.utils import timezone

from executions import lifecycle
from executions.models import Execution, Priority, Status, WebhookDelivery

from . import outbound

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Runboard-Signature"
EVENT_HEADER = "X-Runboard-Event"
DELIVERY_HEADER = "X-Runboard-Delivery"
USER_AGENT = "Runboard-Webhooks/1"

Event = WebhookDelivery.Event

TASK_PRIORITY = {Priority.LOW: -10, Priority.NORMAL: 0, Priority.HIGH: 10}
CONTROL_PRIORITY = 20

ABANDONED = (
    "No response was recorded: the worker stopped during this attempt, "
    "so the queue delivered it again."
)


def _setting(name: str, default):
    return getattr(settings, name, default)


def max_attempts() -> int:
    return _setting("RUNBOARD_WEBHOOK_MAX_ATTEMPTS", 5)


def backoff_seconds(attempt: int) -> float:
    """Delay before attempt `attempt + 1`: base, 2*base, 4*base... (2, 4, 8, 16 s by default)."""
    return _setting("RUNBOARD_WEBHOOK_BACKOFF_SECONDS", 2.0) * (2 ** (attempt - 1))


def sign(body: bytes, secret: str) -> str:
    """The signature header value: HMAC-SHA256 of the exact body bytes, hex encoded."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body: bytes, secret: str, header: str) -> bool:
    """What a runtime does with the header; constant-time, as a signature check must be."""
    return bool(header) and hmac.compare_digest(sign(body, secret), header.strip())


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def webhook_payload(execution: Execution, event: str) -> dict:
    """The JSON body a runtime receives: only JSON-native values, so the stored copy
    in the delivery log is byte-for-byte what was signed."""
    version = execution.agent_version
    site = settings.SITE_URL
    payload = {
        "event": event,
        "execution": {
            "id": str(execution.id),
            "status": execution.status,
            "agent": execution.agent_name,
            "version": execution.version_name,
            "input": execution.input,
            "metadata": execution.metadata,
            "priority": execution.get_priority_display(),
            "source": execution.source,
            "config": version.config if version else {},
            "time_limit_seconds": version.time_limit_seconds if version else None,
            "rerun_of": str(execution.rerun_of_id) if execution.rerun_of_id else None,
            "batch_id": str(execution.batch_id) if execution.batch_id else None,
            "schedule_id": execution.schedule_id,
            "created_at": _iso(execution.created_at),
        },
        "links": {
            "api": f"{site}/api/v1/executions/{execution.id}",
            "dashboard": site + reverse("executions:detail", args=[execution.id]),
        },
    }
    if event in {Event.APPROVED, Event.REJECTED}:
        payload["approval"] = {
            "decision": event,
            "note": execution.approval_note,
            "decided_by": execution.decided_by.get_username() if execution.decided_by else None,
            "decided_at": _iso(execution.decided_at),
        }
    if event == Event.CANCEL:
        payload["reason"] = execution.failure_reason
    return payload


def wants_delivery(execution: Execution) -> bool:
    version = execution.agent_version
    return bool(version and version.webhook_url)


def enqueue_delivery(execution: Execution, event: str, *, attempt: int = 1, delay=None) -> None:
    """Queue one webhook attempt once the surrounding transaction commits.

    Enqueueing before the commit could hand a runtime an execution that a rollback
    then erases, or one it cannot read yet.
    """
    if not wants_delivery(execution):
        return
    if event == Event.EXECUTE:
        priority = TASK_PRIORITY.get(execution.priority, 0)
    else:
        priority = CONTROL_PRIORITY
    queued = deliver.using(priority=priority)
    if delay and queued.get_backend().supports_defer:
        queued = queued.using(run_after=timezone.now() + timedelta(seconds=delay))
    execution_id = str(execution.id)
    transaction.on_commit(lambda: queued.enqueue(execution_id, str(event), attempt))


def _post(url: str, body: bytes, headers: dict) -> tuple[int | None, str, str]:
    """One HTTP POST through the guarded sender: (status code or None, excerpt, error)."""
    timeout = _setting("RUNBOARD_WEBHOOK_TIMEOUT_SECONDS", 10)
    outcome = outbound.post(url, body, headers, timeout=timeout)
    return outcome.status, outcome.excerpt, outcome.error


@task(takes_context=True)
def deliver(context, execution_id: str, event: str, attempt: int = 1) -> dict:
    """Make one webhook attempt for one event of one execution."""
    execution = (
        Execution.objects.select_related("agent_version", "decided_by")
        .filter(pk=execution_id)
        .first()
    )
    if execution is None:
        return {"skipped": "the execution no longer exists"}
    version = execution.agent_version
    if version is None or not version.webhook_url:
        return {"skipped": "the agent version has no webhook"}
    if event == Event.EXECUTE and execution.status != Status.QUEUED:
        # Cancelled while it waited, or a redelivery after the runtime already started it.
        return {"skipped": f"the execution is {execution.status}, no longer queued"}

    if context.task_result.attempts > 1:
        # Run again after a worker died mid-request: its row of this attempt has no outcome.
        WebhookDelivery.objects.filter(
            execution=execution,
            event=event,
            attempt=attempt,
            status_code__isnull=True,
            error="",
            succeeded=False,
        ).update(error=ABANDONED)

    payload = webhook_payload(execution, event)
    payload["attempt"] = attempt
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    row = WebhookDelivery.objects.create(
        execution=execution,
        event=event,
        attempt=attempt,
        url=version.webhook_url,
        request_body=payload,
    )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(row.pk),
        "X-Runboard-Execution": str(execution.id),
        "X-Runboard-Attempt": str(attempt),
    }
    if version.webhook_secret:
        headers[SIGNATURE_HEADER] = sign(body, version.webhook_secret)

    started = time.monotonic()
    status_code, response_text, error = _post(version.webhook_url, body, headers)
    duration_ms = int((time.monotonic() - started) * 1000)
    succeeded = status_code is not None and 200 <= status_code < 300
    if not succeeded and not error:
        error = f"HTTP {status_code}"

    with transaction.atomic():
        row.status_code = status_code
        row.response_body = response_text
        row.error = error
        row.duration_ms = duration_ms
        row.succeeded = succeeded
        row.save(
            update_fields=["status_code", "response_body", "error", "duration_ms", "succeeded"]
        )
        if not succeeded:
            if attempt < max_attempts():
                enqueue_delivery(
                    execution, event, attempt=attempt + 1, delay=backoff_seconds(attempt)
                )
            elif event == Event.EXECUTE:
                _give_up(execution, attempt, error)
    return {"attempt": attempt, "status_code": status_code, "succeeded": succeeded}


def _give_up(execution: Execution, attempts: int, last_error: str) -> None:
    execution.refresh_from_db(fields=["status"])
    if execution.status != Status.QUEUED:
        return
    reason = (
        f"The runtime's webhook did not accept the execution after {attempts} attempts "
        f"(last: {last_error})."
    )
    # Cancelled or started by the runtime in the meantime: its status stands.
    with contextlib.suppress(lifecycle.IllegalTransition):
        lifecycle.transition(execution, Status.FAILED, error=last_error, failure_reason=reason)


def tasks_reclaim(*, lease_seconds: float | None = None) -> int:
    """Put webhook tasks whose worker died back in the queue; returns how many.

    django-tasks-db marks a claimed task RUNNING and never looks at it again, so a
    worker killed mid-delivery would lose the job. One attempt is bounded by the HTTP
    timeout, so a claim older than the lease (several timeouts) has no live worker.
    """
    from django_tasks_db.models import DBTaskResult

    if lease_seconds is None:
        lease_seconds = _setting("RUNBOARD_TASK_LEASE_SECONDS", 60)
    cutoff = timezone.now() - timedelta(seconds=lease_seconds)
    return DBTaskResult.objects.filter(
        status=TaskResultStatus.RUNNING,
        started_at__lt=cutoff,
        task_path=deliver.module_path,
    ).update(status=TaskResultStatus.READY)
