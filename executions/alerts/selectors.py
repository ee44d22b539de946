"""Reads for the alert pages, always within one workspace."""

from django.db.models import Prefetch
from django.http import Http404

from .models import AlertEvent, AlertRule, Notification, State

HISTORY_ROWS = 200


def rule_list(*, workspace):
    return AlertRule.objects.filter(workspace=workspace).select_related(
        "agent_version__agent", "saved_view"
    )


def firing_list(*, workspace):
    return rule_list(workspace=workspace).filter(state=State.FIRING)


def rule_get(*, workspace, pk) -> AlertRule:
    rule = rule_list(workspace=workspace).filter(pk=pk).first()
    if rule is None:
        raise Http404("No such alert rule in this workspace.")
    return rule


def rule_history(*, rule: AlertRule) -> list[AlertEvent]:
    return list(
        AlertEvent.objects.filter(rule=rule).prefetch_related(
            Prefetch("notifications", queryset=Notification.objects.order_by("at", "id"))
        )[:HISTORY_ROWS]
    )
