"""Stops: terminated (the system's), who stopped a run and when it paused, open steps
ending with their run, the neutral box for deliberate stops, and the header's Ended."""

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import counters, lifecycle
from executions.control import selectors as control_selectors
from executions.control import services as control
from executions.models import Execution, Status, StepStatus
from tests.executions.detail_html import parse
from tests.factories import ExecutionFactory, StepFactory

pytestmark = pytest.mark.django_db


def open_run(agent_version, status=Status.RUNNING, **fields):
    started = timezone.now() - timedelta(seconds=30)
    execution = ExecutionFactory(
        agent_version=agent_version, status=status, started_at=started, completed_at=None, **fields
    )
    done = StepFactory(
        execution=execution,
        sequence=1,
        status=StepStatus.COMPLETED,
        started_at=started,
        ended_at=started + timedelta(seconds=1),
        duration_ms=1000,
    )
    running = StepFactory(
        execution=execution,
        sequence=2,
        kind="approval",
        status=StepStatus.RUNNING,
        started_at=started + timedelta(seconds=2),
    )
    return execution, done, running


# --- terminated -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "status", [Status.PENDING, Status.QUEUED, Status.RUNNING, Status.AWAITING_APPROVAL]
)
def test_terminate_stops_any_active_run_and_says_who_and_why(agent_version, status):
    execution = ExecutionFactory(agent_version=agent_version, status=status, completed_at=None)
    counters.count_created([execution])
    lifecycle.terminate(execution, reason="Budget of $5.00 per day spent.", by="budget")
    stored = Execution.objects.get(pk=execution.pk)
    assert stored.status == Status.TERMINATED and stored.is_terminal
    assert stored.stopped_by == "budget"
    assert stored.failure_reason == "Budget of $5.00 per day spent."
    assert stored.completed_at is not None
    workspace = execution.workspace
    assert counters.total(workspace=workspace, statuses=[Status.TERMINATED]) == 1
    assert counters.total(workspace=workspace, statuses=[status]) == 0


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.CANCELLED, Status.TERMINATED])
def test_an_ended_run_cannot_be_terminated(agent_version, status):
    execution = ExecutionFactory(agent_version=agent_version, status=status)
    with pytest.raises(lifecycle.IllegalTransition, match=r"final|already"):
        lifecycle.terminate(execution, reason="limit", by="budget")
    assert Execution.objects.get(pk=execution.pk).status == status


def test_terminate_needs_a_reason(agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    with pytest.raises(ValueError, match="reason"):
        lifecycle.terminate(execution, reason="  ", by="budget")
    assert Execution.objects.get(pk=execution.pk).status == Status.RUNNING


def test_terminated_is_distinct_from_cancelled_and_timed_out():
    assert Status.TERMINATED not in {Status.CANCELLED, Status.TIMED_OUT}
    assert lifecycle.parse_status("terminated") == Status.TERMINATED
    assert lifecycle.allowed_targets(Status.TERMINATED) == frozenset()


def test_execution_terminate_tells_a_runtime_that_has_the_run(
    hooked_version, receiver, django_capture_on_commit_callbacks
):
    execution = ExecutionFactory(agent_version=hooked_version, status=Status.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        control.execution_terminate(execution=execution, reason="Out of memory", by="resources")
    [request] = receiver.requests
    assert request.event == "cancel"
    assert request.json["execution"]["status"] == "terminated"


# --- who stopped it, when it paused ----------------------------------------------------


def test_cancel_records_who_stopped_it(agent_version, alice):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    control.execution_cancel(execution=execution, user=alice)
    assert Execution.objects.get(pk=execution.pk).stopped_by == "alice"


def test_reject_records_the_reviewer_and_timeouts_the_time_limit(agent_version, bob):
    paused = ExecutionFactory(agent_version=agent_version, status=Status.AWAITING_APPROVAL)
    control.execution_reject(execution=paused, user=bob, note="no")
    assert Execution.objects.get(pk=paused.pk).stopped_by == "bob"
    agent_version.time_limit_seconds = 60
    agent_version.save()
    late = ExecutionFactory(
        agent_version=agent_version,
        status=Status.RUNNING,
        started_at=timezone.now() - timedelta(minutes=5),
    )
    from executions.control import scheduling

    scheduling.timeouts_sweep()
    late.refresh_from_db()
    assert (late.status, late.stopped_by) == (Status.TIMED_OUT, "time limit")


def test_a_run_that_ends_by_itself_has_no_stopper(agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    lifecycle.transition(execution, Status.COMPLETED, by="ignored")
    assert Execution.objects.get(pk=execution.pk).stopped_by == ""


def test_pausing_stamps_paused_at_and_the_queue_waits_from_it(workspace, agent_version):
    now = timezone.now()
    # Created first, but paused last: it has waited the least.
    young = ExecutionFactory(
        agent_version=agent_version, status=Status.RUNNING, created_at=now - timedelta(days=3)
    )
    old = ExecutionFactory(
        agent_version=agent_version, status=Status.RUNNING, created_at=now - timedelta(hours=1)
    )
    lifecycle.transition(old, Status.AWAITING_APPROVAL, at=now - timedelta(days=2))
    lifecycle.transition(young, Status.AWAITING_APPROVAL, at=now - timedelta(minutes=5))
    # A later write bumps updated_at of the old one; the order must not follow it.
    Execution.objects.filter(pk=old.pk).update(updated_at=now)
    assert Execution.objects.get(pk=old.pk).paused_at == now - timedelta(days=2)
    queue = list(control_selectors.approval_queue(workspace=workspace))
    assert [e.pk for e in queue] == [old.pk, young.pk]


def test_the_review_queue_says_how_long_since_the_pause(alice_client, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    lifecycle.transition(
        execution, Status.AWAITING_APPROVAL, at=timezone.now() - timedelta(days=2, hours=1)
    )
    Execution.objects.filter(pk=execution.pk).update(updated_at=timezone.now())
    doc = parse(alice_client.get("/executions/approvals/").content)
    card = doc.one("li", id=f"approval-{execution.pk}")
    assert "waiting 2 days" in " ".join(card.text.split())


# --- open steps end with their run ------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "step_status"),
    [
        ("cancel", StepStatus.CANCELLED),
        ("reject", StepStatus.REJECTED),
        ("terminate", StepStatus.TERMINATED),
        (Status.FAILED, StepStatus.FAILED),
        (Status.TIMED_OUT, StepStatus.TIMED_OUT),
        (Status.COMPLETED, StepStatus.COMPLETED),
    ],
)
def test_open_steps_end_with_their_run(agent_version, alice, end, step_status):
    execution, done, running = open_run(agent_version, Status.AWAITING_APPROVAL)
    if end == "cancel":
        control.execution_cancel(execution=execution, user=alice)
    elif end == "reject":
        control.execution_reject(execution=execution, user=alice)
    elif end == "terminate":
        lifecycle.terminate(execution, reason="limit", by="budget")
    else:
        if end in {Status.COMPLETED, Status.FAILED}:
            lifecycle.transition(execution, Status.RUNNING)
        lifecycle.transition(execution, end)
    running.refresh_from_db()
    done.refresh_from_db()
    execution.refresh_from_db()
    assert running.status == step_status
    assert running.ended_at == execution.completed_at
    took = running.ended_at - running.started_at
    assert running.duration_ms == int(took.total_seconds() * 1000)
    assert done.status == StepStatus.COMPLETED and done.duration_ms == 1000


def test_a_cancelled_page_has_no_spinning_step(alice_client, agent_version, alice):
    execution, _, running = open_run(agent_version)
    control.execution_cancel(execution=execution, user=alice)
    doc = parse(alice_client.get(execution.get_absolute_url()).content)
    assert not doc.select(cls="mark-running")
    assert not doc.select(cls="counter-running")
    card = doc.one("li", id=f"step-{running.sequence}")
    assert "running…" not in card.text


# --- the neutral box ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop", "title", "by"),
    [
        ("cancel", "Cancelled", "alice"),
        ("reject", "Rejected", "alice"),
        ("terminate", "Terminated by the system", "budget"),
    ],
)
def test_a_deliberate_stop_gets_a_neutral_box_with_who_when_why(
    alice_client, agent_version, alice, stop, title, by
):
    execution, _, _ = open_run(agent_version, Status.AWAITING_APPROVAL)
    if stop == "cancel":
        control.execution_cancel(execution=execution, user=alice, reason="Wrong file")
        reason = "Wrong file"
    elif stop == "reject":
        control.execution_reject(execution=execution, user=alice, note="Not ours")
        reason = "Rejected by alice: Not ours"
    else:
        lifecycle.terminate(execution, reason="Daily budget spent", by="budget")
        reason = "Daily budget spent"
    execution.refresh_from_db()
    doc = parse(alice_client.get(execution.get_absolute_url()).content)
    assert not doc.select(cls="failure-box")
    box = doc.one("div", cls="stopped-box")
    assert box.one("h2").text.strip() == title
    facts = {
        dt.text.strip(): dd.text.strip()
        for dt, dd in zip(box.select(tag="dt"), box.select(tag="dd"), strict=True)
    }
    assert facts["By"] == by
    assert facts["Reason"] == reason
    when = timezone.localtime(execution.completed_at).strftime("%Y-%m-%d %H:%M:%S")
    assert facts["When"] == when
    assert "Input that caused it" not in doc.text


def test_a_failure_keeps_the_red_box(alice_client, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.FAILED, error="Boom")
    doc = parse(alice_client.get(execution.get_absolute_url()).content)
    assert doc.one("div", cls="failure-box")
    assert not doc.select(cls="stopped-box")


# --- the header's Ended ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "ended"),
    [
        (Status.QUEUED, "not started"),
        (Status.PENDING, "not started"),
        (Status.RUNNING, "running"),
        (Status.AWAITING_APPROVAL, "paused since"),
    ],
)
def test_ended_says_what_an_unfinished_run_is_doing(alice_client, agent_version, status, ended):
    execution = ExecutionFactory(
        agent_version=agent_version,
        status=status,
        completed_at=None,
        paused_at=timezone.now() if status == Status.AWAITING_APPROVAL else None,
    )
    doc = parse(alice_client.get(execution.get_absolute_url()).content)
    facts = doc.one("dl", id="run-facts")
    for div in facts.select(tag="div"):
        if div.one("dt").text.strip() == "Ended":
            assert div.one("dd").text.strip().startswith(ended)
            break
    else:
        raise AssertionError("no Ended fact")
