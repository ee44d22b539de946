"""Reads for agents and workspaces. `membership_for_request` is the one helper that
decides which workspace a request may see; every other selector takes that workspace."""

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, QuerySet
from django.http import Http404

from .models import Agent, AgentVersion, ApiKey, Membership, Schedule, Workspace

SESSION_KEY = "workspace_id"


class NoWorkspace(Exception):
    """The user belongs to no workspace, so there is nothing they may see."""


def membership_for_request(request) -> Membership:
    """The membership whose workspace this request works in.

    The workspace chosen in the session wins while the user is still a member of it;
    otherwise the first workspace they belong to. Raises NoWorkspace for a user who
    belongs to none.
    """
    memberships = Membership.objects.filter(user=request.user).select_related("workspace")
    chosen = request.session.get(SESSION_KEY)
    if chosen is not None:
        membership = memberships.filter(workspace_id=chosen).first()
        if membership is not None:
            return membership
    membership = memberships.order_by("workspace__name").first()
    if membership is None:
        raise NoWorkspace
    request.session[SESSION_KEY] = membership.workspace_id
    return membership


def workspace_list_for_user(*, user) -> QuerySet[Workspace]:
    return Workspace.objects.filter(memberships__user=user).order_by("name")


def workspace_for_switch(*, user, slug: str) -> Workspace:
    try:
        # A form field's validators refuse what no slug holds (NUL among them, which
        # PostgreSQL would refuse with an error instead of finding nothing).
        slug = forms.SlugField().clean(slug)
    except ValidationError:
        raise Http404("No such workspace.") from None
    workspace = workspace_list_for_user(user=user).filter(slug=slug).first()
    if workspace is None:
        raise Http404("No such workspace.")
    return workspace


def agent_list(*, workspace: Workspace) -> QuerySet[Agent]:
    return (
        Agent.objects.filter(workspace=workspace)
        .annotate(
            version_count=Count("versions", distinct=True),
            last_version_at=Max("versions__created_at"),
        )
        .order_by("name")
    )


def agent_get(*, workspace: Workspace, slug: str) -> Agent:
    agent = Agent.objects.filter(workspace=workspace, slug=slug).first()
    if agent is None:
        raise Http404("No such agent in this workspace.")
    return agent


def agent_version_list(*, agent: Agent) -> QuerySet[AgentVersion]:
    return agent.versions.select_related("agent").order_by("-created_at")


def schedule_list(*, workspace: Workspace, agent: Agent | None = None) -> QuerySet[Schedule]:
    schedules = Schedule.objects.filter(workspace=workspace).select_related("agent_version__agent")
    if agent is not None:
        schedules = schedules.filter(agent_version__agent=agent)
    return schedules.order_by("name")


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key for a raw bearer token, or None."""
    if not raw_key or not raw_key.startswith(ApiKey.PREFIX):
        return None
    return (
        ApiKey.objects.active()
        .select_related("workspace")
        .filter(hashed_key=ApiKey.hash(raw_key))
        .first()
    )


def api_key_list(*, workspace: Workspace) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(workspace=workspace).select_related("created_by")
