"""Execute, rerun, cancel, approve, reject and batches, with the runtime told by a real
webhook (the suite's immediate task backend delivers on commit)."""

import pytest

from agents.models import Agent, AgentVersion
from executions import counters, lifecycle
from executions.control import dispatch
from executions.control import services as control
from executions.models import Execution, Priority, Source, Status, WebhookDelivery

from ..factories import AgentVersionFactory, ExecutionFactory
from .conftest import SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(django_capture_on_commit_callbacks):
    """Call a service and let its on-commit work (the webhook) happen."""

    def call(service, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return service(**kwargs)

    return call


# --- execute --------------------------------------------------------------------------


def test_execute_queues_validates_and_counts(workspace, hooked_version, alice, receiver, run):
    execution = run(
        control.execution_execute,
        workspace=workspace,
        agent_version=hooked_version,
        inputs={"file": "a.pdf", "pages": 2},
        priority="high",
        metadata={"env": "prod"},
        triggered_by=alice,
        source=Source.DASHBOARD,
    )
    execution.refresh_from_db()
    assert execution.status == Status.QUEUED and execution.queued_at
    assert execution.priority == Priority.HIGH
    assert execution.agent_name == "invoice-extractor" and execution.version_name == "v1"
    assert execution.triggered_by == alice and execution.source == Source.DASHBOARD
    assert execution.request["path"] == "/api/v1/agents/invoice-extractor:v1/execute"
    assert execution.request["body"]["inputs"] == {"file": "a.pdf", "pages": 2}
    assert counters.total(workspace=workspace, statuses=[Status.QUEUED]) == 1
    assert receiver.executions() == [str(execution.id)]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "inputs: 'file' is a required property"),
        ({"file": "a.pdf", "pages": "two"}, "inputs.pages: 'two' is not of type 'integer'"),
        (["a.pdf"], "inputs: must be a JSON object, got list."),
    ],
)
def test_inputs_are_checked_against_the_input_schema(workspace, hooked_version, inputs, message):
    with pytest.raises(control.InvalidRequest) as info:
        control.execution_execute(workspace=workspace, agent_version=hooked_version, inputs=inputs)
    assert message in info.value.messages
    assert not Execution.objects.exists()


def test_bad_priority_and_metadata_name_the_field(workspace, hooked_version):
    with pytest.raises(control.InvalidRequest, match="priority: 'urgent' is not a priority"):
        control.execution_execute(
            workspace=workspace, agent_version=hooked_version, inputs={"file": "a"},
            priority="urgent",
        )  # fmt: skip
    with pytest.raises(control.InvalidRequest, match="metadata: must be a JSON object"):
        control.execution_execute(
            workspace=workspace, agent_version=hooked_version, inputs={"file": "a"},
            metadata=[1],
        )  # fmt: skip


def test_resolve_by_name_and_version(workspace, hooked_version, other_workspace):
    AgentVersionFactory(agent=hooked_version.agent, version="v2")
    assert control.agent_version_resolve(workspace=workspace, ref="invoice-extractor:v1").pk == (
        hooked_version.pk
    )
    assert control.agent_version_resolve(workspace=workspace, ref="invoice-extractor").version == (
        "v2"
    )
    with pytest.raises(control.NotFound, match="has no version 'v9'"):
        control.agent_version_resolve(workspace=workspace, ref="invoice-extractor:v9")
    with pytest.raises(control.NotFound, match="no agent named"):
        control.agent_version_resolve(workspace=other_workspace, ref="invoice-extractor:v1")


def test_inline_config_creates_and_reuses_an_ad_hoc_agent(workspace):
    config = {"prompt": "Extract the total.", "model": "gpt-4o-mini"}
    first = control.execution_execute(workspace=workspace, config=config, inputs={"x": 1})
    second = control.execution_execute(workspace=workspace, config=dict(config), inputs={})
    other = control.execution_execute(workspace=workspace, config={"prompt": "Other"}, inputs={})
    assert first.agent_version_id == second.agent_version_id != other.agent_version_id
    assert first.agent_name == "inline" and first.version_name.startswith("inline-")
    assert AgentVersion.objects.get(pk=first.agent_version_id).config == config
    assert Agent.objects.filter(workspace=workspace).count() == 1


def test_execute_needs_either_a_version_or_a_config(workspace, hooked_version):
    with pytest.raises(control.InvalidRequest, match="either an agent"):
        control.execution_execute(workspace=workspace, inputs={})
    with pytest.raises(control.InvalidRequest, match="either an agent"):
        control.execution_execute(
            workspace=workspace, agent_version=hooked_version, config={"a": 1}, inputs={}
        )


def test_another_workspaces_version_is_not_found(other_workspace, hooked_version):
    with pytest.raises(control.NotFound):
        control.execution_execute(
            workspace=other_workspace, agent_version=hooked_version, inputs={"file": "a"}
        )


def test_an_idempotency_key_returns_the_first_execution(workspace, hooked_version):
    kwargs = {"workspace": workspace, "agent_version": hooked_version, "inputs": {"file": "a"}}
    first = control.execution_execute(idempotency_key="k1", **kwargs)
    again = control.execution_execute(idempotency_key="k1", **kwargs)
    assert first.pk == again.pk and Execution.objects.count() == 1


# --- rerun ----------------------------------------------------------------------------


def test_rerun_copies_the_run_and_links_both_ways(hooked_version, bob, receiver, run):
    original = ExecutionFactory(
        agent_version=hooked_version,
        status=Status.FAILED,
        input={"file": "b.pdf"},
        metadata={"ticket": 7},
        priority=Priority.HIGH,
    )
    rerun = run(control.execution_rerun, execution=original, triggered_by=bob)
    assert rerun.pk != original.pk
    assert (rerun.agent_version, rerun.input, rerun.metadata, rerun.priority) == (
        hooked_version,
        {"file": "b.pdf"},
        {"ticket": 7},
        Priority.HIGH,
    )
    assert rerun.source == Source.RERUN and rerun.status == Status.QUEUED
    assert rerun.rerun_of == original and list(original.reruns.all()) == [rerun]
    # Same webhook: the version's runtime gets it.
    assert receiver.executions() == [str(rerun.id)]


@pytest.mark.parametrize("status", [Status.RUNNING, Status.QUEUED, Status.AWAITING_APPROVAL])
def test_rerun_of_an_unfinished_execution_is_illegal(hooked_version, status):
    original = ExecutionFactory(agent_version=hooked_version, status=status)
    with pytest.raises(lifecycle.IllegalTransition, match=f"is {status}; only a finished"):
        control.execution_rerun(execution=original)
    assert Execution.objects.count() == 1


def test_rerun_of_a_removed_agent_is_illegal(hooked_version):
    original = ExecutionFactory(agent_version=hooked_version, status=Status.COMPLETED)
    hooked_version.agent.delete()
    original.refresh_from_db()
    with pytest.raises(control.IllegalAction, match="has been removed"):
        control.execution_rerun(execution=original)


# --- cancel ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status", [Status.PENDING, Status.QUEUED, Status.RUNNING, Status.AWAITING_APPROVAL]
)
def test_active_executions_can_be_cancelled(hooked_version, alice, status):
    execution = ExecutionFactory(agent_version=hooked_version, status=status)
    control.execution_cancel(execution=execution, user=alice)
    execution.refresh_from_db()
    assert execution.status == Status.CANCELLED
    assert execution.failure_reason == "Cancelled by alice."
    assert execution.completed_at is not None


def test_cancelling_twice_is_harmless(hooked_version, receiver, run):
    execution = ExecutionFactory(agent_version=hooked_version, status=Status.RUNNING)
    run(control.execution_cancel, execution=execution)
    stale = Execution.objects.get(pk=execution.pk)
    run(control.execution_cancel, execution=stale)
    # A copy read before the first cancel landed: still harmless.
    run(control.execution_cancel, execution=ExecutionFactory.build(
        pk=execution.pk, workspace=execution.workspace, status=Status.RUNNING,
        agent_version=hooked_version,
    ))  # fmt: skip
    after = Execution.objects.get(pk=execution.pk)
    assert after.status == Status.CANCELLED
    # The first cancel's stamps stand; the runtime heard of it once.
    assert (after.completed_at, after.failure_reason) == (stale.completed_at, stale.failure_reason)
    assert [r.event for r in receiver.requests] == ["cancel"]


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.FAILED, Status.REJECTED])
def test_cancelling_a_finished_execution_is_illegal(hooked_version, status):
    execution = ExecutionFactory(agent_version=hooked_version, status=status)
    with pytest.raises(lifecycle.IllegalTransition, match="final"):
        control.execution_cancel(execution=execution)
    execution.refresh_from_db()
    assert execution.status == status


def test_the_runtime_is_told_of_a_cancel_by_a_signed_webhook(hooked_version, receiver, run):
    execution = ExecutionFactory(agent_version=hooked_version, status=Status.RUNNING)
    run(control.execution_cancel, execution=execution, reason="Wrong file")
    [request] = receiver.requests
    assert request.event == "cancel"
    assert dispatch.verify(request.body, SECRET, request.headers["X-Runboard-Signature"])
    assert request.json["execution"]["status"] == "cancelled"
    assert request.json["reason"] == "Wrong file"


def test_a_queued_execution_never_sent_needs_no_cancel_webhook(hooked_version, receiver, run):
    execution = ExecutionFactory(agent_version=hooked_version, status=Status.QUEUED)
    run(control.execution_cancel, execution=execution)
    assert receiver.requests == []


def test_bulk_cancel_skips_finished_and_foreign_executions(workspace, hooked_version, charlie):
    running = ExecutionFactory.create_batch(2, agent_version=hooked_version, status=Status.RUNNING)
    done = ExecutionFactory(agent_version=hooked_version, status=Status.COMPLETED)
    foreign = ExecutionFactory(status=Status.RUNNING)
    ids = [e.pk for e in [*running, done, foreign]]
    assert control.executions_cancel(workspace=workspace, ids=ids) == (2, 1)
    assert Execution.objects.get(pk=foreign.pk).status == Status.RUNNING
    assert Execution.objects.get(pk=done.pk).status == Status.COMPLETED


# --- approvals ------------------------------------------------------------------------


def test_approve_resumes_and_tells_the_runtime(hooked_version, bob, receiver, run):
    execution = ExecutionFactory(
        agent_version=hooked_version,
        status=Status.AWAITING_APPROVAL,
        approval_request={"action": "pay invoice", "amount": 1250},
    )
    run(control.execution_approve, execution=execution, user=bob, note="Amount checked.")
    execution.refresh_from_db()
    assert execution.status == Status.RUNNING
    assert execution.decided_by == bob and execution.decided_at is not None
    assert execution.approval_note == "Amount checked."
    [request] = receiver.requests
    assert request.event == "approved"
    assert request.json["approval"] == {
        "decision": "approved",
        "note": "Amount checked.",
        "decided_by": "bob",
        "decided_at": execution.decided_at.isoformat(),
    }


def test_reject_stops_with_the_note_and_tells_the_runtime(hooked_version, bob, receiver, run):
    execution = ExecutionFactory(agent_version=hooked_version, status=Status.AWAITING_APPROVAL)
    run(control.execution_reject, execution=execution, user=bob, note="Wrong vendor")
    execution.refresh_from_db()
    assert execution.status == Status.REJECTED
    assert execution.failure_reason == "Rejected by bob: Wrong vendor"
    assert execution.decided_by == bob
    assert [r.event for r in receiver.requests] == ["rejected"]
    assert receiver.requests[0].json["approval"]["note"] == "Wrong vendor"


@pytest.mark.parametrize("service", [control.execution_approve, control.execution_reject])
@pytest.mark.parametrize("status", [Status.COMPLETED, Status.RUNNING, Status.QUEUED])
def test_deciding_without_a_pending_approval_is_illegal(hooked_version, bob, service, status):
    execution = ExecutionFactory(agent_version=hooked_version, status=status)
    with pytest.raises(lifecycle.IllegalTransition, match="only an execution awaiting approval"):
        service(execution=execution, user=bob)
    execution.refresh_from_db()
    assert execution.status == status and execution.decided_by is None


def test_an_approval_decided_twice_is_refused_the_second_time(hooked_version, bob, alice):
    execution = ExecutionFactory(agent_version=hooked_version, status=Status.AWAITING_APPROVAL)
    control.execution_approve(execution=execution, user=bob)
    with pytest.raises(lifecycle.IllegalTransition):
        control.execution_reject(execution=Execution.objects.get(pk=execution.pk), user=alice)
    assert Execution.objects.get(pk=execution.pk).decided_by == bob


# --- batches --------------------------------------------------------------------------


def test_batch_executes_every_input_as_one_batch(workspace, hooked_version, alice, receiver, run):
    inputs = [{"file": f"{n}.pdf"} for n in range(3)]
    batch = run(
        control.batch_execute,
        workspace=workspace,
        agent_version=hooked_version,
        inputs=inputs,
        triggered_by=alice,
        priority="low",
    )
    executions = list(batch.executions.order_by("metadata__batch_index"))
    assert [e.input for e in executions] == inputs
    assert {(e.status, e.source, e.priority) for e in executions} == {
        (Status.QUEUED, Source.BATCH, Priority.LOW)
    }
    assert batch.agent_version == hooked_version and batch.created_by == alice
    assert counters.total(workspace=workspace, statuses=[Status.QUEUED]) == 3
    assert sorted(receiver.executions()) == sorted(str(e.id) for e in executions)


def test_a_bad_item_starts_nothing_and_names_its_index(workspace, hooked_version):
    with pytest.raises(control.InvalidRequest) as info:
        control.batch_execute(
            workspace=workspace,
            agent_version=hooked_version,
            inputs=[{"file": "a"}, {"pages": 1}, {"file": 3}],
        )
    assert info.value.messages == [
        "inputs[1]: 'file' is a required property",
        "inputs[2].file: 3 is not of type 'string'",
    ]
    assert not Execution.objects.exists()


def test_an_empty_or_oversized_batch_is_refused(workspace, hooked_version):
    with pytest.raises(control.InvalidRequest, match="non-empty list"):
        control.batch_execute(workspace=workspace, agent_version=hooked_version, inputs=[])
    with pytest.raises(control.InvalidRequest, match="at most 1000"):
        control.batch_execute(
            workspace=workspace, agent_version=hooked_version, inputs=[{"file": "a"}] * 1001
        )


def test_deliveries_are_logged_per_attempt(hooked_version, receiver, run, settings):
    settings.RUNBOARD_WEBHOOK_BACKOFF_SECONDS = 0
    receiver.statuses = [500, 200]
    execution = run(
        control.execution_execute,
        workspace=hooked_version.agent.workspace,
        agent_version=hooked_version,
        inputs={"file": "a"},
    )
    assert list(
        WebhookDelivery.objects.filter(execution=execution).values_list("attempt", "succeeded")
    ) == [(1, False), (2, True)]


def test_a_new_checkpoint_clears_the_previous_decision(hooked_version, bob):
    execution = ExecutionFactory(agent_version=hooked_version, status=Status.RUNNING)
    control.execution_request_approval(execution=execution, request={"step": 1})
    control.execution_approve(execution=execution, user=bob, note="fine")
    control.execution_request_approval(execution=execution, request={"step": 2})
    execution.refresh_from_db()
    assert execution.status == Status.AWAITING_APPROVAL
    assert execution.approval_request == {"step": 2}
    assert (execution.decided_by, execution.decided_at, execution.approval_note) == (None, None, "")


def test_cancel_wins_over_a_stale_copy_of_a_run_that_moved_on(hooked_version):
    execution = ExecutionFactory(agent_version=hooked_version, status=Status.QUEUED)
    stale = Execution.objects.get(pk=execution.pk)
    lifecycle.transition(execution, Status.RUNNING)  # the runtime started it meanwhile
    control.execution_cancel(execution=stale)
    execution.refresh_from_db()
    assert execution.status == Status.CANCELLED and execution.started_at is not None


def test_cancel_of_a_stale_copy_of_a_finished_run_is_refused(hooked_version):
    execution = ExecutionFactory(agent_version=hooked_version, status=Status.RUNNING)
    stale = Execution.objects.get(pk=execution.pk)
    lifecycle.transition(execution, Status.COMPLETED)
    with pytest.raises(lifecycle.IllegalTransition, match="is completed, which is final"):
        control.execution_cancel(execution=stale)
    assert Execution.objects.get(pk=execution.pk).status == Status.COMPLETED
