"""The timeout sweep: executions past their version's time limit become timed_out."""

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import counters
from executions.control import scheduling
from executions.models import Status

from ..factories import AgentVersionFactory, ExecutionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(workspace):
    return AgentVersionFactory(agent__workspace=workspace, time_limit_seconds=60)


def make(version, status, **times):
    return ExecutionFactory(agent_version=version, status=status, **times)


def test_running_past_the_limit_times_out_with_a_reason(version, workspace):
    now = timezone.now()
    late = make(version, Status.RUNNING, started_at=now - timedelta(seconds=61))
    fresh = make(version, Status.RUNNING, started_at=now - timedelta(seconds=59))
    counters.rebuild(workspace)

    assert scheduling.timeouts_sweep(now=now) == 1

    late.refresh_from_db()
    fresh.refresh_from_db()
    assert late.status == Status.TIMED_OUT
    assert late.failure_reason == (
        f"Timed out: ran longer than the time limit of 60 s of {late.agent_label}."
    )
    assert late.completed_at == now and late.duration_ms == 61_000
    assert fresh.status == Status.RUNNING
    assert counters.total(workspace=workspace, statuses=[Status.TIMED_OUT]) == 1


def test_each_version_has_its_own_limit(workspace, version):
    now = timezone.now()
    patient = AgentVersionFactory(agent__workspace=workspace, time_limit_seconds=3600)
    quick = make(version, Status.RUNNING, started_at=now - timedelta(minutes=5))
    slow = make(patient, Status.RUNNING, started_at=now - timedelta(minutes=5))
    scheduling.timeouts_sweep(now=now)
    quick.refresh_from_db()
    slow.refresh_from_db()
    assert (quick.status, slow.status) == (Status.TIMED_OUT, Status.RUNNING)


def test_a_run_stuck_in_the_queue_times_out_too(version):
    now = timezone.now()
    stuck = make(version, Status.QUEUED, started_at=None, queued_at=now - timedelta(minutes=2))
    scheduling.timeouts_sweep(now=now)
    stuck.refresh_from_db()
    assert stuck.status == Status.TIMED_OUT
    assert "waited in the queue longer than the time limit of 60 s" in stuck.failure_reason


def test_waiting_for_a_person_does_not_count(version):
    now = timezone.now()
    waiting = make(version, Status.AWAITING_APPROVAL, started_at=now - timedelta(hours=3))
    resumed = make(
        version,
        Status.RUNNING,
        started_at=now - timedelta(hours=3),
        decided_at=now - timedelta(seconds=30),
    )
    assert scheduling.timeouts_sweep(now=now) == 0
    waiting.refresh_from_db()
    resumed.refresh_from_db()
    assert (waiting.status, resumed.status) == (Status.AWAITING_APPROVAL, Status.RUNNING)
    assert scheduling.timeouts_sweep(now=now + timedelta(seconds=31)) == 1


def test_finished_executions_are_left_alone(version):
    long_ago = timezone.now() - timedelta(days=1)
    done = make(version, Status.COMPLETED, started_at=long_ago, created_at=long_ago)
    assert scheduling.timeouts_sweep() == 0
    done.refresh_from_db()
    assert done.status == Status.COMPLETED


def test_the_runtime_is_told_to_stop(version, receiver, django_capture_on_commit_callbacks):
    version.webhook_url = receiver.url
    version.save()
    make(version, Status.RUNNING, started_at=timezone.now() - timedelta(minutes=5))
    with django_capture_on_commit_callbacks(execute=True):
        scheduling.timeouts_sweep()
    [request] = receiver.requests
    assert request.event == "cancel"
    assert request.json["execution"]["status"] == "timed_out"
    assert "time limit" in request.json["reason"]
