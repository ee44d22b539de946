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


def _enqueue(workspace_id, execution_id, trigger: str) -> None:
    if not Rule.objects.filter(workspace_id=workspace_id, trigger=trigger, enabled=True).exists():
        return
    from .tasks import run_rules

    transaction.on_commit(lambda: run_rules.enqueue(str(execution_id), trigger))


@receiver(execution_ended)
def on_execution_ended(sender, execution, status, **kwargs):
    trigger = trigger_for_status(status)
    if trigger is not None:
        _enqueue(execution.workspace_id, execution.pk, trigger)


@receiver(post_save, sender=ExecutionNote)
def on_note(sender, instance, created, **kwargs):
    if created and instance.rating == ExecutionNote.Rating.DOWN:
        _enqueue(instance.workspace_id, instance.execution_id, Trigger.THUMBS_DOWN)
