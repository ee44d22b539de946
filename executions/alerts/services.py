"""Writes of alert rules (the form's save, delete, snooze), keeping the nav count."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .evaluate import firing_counts
from .models import AlertRule, State


def rule_save(*, form, workspace, user=None) -> AlertRule:
    """Save a validated AlertRuleForm. A changed rule starts its count again: the
    evaluations before the change measured something else."""
    with transaction.atomic():
        rule = form.save(commit=False)
        rule.workspace = workspace
        if rule.pk is None:
            rule.created_by = user
        elif form.changed_data and set(form.changed_data) - {"muted", "snoozed_until", "name"}:
            rule.breaches = rule.clears = 0
            if rule.state == State.PENDING:
                rule.state = State.OK
        if not rule.enabled and rule.state in (State.PENDING, State.FIRING):
            rule.state = State.OK
        rule.save()
        firing_counts(workspace_ids={workspace.pk})
    return rule


def rule_delete(*, rule: AlertRule) -> None:
    with transaction.atomic():
        workspace_id = rule.workspace_id
        rule.delete()
        firing_counts(workspace_ids={workspace_id})


def rule_snooze(*, rule: AlertRule, hours: int) -> AlertRule:
    """Snooze for `hours` (0 wakes it)."""
    rule.snoozed_until = timezone.now() + timedelta(hours=hours) if hours else None
    AlertRule.objects.filter(pk=rule.pk).update(snoozed_until=rule.snoozed_until)
    return rule
