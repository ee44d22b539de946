import pytest

from executions import counters
from executions.lifecycle import transition
from executions.models import ExecutionCounter, Status

from ..factories import ExecutionFactory

pytestmark = pytest.mark.django_db


def test_rebuild_then_transitions_keep_counts_exact(workspace, agent_version):
    running = ExecutionFactory.create_batch(3, agent_version=agent_version, status=Status.RUNNING)
    ExecutionFactory(agent_version=agent_version, status=Status.FAILED)
    counters.rebuild(workspace)
    assert counters.total(workspace=workspace) == 4
    assert counters.total(workspace=workspace, statuses=[Status.RUNNING]) == 3

    transition(running[0], Status.COMPLETED)
    transition(running[1], Status.FAILED)
    assert counters.total(workspace=workspace, statuses=[Status.RUNNING]) == 1
    assert counters.total(workspace=workspace, statuses=[Status.FAILED]) == 2
    assert counters.total(workspace=workspace, statuses=[Status.COMPLETED]) == 1
    assert counters.total(workspace=workspace) == 4


def test_count_created_adds_new_rows_and_agents(workspace, agent_version):
    new = ExecutionFactory.create_batch(2, agent_version=agent_version, status=Status.PENDING)
    counters.count_created(new)
    counters.count_created(new[:1])
    row = ExecutionCounter.objects.get(workspace=workspace, status=Status.PENDING)
    assert row.count == 3
    assert counters.total(workspace=workspace, agent_names=["invoice-extractor"]) == 3
    assert counters.total(workspace=workspace, agent_names=["nobody"]) == 0
