"""Exact per-(workspace, agent, status) execution counts, kept up to date on every write.

Every code path that creates executions calls `count_created`; lifecycle.transition
calls `count_moved`; bulk loaders call `rebuild`. Updates are single-statement
increments, so concurrent writers never lose a count.
"""

from collections import Counter
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Count, F, Sum

from agents.models import Workspace

from .models import Execution, ExecutionCounter


def _bump(workspace_id: int, agent_name: str, status: str, delta: int) -> None:
    updated = ExecutionCounter.objects.filter(
        workspace_id=workspace_id, agent_name=agent_name, status=status
    ).update(count=F("count") + delta)
    if not updated:
        # First execution of this agent and status: create the row, or lose a race to
        # another writer that just did and increment theirs.
        with transaction.atomic():
            _, created = ExecutionCounter.objects.get_or_create(
                workspace_id=workspace_id,
                agent_name=agent_name,
                status=status,
                defaults={"count": delta},
            )
        if not created:
            ExecutionCounter.objects.filter(
                workspace_id=workspace_id, agent_name=agent_name, status=status
            ).update(count=F("count") + delta)


def count_created(executions: Iterable[Execution]) -> None:
    tally = Counter((e.workspace_id, e.agent_name, e.status) for e in executions)
    for (workspace_id, agent_name, status), n in tally.items():
        _bump(workspace_id, agent_name, status, n)


def count_deleted(executions: Iterable[Execution]) -> None:
    tally = Counter((e.workspace_id, e.agent_name, e.status) for e in executions)
    for (workspace_id, agent_name, status), n in tally.items():
        _bump(workspace_id, agent_name, status, -n)


def count_moved(execution: Execution, old_status: str, new_status: str) -> None:
    _bump(execution.workspace_id, execution.agent_name, old_status, -1)
    _bump(execution.workspace_id, execution.agent_name, new_status, 1)


def rebuild(workspace: Workspace | None = None) -> None:
    """Recount from the executions table: for bulk loads and repairs, not page views."""
    executions = Execution.objects.all()
    counters = ExecutionCounter.objects.all()
    if workspace is not None:
        executions = executions.filter(workspace=workspace)
        counters = counters.filter(workspace=workspace)
    rows = executions.values("workspace_id", "agent_name", "status").annotate(n=Count("pk"))
    with transaction.atomic():
        counters.delete()
        ExecutionCounter.objects.bulk_create(
            [
                ExecutionCounter(
                    workspace_id=r["workspace_id"],
                    agent_name=r["agent_name"],
                    status=r["status"],
                    count=r["n"],
                )
                for r in rows
            ],
            batch_size=1000,
        )


def total(*, workspace: Workspace, agent_names=None, statuses=None) -> int:
    counters = ExecutionCounter.objects.filter(workspace=workspace)
    if agent_names is not None:
        counters = counters.filter(agent_name__in=agent_names)
    if statuses is not None:
        counters = counters.filter(status__in=statuses)
    return counters.aggregate(n=Sum("count"))["n"] or 0
