"""Dispatch through the real database queue to a real local webhook receiver."""

from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from executions import lifecycle
from executions.control import dispatch
from executions.control import services as control
from executions.models import Priority, Status, WebhookDelivery

from ..factories import AgentVersionFactory
from .conftest import SECRET, run_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("db_queue")]


def execute(version, **kwargs):
    kwargs.setdefault("inputs", {"file": "https://example.com/a.pdf"})
    return control.execution_execute(
        workspace=version.agent.workspace, agent_version=version, **kwargs
    )


def test_execute_delivers_a_signed_webhook_the_runtime_can_verify(hooked_version, receiver):
    execution = execute(hooked_version, metadata={"customer": "acme"}, priority="high")
    assert execution.status == Status.QUEUED
    assert DBTaskResult.objects.filter(status=TaskResultStatus.READY).count() == 1

    run_worker()

    [request] = receiver.requests
    assert request.event == "execute"
    signature = request.headers["X-Runboard-Signature"]
    assert signature.startswith("sha256=")
    assert dispatch.verify(request.body, SECRET, signature)
    assert not dispatch.verify(request.body, "another-secret", signature)
    assert not dispatch.verify(request.body + b" ", SECRET, signature)
    body = request.json
    assert body["execution"]["id"] == str(execution.id)
    assert body["execution"]["input"] == {"file": "https://example.com/a.pdf"}
    assert body["execution"]["metadata"] == {"customer": "acme"}
    assert body["execution"]["priority"] == "high"
    assert body["links"]["dashboard"].endswith(f"/executions/{execution.id}/")

    [row] = WebhookDelivery.objects.filter(execution=execution)
    assert row.succeeded and row.status_code == 200 and row.attempt == 1
    assert request.headers["X-Runboard-Delivery"] == str(row.pk)
    assert row.request_body["execution"]["id"] == str(execution.id)
    assert not DBTaskResult.objects.exclude(status=TaskResultStatus.SUCCESSFUL).exists()


def test_an_unsigned_body_is_not_accepted_by_verify():
    assert not dispatch.verify(b"{}", SECRET, "")
    assert not dispatch.verify(b"{}", SECRET, "sha256=" + "0" * 64)


def test_higher_priority_first_then_oldest(hooked_version, receiver):
    now = timezone.now()
    low = execute(hooked_version, priority="low")
    old_normal = execute(hooked_version, priority="normal")
    high = execute(hooked_version, priority="high")
    new_normal = execute(hooked_version, priority=Priority.NORMAL)
    # Enqueue order alone must not decide: make the first normal one clearly older.
    DBTaskResult.objects.filter(args_kwargs__args__0=str(old_normal.id)).update(
        enqueued_at=now - timedelta(minutes=5)
    )

    run_worker()

    assert receiver.executions() == [
        str(high.id),
        str(old_normal.id),
        str(new_normal.id),
        str(low.id),
    ]


def test_control_events_jump_the_queue(hooked_version, receiver):
    running = execute(hooked_version)
    run_worker()
    receiver.requests.clear()
    lifecycle.transition(running, Status.RUNNING)
    more = execute(hooked_version, priority="high")
    control.execution_cancel(execution=running)

    run_worker()

    assert [r.event for r in receiver.requests] == ["cancel", "execute"]
    assert receiver.requests[1].json["execution"]["id"] == str(more.id)


def test_retries_with_backoff_until_the_runtime_accepts(hooked_version, receiver):
    receiver.statuses = [500, 503, 200]
    execution = execute(hooked_version)

    run_worker()

    rows = list(WebhookDelivery.objects.filter(execution=execution).order_by("attempt"))
    assert [(r.attempt, r.status_code, r.succeeded) for r in rows] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert rows[0].error == "HTTP 500 INTERNAL SERVER ERROR"
    assert len(receiver.requests) == 3
    # Each retry is a new signed request of the same execution.
    assert {r.json["execution"]["id"] for r in receiver.requests} == {str(execution.id)}
    assert [r.json["attempt"] for r in receiver.requests] == [1, 2, 3]
    execution.refresh_from_db()
    assert execution.status == Status.QUEUED


def test_retries_wait_exponentially_longer(hooked_version, receiver, settings):
    settings.RUNBOARD_WEBHOOK_BACKOFF_SECONDS = 30
    receiver.statuses = [500]
    execution = execute(hooked_version)
    before = timezone.now()

    run_worker()  # attempt 1 fails; attempt 2 is not due yet, so the worker stops

    assert len(receiver.requests) == 1
    retry = DBTaskResult.objects.get(status=TaskResultStatus.READY)
    assert retry.args_kwargs["args"] == [str(execution.id), "execute", 2]
    assert before + timedelta(seconds=29) < retry.run_after < timezone.now() + timedelta(seconds=31)
    assert dispatch.backoff_seconds(1) == 30
    assert dispatch.backoff_seconds(2) == 60
    assert dispatch.backoff_seconds(4) == 240


def test_an_endpoint_that_stays_down_fails_the_execution_with_the_reason(workspace, settings):
    settings.RUNBOARD_WEBHOOK_MAX_ATTEMPTS = 3
    settings.WEBHOOK_ALLOWED_TARGETS = ["127.0.0.1", "::1"]
    # Nothing listens on port 9 (discard) here: every attempt is a refused connection.
    version = AgentVersionFactory(
        agent__workspace=workspace, webhook_url="http://127.0.0.1:9/hook", webhook_secret=SECRET
    )
    execution = execute(version, inputs={})

    run_worker()

    rows = list(WebhookDelivery.objects.filter(execution=execution).order_by("attempt"))
    assert [r.attempt for r in rows] == [1, 2, 3]
    assert all(r.status_code is None and "Could not connect" in r.error for r in rows)
    execution.refresh_from_db()
    assert execution.status == Status.FAILED
    assert "did not accept the execution after 3 attempts" in execution.failure_reason
    assert "Could not connect to http://127.0.0.1:9/hook" in execution.failure_reason


def test_a_runtime_answering_errors_fails_the_execution_after_the_last_attempt(
    hooked_version, receiver, settings
):
    settings.RUNBOARD_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.statuses = [502]
    execution = execute(hooked_version)

    run_worker()

    execution.refresh_from_db()
    assert execution.status == Status.FAILED
    assert "HTTP 502" in execution.failure_reason
    assert WebhookDelivery.objects.filter(execution=execution).count() == 2


def test_cancelled_while_queued_is_never_delivered(hooked_version, receiver):
    execution = execute(hooked_version)
    control.execution_cancel(execution=execution)

    run_worker()

    assert receiver.requests == []
    assert not WebhookDelivery.objects.filter(execution=execution).exists()


def test_a_version_without_webhook_stays_queued_for_a_polling_runtime(workspace):
    version = AgentVersionFactory(agent__workspace=workspace, webhook_url="")
    execution = execute(version, inputs={})
    assert not DBTaskResult.objects.exists()
    execution.refresh_from_db()
    assert execution.status == Status.QUEUED


def test_a_claim_left_by_a_dead_worker_is_delivered_again(hooked_version, receiver):
    """The crash at the worst point: the task is claimed and its attempt is recorded,
    then the worker dies before it can write the outcome. (test_killed_worker.py does
    the same with a real process and SIGKILL.)"""
    execution = execute(hooked_version)
    task = DBTaskResult.objects.get()
    task.claim("worker-that-dies")
    WebhookDelivery.objects.create(
        execution=execution, event="execute", attempt=1, url=receiver.url
    )

    run_worker()
    assert receiver.requests == []  # a claimed task is not anyone else's yet

    assert dispatch.tasks_reclaim(lease_seconds=3600) == 0  # still within its lease
    DBTaskResult.objects.update(started_at=timezone.now() - timedelta(minutes=5))
    assert dispatch.tasks_reclaim(lease_seconds=60) == 1
    run_worker()

    assert receiver.executions() == [str(execution.id)]
    first, second = WebhookDelivery.objects.filter(execution=execution).order_by("pk")
    assert first.error == dispatch.ABANDONED and not first.succeeded
    assert second.succeeded and second.attempt == 1
    task.refresh_from_db()
    assert task.status == TaskResultStatus.SUCCESSFUL
    assert task.worker_ids == ["worker-that-dies", "test-worker"]


def test_reclaim_leaves_other_tasks_alone(hooked_version):
    execute(hooked_version)
    DBTaskResult.objects.update(
        status=TaskResultStatus.RUNNING,
        started_at=timezone.now() - timedelta(hours=1),
        task_path="somewhere.else.long_report",
    )
    assert dispatch.tasks_reclaim(lease_seconds=60) == 0
