"""Reads of the control plane: the review queue, the run form's versions, schedules,
deliveries."""

from django.db.models import F, QuerySet
from django.http import Http404

from agents.models import AgentVersion, Schedule, Workspace
from executions.models import Execution


def approval_queue(*, workspace: Workspace) -> QuerySet[Execution]:
    """Executions waiting for a reviewer, the longest-waiting first."""
    return (
        Execution.objects.filter(workspace=workspace, status="awaiting_approval")
        .select_related("agent", "agent_version")
        # paused_at, not updated_at: any later write (a note, a counter) bumps that.
        .order_by(F("paused_at").asc(nulls_first=True), "created_at", "id")
    )


def run_versions(*, workspace: Workspace, agent=None) -> QuerySet[AgentVersion]:
    """Agent versions an operator may execute from the run form, newest first per agent."""
    versions = AgentVersion.objects.filter(agent__workspace=workspace).select_related("agent")
    if agent is not None:
        versions = versions.filter(agent=agent)
    return versions.order_by("agent__name", "-created_at")


def schedule_get(*, workspace: Workspace, pk) -> Schedule:
    schedule = (
        Schedule.objects.filter(workspace=workspace, pk=pk)
        .select_related("agent_version__agent")
        .first()
    )
    if schedule is None:
        raise Http404("No such schedule in this workspace.")
    return schedule


def executions_by_ids(*, workspace: Workspace, ids) -> list[Execution]:
    """The executions of this workspace among `ids` (others are silently not there)."""
    return list(
        Execution.objects.filter(workspace=workspace, pk__in=list(ids)).order_by("-created_at")
    )


def delivery_list(*, execution: Execution):
    """The webhook delivery log of one execution, in the order the attempts were made."""
    return execution.deliveries.order_by("created_at", "pk")
