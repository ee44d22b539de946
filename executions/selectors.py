"""Reads of executions, always scoped to one workspace."""

from django.db.models import QuerySet
from django.http import Http404

from agents.models import Workspace

from .models import Batch, Execution


def execution_list(*, workspace: Workspace) -> QuerySet[Execution]:
    return Execution.objects.filter(workspace=workspace).select_related("schedule", "batch")


def execution_get(*, workspace: Workspace, pk) -> Execution:
    """One execution of this workspace; another workspace's id is a 404, like a missing one."""
    execution = (
        Execution.objects.filter(workspace=workspace, pk=pk)
        .select_related("agent", "agent_version", "batch", "schedule", "rerun_of", "triggered_by")
        .first()
    )
    if execution is None:
        raise Http404("No such execution in this workspace.")
    return execution


def batch_get(*, workspace: Workspace, pk) -> Batch:
    batch = Batch.objects.filter(workspace=workspace, pk=pk).select_related("agent_version").first()
    if batch is None:
        raise Http404("No such batch in this workspace.")
    return batch
