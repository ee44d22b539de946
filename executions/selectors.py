"""Scoped reads every door shares: one execution or artifact of a workspace (else 404).

Package-specific reads live in table/, detail/ and control/ selectors."""

from django.db.models import (
    QuerySet,
)
from django.http import Http404

from agents.models import Workspace

from .models import Artifact, Execution


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


def artifact_get(*, workspace: Workspace, pk) -> Artifact:
    """One artifact of this workspace; another workspace's id is a 404, like a missing one."""
    artifact = Artifact.objects.filter(workspace=workspace, pk=pk).first()
    if artifact is None:
        raise Http404("No such artifact in this workspace.")
    return artifact
