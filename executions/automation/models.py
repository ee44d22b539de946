from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from agents.models import Workspace
from agents.validation import validate_webhook_url
from executions.models import Execution, SavedView
from feedback.queues.models import Queue


class Trigger(models.TextChoices):
    FINISHED = "finished", "Run finished (completed)"
    FAILED = "failed", "Run failed (failed, timed out, terminated)"
    THUMBS_DOWN = "thumbs_down", "Thumbs-down note"


class Rule(models.Model):
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    saved_view = models.ForeignKey(
        SavedView,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Only runs this view's filters match; none: every run.",
    )
    sample_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=100,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
    )
    queue = models.ForeignKey(Queue, models.SET_NULL, null=True, blank=True, related_name="+")
    tags = models.JSONField(default=list, blank=True)
    webhook_url = models.URLField(max_length=2000, blank=True, validators=[validate_webhook_url])
    webhook_secret = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="rule_unique_name")
        ]
        indexes = [models.Index(fields=["workspace", "trigger", "enabled"], name="rule_trigger")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RuleRun(models.Model):
    """A rule's decision on one run, and what it did: kept once per rule and run."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied"
        NOT_MATCHED = "not_matched", "Filters did not match"
        NOT_SAMPLED = "not_sampled", "Left out by sampling"
        FAILED = "failed", "An action failed"

    rule = models.ForeignKey(Rule, models.CASCADE, related_name="runs")
    execution = models.ForeignKey(Execution, models.CASCADE, related_name="+")
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    detail = models.JSONField(default=dict, blank=True)
    backfill = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "execution"], name="rulerun_once")]
        # A rule's log, newest first, and when it last decided: without it both sort
        # every decision the rule ever made (a backfill logs one per past run).
        indexes = [models.Index(fields=["rule", "-created_at", "-id"], name="rulerun_log")]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.rule_id} on {self.execution_id}: {self.outcome}"
