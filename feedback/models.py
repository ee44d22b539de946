from django.conf import settings
from django.db import models
from django.utils import timezone

from agents.models import Workspace
from executions.models import Execution


class FieldCorrection(models.Model):
    """A reviewer's new value for one field of an output, kept forever.

    The original output is never overwritten: the corrected output is the
    original with the latest correction of each path applied.
    """

    class Op(models.TextChoices):
        REPLACE = "replace", "Replace"
        ADD = "add", "Add"
        REMOVE = "remove", "Remove"

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    execution = models.ForeignKey(Execution, models.CASCADE, related_name="corrections")
    path = models.CharField(max_length=1000, help_text="JSON Pointer (RFC 6901)")
    op = models.CharField(max_length=8, choices=Op.choices, default=Op.REPLACE)
    value_before = models.JSONField(null=True, blank=True)
    value_after = models.JSONField(null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["execution", "created_at", "id"]
        indexes = [models.Index(fields=["execution", "path", "-created_at"], name="fc_exec_path")]

    def __str__(self) -> str:
        return f"{self.path} on {self.execution_id}"


class ExecutionNote(models.Model):
    class Rating(models.TextChoices):
        UP = "up", "Thumbs up"
        DOWN = "down", "Thumbs down"

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    execution = models.ForeignKey(Execution, models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rating = models.CharField(max_length=4, choices=Rating.choices, blank=True)
    text = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["execution", "-created_at"]

    def __str__(self) -> str:
        return f"Note on {self.execution_id}"
