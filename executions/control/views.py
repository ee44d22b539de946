"""Dashboard actions of the control plane: run, rerun, cancel (one or many), approve,
reject, the review queue, and enabling or disabling schedules.

Every action is a plain POST form that redirects back (it works without JavaScript),
guarded by the role the workspace gives the user: operators and admins execute,
rerun and cancel; reviewers and admins approve and reject.
"""

import uuid

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from agents.decorators import with_workspace
from agents.selectors import agent_get
from executions import selectors as shared_selectors
from executions.lifecycle import IllegalTransition
from executions.models import Source

from . import scheduling, selectors
from . import services as control
from .forms import DecisionForm, RerunForm, RunForm

REVIEW_PAGE_SIZE = 25

ROLE_NEEDS = {
    "operate": ("can_operate", "operators and admins"),
    "review": ("can_review", "reviewers and admins"),
}


def _forbidden(request: HttpRequest, need: str, action: str) -> HttpResponse | None:
    """A 403 page saying who may do this, or None when the user may."""
    attribute, who = ROLE_NEEDS[need]
    if getattr(request.membership, attribute):
        return None
    return render(
        request,
        "executions/control/forbidden.html",
        {"action": action, "who": who, "role": request.membership.get_role_display()},
        status=403,
    )


def _safe(request: HttpRequest, url: str) -> str:
    """The URL if it stays on this site, else ""."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return ""


def _back(request: HttpRequest, default: str):
    """Back to the form's `next` when it is on this site, else to `default`."""
    target = _safe(request, request.POST.get("next", "")) or _safe(request, default)
    return redirect(target or reverse("executions:list"))


def _act(
    request: HttpRequest,
    pk,
    *,
    need: str,
    action: str,
    service,
    done: str,
    open_result: bool = False,
    **kwargs,
):
    """Run one service on one execution of this workspace and go back to where the form
    was (or, with open_result, to the execution the service returned).

    An action the status does not allow (IllegalTransition) changes nothing and says why.
    """
    refused = _forbidden(request, need, action)
    if refused:
        return refused
    execution = shared_selectors.execution_get(workspace=request.workspace, pk=pk)
    try:
        result = service(execution=execution, **kwargs)
    except IllegalTransition as exc:
        messages.error(request, str(exc))
        return _back(request, execution.get_absolute_url())
    messages.success(request, done)
    if open_result:
        return redirect(result.get_absolute_url())
    return _back(request, execution.get_absolute_url())


@require_POST
@with_workspace
def execution_cancel(request, pk):
    return _act(
        request,
        pk,
        need="operate",
        action="cancel executions",
        service=control.execution_cancel,
        done="Execution cancelled. Its runtime has been told to stop.",
        user=request.user,
        # The reason typed when asked; people read it in the run's stopped box.
        reason=request.POST.get("reason", "")[:2000],
    )


@require_http_methods(["GET", "POST"])
@with_workspace
def execution_rerun(request, pk):
    """GET: the Run form pre-filled with this run's parameters, to edit first. POST from
    that form: start it with what was edited; POST without (the "Rerun as is" button):
    the same run again, in one click."""
    if request.method == "POST" and "inputs" not in request.POST:
        return _act(
            request,
            pk,
            need="operate",
            action="rerun executions",
            service=control.execution_rerun,
            done="Rerun queued: this is the new execution.",
            open_result=True,
            triggered_by=request.user,
        )
    refused = _forbidden(request, "operate", "rerun executions")
    if refused:
        return refused
    execution = shared_selectors.execution_get(workspace=request.workspace, pk=pk)
    status = 200
    if request.method == "POST":
        form = RerunForm(request.POST, execution=execution)
        if form.is_valid():
            data = form.cleaned_data
            try:
                rerun = control.execution_rerun(
                    execution=execution,
                    triggered_by=request.user,
                    agent_version=data["version"],
                    inputs=data["inputs"],
                    priority=data["priority"],
                    metadata=data["metadata"],
                )
            except control.ControlError as exc:
                for message in exc.messages:
                    form.add_error("inputs" if message.startswith("inputs") else None, message)
            except IllegalTransition as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Rerun queued: this is the new execution.")
                return redirect(rerun.get_absolute_url())
        status = 400
    else:
        form = RerunForm(execution=execution)
    return render(
        request,
        "executions/control/rerun.html",
        {"form": form, "execution": execution, "can_rerun": execution.is_terminal},
        status=status,
    )


def _decide(request, pk, *, approve: bool):
    refused = _forbidden(request, "review", "approve or reject executions")
    if refused:
        return refused
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "note: too long; at most 5000 characters. Nothing was decided.")
        return _back(request, reverse("executions:detail", args=[pk]))
    return _act(
        request,
        pk,
        need="review",
        action="approve or reject executions",
        service=control.execution_approve if approve else control.execution_reject,
        done="Approved: the runtime carries on." if approve else "Rejected: the runtime stops.",
        user=request.user,
        note=form.cleaned_data["note"],
    )


@require_POST
@with_workspace
def execution_approve(request, pk):
    return _decide(request, pk, approve=True)


@require_POST
@with_workspace
def execution_reject(request, pk):
    return _decide(request, pk, approve=False)


BULK_LIMIT = 500


@require_http_methods(["GET", "POST"])
@with_workspace
def executions_bulk_cancel(request):
    """Cancel the executions ticked in the table. GET (the table's bulk form) shows what
    would be cancelled and asks to confirm; the confirmation POSTs. Works without JS."""
    refused = _forbidden(request, "operate", "cancel executions")
    if refused:
        return refused
    data = request.POST if request.method == "POST" else request.GET
    back = (
        _safe(request, data.get("next", ""))
        or _safe(request, request.headers.get("Referer", ""))
        or reverse("executions:list")
    )
    ids = []
    for raw in data.getlist("ids")[:BULK_LIMIT]:
        try:
            ids.append(uuid.UUID(raw))
        except ValueError:
            messages.error(request, f"ids: {raw!r} is not an execution id; nothing was cancelled.")
            return _back(request, back)
    if not ids:
        messages.error(request, "Select the executions to cancel first.")
        return _back(request, back)
    if request.method == "GET":
        executions = selectors.executions_by_ids(workspace=request.workspace, ids=ids)
        return render(
            request,
            "executions/control/bulk_cancel.html",
            {
                "executions": executions,
                "active": [e for e in executions if not e.is_terminal],
                "next": back,
            },
        )
    cancelled, skipped = control.executions_cancel(
        workspace=request.workspace, ids=ids, user=request.user
    )
    text = f"Cancelled {cancelled} execution{'s' if cancelled != 1 else ''}."
    if skipped:
        text += f" {skipped} had already ended and {'were' if skipped != 1 else 'was'} left alone."
    messages.success(request, text)
    return _back(request, back)


@require_http_methods(["GET", "POST"])
@with_workspace
def execution_run(request):
    """The run form: one execution, or a batch when the inputs are a list."""
    refused = _forbidden(request, "operate", "start executions")
    if refused:
        return refused
    agent = None
    slug = request.GET.get("agent") or request.POST.get("agent")
    if slug:
        agent = agent_get(workspace=request.workspace, slug=slug)
    if request.method == "POST":
        form = RunForm(request.POST, workspace=request.workspace, agent=agent)
        if form.is_valid():
            started = _start(request, form)
            if started is not None:
                return started
        status = 400
    else:
        form = RunForm(workspace=request.workspace, agent=agent)
        status = 200
    return render(
        request, "executions/control/run.html", {"form": form, "agent": agent}, status=status
    )


def _start(request, form: RunForm):
    data = form.cleaned_data
    try:
        if isinstance(data["inputs"], list):
            batch = control.batch_execute(
                workspace=request.workspace,
                agent_version=data["version"],
                inputs=data["inputs"],
                name=data["batch_name"],
                priority=data["priority"],
                metadata=data["metadata"],
                triggered_by=request.user,
            )
            count = len(data["inputs"])
            messages.success(request, f"Batch of {count} executions queued.")
            return redirect(batch.get_absolute_url())
        execution = control.execution_execute(
            workspace=request.workspace,
            agent_version=data["version"],
            inputs=data["inputs"],
            priority=data["priority"],
            metadata=data["metadata"],
            source=Source.DASHBOARD,
            triggered_by=request.user,
        )
    except control.ControlError as exc:
        for message in exc.messages:
            form.add_error("inputs" if message.startswith("inputs") else None, message)
        return None
    messages.success(request, "Execution queued.")
    return redirect(execution.get_absolute_url())


@require_http_methods(["GET"])
@with_workspace
def approval_queue(request):
    """Executions paused at a checkpoint, the longest-waiting first."""
    page = Paginator(selectors.approval_queue(workspace=request.workspace), REVIEW_PAGE_SIZE)
    return render(
        request,
        "executions/control/approvals.html",
        {
            "page": page.get_page(request.GET.get("page")),
            "can_review": request.membership.can_review,
        },
    )


@require_POST
@with_workspace
def schedule_toggle(request, pk):
    refused = _forbidden(request, "operate", "enable or disable schedules")
    if refused:
        return refused
    schedule = selectors.schedule_get(workspace=request.workspace, pk=pk)
    enabled = request.POST.get("enabled") == "1"
    scheduling.schedule_set_enabled(schedule=schedule, enabled=enabled)
    messages.success(request, f"Schedule “{schedule.name}” {'enabled' if enabled else 'disabled'}.")
    return _back(request, schedule.agent_version.agent.get_absolute_url())
