"""Automation rule pages: the rules, a rule with its log and the backfill button, and
the rule form. Everyone in the workspace reads them; only its admins create, edit or
backfill. Plain links and forms: nothing here needs JavaScript."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents.decorators import with_workspace
from agents.models import Role

from . import selectors, services
from .forms import RuleForm
from .models import RuleRun


def _is_admin(request) -> bool:
    return request.membership.role == Role.ADMIN


def _forbidden(request):
    return render(request, "automation/forbidden.html", status=403)


@require_GET
@with_workspace
def rule_list(request):
    rules = selectors.rule_list(workspace=request.workspace)
    return render(
        request, "automation/rule_list.html", {"rules": rules, "can_edit": _is_admin(request)}
    )


@require_GET
@with_workspace
def rule_detail(request, pk):
    rule = selectors.rule_get(workspace=request.workspace, pk=pk)
    outcome = request.GET.get("outcome", "")
    status = 200
    if outcome and outcome not in RuleRun.Outcome.values:
        messages.error(request, f"outcome: choose one of {', '.join(RuleRun.Outcome.values)}.")
        outcome, status = "", 400
    context = {
        "rule": rule,
        "log": selectors.rule_log(rule=rule, outcome=outcome),
        "outcome": outcome,
        "outcomes": RuleRun.Outcome.choices,
        "limit": selectors.LOG_ROWS,
        "can_edit": _is_admin(request),
    }
    return render(request, "automation/rule_detail.html", context, status=status)


@require_http_methods(["GET", "POST"])
@with_workspace
def rule_edit(request, pk=None):
    if not _is_admin(request):
        return _forbidden(request)
    rule = selectors.rule_get(workspace=request.workspace, pk=pk) if pk else None
    form = RuleForm(
        request.POST if request.method == "POST" else None,
        instance=rule,
        workspace=request.workspace,
    )
    if request.method == "POST" and form.is_valid():
        saved = services.rule_save(form=form, workspace=request.workspace, user=request.user)
        messages.success(request, f"Saved the rule “{saved.name}”.")
        return redirect("automation:detail", pk=saved.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "automation/rule_form.html", {"form": form, "rule": rule}, status=status)


@require_POST
@with_workspace
def rule_backfill(request, pk):
    if not _is_admin(request):
        return _forbidden(request)
    rule = selectors.rule_get(workspace=request.workspace, pk=pk)
    services.rule_backfill_enqueue(rule=rule)
    messages.success(
        request,
        "Backfill queued: the task applies the rule to past runs it has not decided on yet; "
        "their decisions appear in the log below.",
    )
    return redirect("automation:detail", pk=rule.pk)
