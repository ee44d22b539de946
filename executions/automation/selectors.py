"""Reads of automation rules for the dashboard, each scoped to a workspace."""

from django.db.models import OuterRef, Subquery
from django.http import Http404

from .models import Rule, RuleRun

LOG_ROWS = 100


def rule_list(*, workspace):
    """The workspace's rules with when each last decided on a run (an index lookup per
    rule: rulerun_log), not counts: a backfill can log a million runs for one rule."""
    return (
        Rule.objects.filter(workspace=workspace)
        .select_related("saved_view", "queue")
        .annotate(
            last_run=Subquery(
                RuleRun.objects.filter(rule=OuterRef("pk"))
                .order_by("-created_at", "-id")
                .values("created_at")[:1]
            )
        )
        .order_by("name")
    )


def rule_get(*, workspace, pk) -> Rule:
    try:
        return Rule.objects.select_related("saved_view", "queue").get(workspace=workspace, pk=pk)
    except (Rule.DoesNotExist, ValueError, TypeError):
        raise Http404("No such rule in this workspace.") from None


def rule_log(*, rule: Rule, outcome: str = "", limit: int = LOG_ROWS) -> list[RuleRun]:
    """The rule's newest decisions, optionally of one outcome."""
    runs = RuleRun.objects.filter(rule=rule)
    if outcome:
        runs = runs.filter(outcome=outcome)
    return list(
        runs.select_related("execution")
        .only(
            "execution_id",
            "outcome",
            "detail",
            "backfill",
            "created_at",
            "execution__agent_name",
            "execution__version_name",
            "execution__status",
        )
        .order_by("-created_at", "-id")[:limit]
    )
