from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from . import selectors
from .decorators import with_workspace


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
    agents = selectors.agent_list(workspace=request.workspace)
    return render(request, "agents/agent_list.html", {"agents": agents})


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
        },
    )
