"""Alert rules, the history of their states, and every notification attempt."""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from agents.models import AgentVersion, Workspace
from agents.validation import validate_webhook_url


class Metric(models.TextChoices):
    RUN_COUNT = "run_count", "Run count"
    ERROR_RATE = "error_rate", "Error rate (%)"
    DURATION_P95 = "duration_p95", "Duration p95 (s)"
    COST_PER_RUN = "cost_per_run", "Cost per run ($)"
    TOTAL_COST = "total_cost", "Total cost ($)"
    CREDITS_PER_RUN = "credits_per_run", "Credits per run"
    CORRECTION_RATE = "correction_rate", "Field correction rate (%)"
    APPROVALS_WAITING = "approvals_waiting", "Approvals waiting longer than the window"
    BUDGET_FLAGGED = "budget_flagged", "Runs over a soft budget"


class Condition(models.TextChoices):
    ABOVE = "above", "above"
    BELOW = "below", "below"


class State(models.TextChoices):
    OK = "ok", "OK"
    PENDING = "pending", "Pending"
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


WINDOW_MIN, WINDOW_MAX = 5, 24 * 60


class AlertRule(models.Model):
    """A metric over a window of one workspace's runs (optionally one agent, version or
    saved view), compared with a fixed value or with its own trailing 7-day baseline."""

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="alert_rules")
    name = models.CharField(max_length=200)
    metric = models.CharField(max_length=32, choices=Metric.choices)
    # Scope: empty means every run of the workspace.
    agent_name = models.CharField(max_length=200, blank=True)
    agent_version = models.ForeignKey(
        AgentVersion, models.CASCADE, null=True, blank=True, related_name="+"
    )
    # RESTRICT: a view's deletion must not widen its rules to every run (deleting the
    # workspace, which takes the rules too, still may).
    saved_view = models.ForeignKey(
        "executions.SavedView", models.RESTRICT, null=True, blank=True, related_name="+"
    )
    # For field_correction_rate: the output field watched (empty: any field).
    field_name = models.CharField(max_length=200, blank=True)
    window_minutes = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(WINDOW_MIN), MaxValueValidator(WINDOW_MAX)]
    )
    condition = models.CharField(max_length=8, choices=Condition.choices, default="above")
    threshold = models.DecimalField(
        max_digits=20, decimal_places=6, null=True, blank=True, help_text="A fixed value"
    )
    # Relative to the baseline: the value is compared with factor x (the mean of the
    # same window at this time on each of the 7 days before).
    baseline_factor = models.DecimalField(
        max_digits=10,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.001"))],
        help_text="e.g. 2 for 'more than twice its trailing 7-day value'",
    )
    min_runs = models.PositiveIntegerField(default=1)
    sustain = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(1440)]
    )
    enabled = models.BooleanField(default=True)
    muted = models.BooleanField(default=False, help_text="Evaluated, never notifies")
    snoozed_until = models.DateTimeField(null=True, blank=True)
    # Channels (any of them).
    webhook_url = models.URLField(max_length=500, blank=True, validators=[validate_webhook_url])
    webhook_secret = models.CharField(max_length=200, blank=True)
    slack_url = models.URLField(max_length=500, blank=True, validators=[validate_webhook_url])
    emails = models.CharField(max_length=1000, blank=True, help_text="Comma-separated")
    # The state machine (evaluate.py).
    state = models.CharField(max_length=10, choices=State.choices, default=State.OK)
    breaches = models.PositiveIntegerField(default=0)  # consecutive evaluations over
    clears = models.PositiveIntegerField(default=0)  # consecutive evaluations under
    last_value = models.FloatField(null=True, blank=True)
    last_baseline = models.FloatField(null=True, blank=True)
    last_runs = models.BigIntegerField(null=True, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        app_label = "executions"
        ordering = ["name"]
        indexes = [models.Index(fields=["workspace", "state"], name="alertrule_ws_state")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("alerts:detail", args=[self.pk])

    @property
    def snoozed(self) -> bool:
        return self.snoozed_until is not None and self.snoozed_until > timezone.now()

    @property
    def scope_label(self) -> str:
        if self.agent_version_id:
            return str(self.agent_version)
        if self.saved_view_id:
            return f"view “{self.saved_view}”"
        return self.agent_name or "all agents"

    @property
    def condition_label(self) -> str:
        if self.baseline_factor is not None:
            return f"{self.condition} {self.baseline_factor.normalize():f}x its 7-day baseline"
        return (
            f"{self.condition} {self.threshold.normalize():f}" if self.threshold is not None else ""
        )


class AlertEvent(models.Model):
    """One change of a rule's state, with what it saw."""

    rule = models.ForeignKey(AlertRule, models.CASCADE, related_name="events")
    state = models.CharField(max_length=10, choices=State.choices)
    at = models.DateTimeField(default=timezone.now)
    value = models.FloatField(null=True, blank=True)
    baseline = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    runs = models.BigIntegerField(default=0)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    message = models.TextField(blank=True)

    class Meta:
        app_label = "executions"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["rule", "-at"], name="alertevent_rule_at")]

    def __str__(self) -> str:
        return f"{self.rule} {self.state} at {self.at:%Y-%m-%d %H:%M}"


class Channel(models.TextChoices):
    WEBHOOK = "webhook", "Signed webhook"
    SLACK = "slack", "Slack"
    EMAIL = "email", "Email"


class Notification(models.Model):
    """One attempt to tell one channel of one event; retries are new rows."""

    event = models.ForeignKey(AlertEvent, models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    target = models.CharField(max_length=1000)
    attempt = models.PositiveSmallIntegerField(default=1)
    at = models.DateTimeField(default=timezone.now)
    succeeded = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    body = models.JSONField(default=dict, blank=True)

    class Meta:
        app_label = "executions"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.channel} #{self.attempt} {'ok' if self.succeeded else 'failed'}"
