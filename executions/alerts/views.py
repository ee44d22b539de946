"""Alert pages: the rules with what fires now, a rule's history, and the rule form.
Everyone in the workspace reads them; only its admins create, edit, snooze or delete."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from agents.decorators import with_workspace
from agents.models import Role

from . import metrics, selectors, services
from .forms import AlertRuleForm

SNOOZE_HOURS = {"0": 0, "1": 1, "4": 4, "24": 24}


def _is_admin(request) -> bool:
    return request.membership.role == Role.ADMIN


def _forbidden(request):
    return render(request, "alerts/forbidden.html", status=403)


@with_workspace
def rule_list(request):
    rules = list(selectors.rule_list(workspace=request.workspace))
    firing = [r for r in rules if r.state == "firing"]
    return render(
        request,
        "alerts/rule_list.html",
        {"rules": rules, "firing": firing, "can_edit": _is_admin(request)},
    )


@with_workspace
def rule_detail(request, pk):
    rule = selectors.rule_get(workspace=request.workspace, pk=pk)
    events = selectors.rule_history(rule=rule)
    scope = metrics.scope_of(rule)
    for event in events:
        event.runs_url = metrics.table_link(rule, scope, event.window_start, event.window_end)
    return render(
        request,
        "alerts/rule_detail.html",
        {
            "rule": rule,
            "events": events,
            "chart_url": metrics.chart_link(rule, scope),
            # The view may have changed since the rule was made.
            "view_problems": metrics.view_problems(rule.saved_view, rule.workspace_id)
            if rule.saved_view_id
            else [],
            "can_edit": _is_admin(request),
        },
    )


@require_http_methods(["GET", "POST"])
@with_workspace
def rule_edit(request, pk=None):
    if not _is_admin(request):
        return _forbidden(request)
    rule = selectors.rule_get(workspace=request.workspace, pk=pk) if pk else None
    form = AlertRuleForm(
        request.POST if request.method == "POST" else None,
        instance=rule,
        workspace=request.workspace,
    )
    if request.method == "POST" and form.is_valid():
        saved = services.rule_save(form=form, workspace=request.workspace, user=request.user)
        messages.success(request, f"Saved the rule “{saved.name}”.")
        return redirect(saved.get_absolute_url())
    status = 422 if request.method == "POST" else 200
    return render(request, "alerts/rule_form.html", {"form": form, "rule": rule}, status=status)


@require_POST
@with_workspace
def rule_delete(request, pk):
    if not _is_admin(request):
        return _forbidden(request)
    rule = selectors.rule_get(workspace=request.workspace, pk=pk)
    services.rule_delete(rule=rule)
    messages.success(request, f"Deleted the rule “{rule.name}”.")
    return redirect("alerts:list")


@require_POST
@with_workspace
def rule_snooze(request, pk):
    if not _is_admin(request):
        return _forbidden(request)
    rule = selectors.rule_get(workspace=request.workspace, pk=pk)
    hours = request.POST.get("hours", "")
    if hours not in SNOOZE_HOURS:
        messages.error(request, f"hours: choose one of {', '.join(SNOOZE_HOURS)}.")
        return redirect(rule.get_absolute_url())
    services.rule_snooze(rule=rule, hours=SNOOZE_HOURS[hours])
    messages.success(
        request, f"Snoozed for {hours} h." if SNOOZE_HOURS[hours] else "Snooze cleared."
    )
    return redirect(rule.get_absolute_url())
