import pytest

from agents.models import Membership
from feedback.queues.models import Queue
from feedback.queues.services import items_add, queue_create
from tests.factories import ExecutionFactory


@pytest.fixture
def alice_m(alice, workspace):
    return Membership.objects.get(user=alice, workspace=workspace)


@pytest.fixture
def bob_m(bob, workspace):
    return Membership.objects.get(user=bob, workspace=workspace)


@pytest.fixture
def runs(agent_version):
    return [
        ExecutionFactory(agent_version=agent_version, output={"invoice_id": f"INV-{i}", "total": i})
        for i in range(3)
    ]


@pytest.fixture
def queue(alice_m, runs) -> Queue:
    q = queue_create(membership=alice_m, name="Invoices", fields=["/invoice_id", "/total"])
    items_add(queue=q, membership=alice_m, executions=[r.pk for r in runs])
    return q


@pytest.fixture
def order(queue):
    """The queue's runs in the order claims take them."""
    from feedback.queues.models import QueueItem

    return list(
        QueueItem.objects.filter(queue=queue).order_by("id").values_list("execution_id", flat=True)
    )
