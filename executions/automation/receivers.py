"""Enqueue the rules task when a run ends or gets a thumbs-down note, after the
write commits, and only when the workspace has an enabled rule for that trigger (one
indexed EXISTS), so ingestion pays nothing more for workspaces without rules."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from executions.lifecycle import execution_ended
from feedback.models import ExecutionNote

from .models import Rule, Trigger
from .services import trigger_for_status


def _enqueue(runs: list[tuple], trigger: str) -> None:
    """runs: (workspace id, execution id); one EXISTS per workspace in the batch."""
    from .tasks import run_rules

    with_rules = {
        ws
        for ws in {ws for ws, _ in runs}
        if Rule.objects.filter(workspace_id=ws, trigger=trigger, enabled=True).exists()
    }
    for ws, execution_id in runs:
        if ws in with_rules:
            transaction.on_commit(
                lambda execution_id=execution_id: run_rules.enqueue(str(execution_id), trigger)
            )


@receiver(execution_ended)
def on_execution_ended(sender, ended, **kwargs):
    by_trigger: dict[str, list[tuple]] = {}
    for execution, status in ended:
        trigger = trigger_for_status(status)
        if trigger is not None:
            by_trigger.setdefault(trigger, []).append((execution.workspace_id, execution.pk))
    for trigger, runs in by_trigger.items():
        _enqueue(runs, trigger)


@receiver(post_save, sender=ExecutionNote)
def on_note(sender, instance, created, **kwargs):
    if created and instance.rating == ExecutionNote.Rating.DOWN:
        _enqueue([(instance.workspace_id, instance.execution_id)], Trigger.THUMBS_DOWN)
