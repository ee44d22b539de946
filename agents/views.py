from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import selectors, services
from .decorators import with_workspace
from .models import Role


@require_POST
def workspace_switch(request):
    workspace = selectors.workspace_for_switch(user=request.user, slug=request.POST.get("slug", ""))
    request.session[selectors.SESSION_KEY] = workspace.id
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "executions:list"
    return redirect(target)


@require_GET
@with_workspace
def agent_list(request):
    agents = list(selectors.agent_list(workspace=request.workspace))
    lines = _sparklines(request)
    for agent in agents:
        agent.sparkline = lines.get(agent.name)
    return render(request, "agents/agent_list.html", {"agents": agents})


def _sparklines(request, agent_name: str | None = None) -> dict:
    """Runs per day of the last 7 days by agent name, as SVG: from the overview's
    rollups (imported here, not at the top, because executions imports agents)."""
    from django.utils import timezone

    from executions.overview.charts import sparkline
    from executions.overview.selectors import agent_sparklines

    lines = agent_sparklines(
        workspace=request.workspace, tz=timezone.get_current_timezone(), agent_name=agent_name
    )
    return {
        name: {"svg": sparkline(v, f"{name}: runs per day, last 7 days"), "runs": sum(v)}
        for name, v in lines.items()
    }


@require_GET
@with_workspace
def agent_detail(request, slug):
    agent = selectors.agent_get(workspace=request.workspace, slug=slug)
    return render(
        request,
        "agents/agent_detail.html",
        {
            "agent": agent,
            "versions": selectors.agent_version_list(agent=agent),
            "schedules": selectors.schedule_list(workspace=request.workspace, agent=agent),
            "sparkline": _sparklines(request, agent.name).get(agent.name),
        },
    )


# --- API keys: workspace admins create (shown once) and revoke them ---------------------


def _admins_only(request):
    if request.membership.role != Role.ADMIN:
        return render(
            request,
            "agents/api_keys.html",
            {"forbidden": True},
            status=403,
        )
    return None


@require_http_methods(["GET", "POST"])
@with_workspace
def api_key_list(request):
    """The workspace's API keys. A new key's raw value is in this one response only:
    it is rendered, not redirected to, so it never lands in a session or a URL."""
    if (refused := _admins_only(request)) is not None:
        return refused
    created, raw_key, error = None, None, ""
    if request.method == "POST":
        try:
            created, raw_key = services.api_key_create(
                workspace=request.workspace,
                name=request.POST.get("name", ""),
                created_by=request.user,
            )
        except ValueError as exc:
            error = str(exc)
    response = render(
        request,
        "agents/api_keys.html",
        {
            "keys": selectors.api_key_list(workspace=request.workspace),
            "created": created,
            "raw_key": raw_key,
            "error": error,
            "name": request.POST.get("name", "") if error else "",
        },
        status=422 if error else 200,
    )
    if raw_key:
        response["Cache-Control"] = "no-store"
    return response


@require_POST
@with_workspace
def api_key_revoke(request, pk):
    if (refused := _admins_only(request)) is not None:
        return refused
    key = services.api_key_revoke(workspace=request.workspace, pk=pk)
    messages.success(request, f"Revoked “{key.name}” ({key.prefix}…). It no longer authenticates.")
    return redirect("api_keys")
