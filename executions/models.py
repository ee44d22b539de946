"""The executions app's core: executions, their steps, artifacts, batches, webhook
deliveries, saved views, pins, counters, search rows and span events waiting for their
spans. Statuses change only through lifecycle.py.

Over 500 lines on purpose: these models point at each other and Django reads an app's
models from one module; capabilities with their own tables keep them in their package
(overview/, alerts/, budgets/ ...).
"""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from agents.models import Agent, AgentVersion, Schedule, Workspace


class Status(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    TIMED_OUT = "timed_out", "Timed out"
    CANCELLED = "cancelled", "Cancelled"
    REJECTED = "rejected", "Rejected"
    # Stopped by the system (a budget, a resource limit), not by a person or a time limit.
    TERMINATED = "terminated", "Terminated"


TERMINAL_STATUSES = frozenset(
    {
        Status.COMPLETED,
        Status.FAILED,
        Status.TIMED_OUT,
        Status.CANCELLED,
        Status.REJECTED,
        Status.TERMINATED,
    }
)
# Ended on purpose, by a person or the system: told apart from failures on the page.
STOPPED_STATUSES = frozenset({Status.CANCELLED, Status.REJECTED, Status.TERMINATED})
ACTIVE_STATUSES = frozenset(set(Status) - TERMINAL_STATUSES)


class Priority(models.IntegerChoices):
    LOW = 0, "low"
    NORMAL = 1, "normal"
    HIGH = 2, "high"


class Source(models.TextChoices):
    API = "api", "API"
    OTLP = "otlp", "OpenTelemetry"
    DASHBOARD = "dashboard", "Dashboard"
    SCHEDULE = "schedule", "Schedule"
    BATCH = "batch", "Batch"
    RERUN = "rerun", "Rerun"


class Batch(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="batches")
    agent_version = models.ForeignKey(
        AgentVersion, models.SET_NULL, null=True, blank=True, related_name="batches"
    )
    name = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return self.name or f"Batch {str(self.id)[:8]}"

    def get_absolute_url(self) -> str:
        return reverse("executions:batch_detail", args=[self.id])


class Execution(models.Model):
    """One run of an agent version on one input.

    What the executions table shows is denormalised here (agent name, step count,
    duration, tokens, cost, credits) so that a page of a million-row table is one
    indexed query with no joins to steps.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="executions")
    agent = models.ForeignKey(
        Agent, models.SET_NULL, null=True, blank=True, related_name="executions"
    )
    agent_version = models.ForeignKey(
        AgentVersion, models.SET_NULL, null=True, blank=True, related_name="executions"
    )
    # Snapshots, so that an execution of a deleted agent still says what ran.
    agent_name = models.CharField(max_length=200, db_index=False)
    version_name = models.CharField(max_length=100, blank=True)

    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    priority = models.SmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.API)

    input = models.JSONField(default=dict, blank=True)
    output = models.JSONField(null=True, blank=True)
    summary = models.TextField(blank=True)
    error = models.TextField(blank=True, help_text="The error message, when it failed")
    failure_reason = models.TextField(blank=True, help_text="Why it ended badly, for people")
    metadata = models.JSONField(default=dict, blank=True)

    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    total_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=12, default=0)
    # NULL means "not yet calculated", which the table shows as a dash.
    credits = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    step_count = models.PositiveIntegerField(default=0)

    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    trace_id = models.CharField(max_length=64, blank=True)
    session_id = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The HTTP request that started it: method, path, headers (secrets redacted), body.
    request = models.JSONField(default=dict, blank=True)
    rerun_of = models.ForeignKey(
        "self", models.SET_NULL, null=True, blank=True, related_name="reruns"
    )
    batch = models.ForeignKey(
        Batch, models.SET_NULL, null=True, blank=True, related_name="executions"
    )
    schedule = models.ForeignKey(
        Schedule, models.SET_NULL, null=True, blank=True, related_name="executions"
    )

    # Reviewer feedback, denormalised so the table can filter "has feedback" and "corrected".
    correction_count = models.PositiveIntegerField(default=0)
    note_count = models.PositiveIntegerField(default=0)

    # Human approval: what the runtime asked to have approved, and the decision.
    approval_request = models.JSONField(null=True, blank=True)
    approval_note = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # When it last paused for approval: how long it has waited, and the review queue's order.
    paused_at = models.DateTimeField(null=True, blank=True)
    # Who stopped it (cancelled, rejected, terminated, timed out): a username, or the part
    # of the system that did ("budget", "time limit"). A snapshot, like agent_name, so
    # it survives the user's removal; empty for runs that ended by themselves.
    stopped_by = models.CharField(max_length=200, blank=True)
    # The run's budget, its soft-limit flags and its stop (executions/budgets); null
    # for a run without one, so the check costs nothing there.
    budget = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="execution_unique_idempotency_key",
            ),
            models.UniqueConstraint(
                fields=["workspace", "trace_id"],
                condition=~models.Q(trace_id=""),
                name="execution_unique_trace",
            ),
        ]
        # One index per filter and sort of the executions table, each led by the
        # workspace because every query is scoped to one.
        indexes = [
            models.Index(fields=["workspace", "-created_at", "-id"], name="exec_ws_created"),
            models.Index(fields=["workspace", "status", "-created_at"], name="exec_ws_status"),
            models.Index(fields=["workspace", "agent_name", "-created_at"], name="exec_ws_agent"),
            models.Index(
                fields=["workspace", "agent_version", "-created_at"], name="exec_ws_version"
            ),
            models.Index(fields=["workspace", "batch", "-created_at"], name="exec_ws_batch"),
            models.Index(fields=["workspace", "schedule", "-created_at"], name="exec_ws_schedule"),
            models.Index(fields=["workspace", "source", "-created_at"], name="exec_ws_source"),
            models.Index(fields=["workspace", "-duration_ms"], name="exec_ws_duration"),
            models.Index(fields=["workspace", "-step_count"], name="exec_ws_steps"),
            models.Index(fields=["workspace", "-total_tokens"], name="exec_ws_tokens"),
            models.Index(fields=["workspace", "-cost_usd"], name="exec_ws_cost"),
            models.Index(fields=["workspace", "-credits"], name="exec_ws_credits"),
            # The overview's credit spikes: per version, the runs above a threshold.
            models.Index(
                fields=["workspace", "agent_version", "credits"], name="exec_ws_version_credits"
            ),
            # ... and the cost spikes the same way.
            models.Index(
                fields=["workspace", "agent_version", "cost_usd"], name="exec_ws_version_cost"
            ),
            models.Index(fields=["status", "priority", "created_at"], name="exec_queue"),
            # Staff in admin see every workspace: their changelist sorts without one.
            models.Index(fields=["-created_at", "-id"], name="exec_created"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_label} {str(self.id)[:8]}"

    def get_absolute_url(self) -> str:
        return reverse("executions:detail", args=[self.id])

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def elapsed_ms(self) -> int | None:
        """How long it has run so far: its duration once ended, the time since start before."""
        if self.duration_ms is not None:
            return self.duration_ms
        if self.started_at is None:
            return None
        return max(0, int((timezone.now() - self.started_at).total_seconds() * 1000))

    @property
    def agent_removed(self) -> bool:
        return self.agent_id is None

    @property
    def agent_label(self) -> str:
        if self.version_name:
            return f"{self.agent_name}:{self.version_name}"
        return self.agent_name

    @property
    def short_id(self) -> str:
        return str(self.id)[:8]


class StepKind(models.TextChoices):
    THOUGHT = "thought", "Thought"
    MODEL_CALL = "model_call", "Model call"
    TOOL_CALL = "tool_call", "Tool call"
    EMBEDDING = "embedding", "Embedding"
    RERANKER = "reranker", "Reranker"
    ACTION = "action", "Action"
    BLOCK = "block", "Block"
    GUARDRAIL = "guardrail", "Guardrail"
    APPROVAL = "approval", "Approval"
    OTHER = "other", "Other"


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    # A step still open when its execution ended another way ends with it.
    CANCELLED = "cancelled", "Cancelled"
    TIMED_OUT = "timed_out", "Timed out"
    REJECTED = "rejected", "Rejected"
    TERMINATED = "terminated", "Terminated"


class Step(models.Model):
    execution = models.ForeignKey(Execution, models.CASCADE, related_name="steps")
    parent = models.ForeignKey(
        "self", models.CASCADE, null=True, blank=True, related_name="children"
    )
    sequence = models.PositiveIntegerField()
    # OpenTelemetry span id (hex), or the runtime's own id: what makes a retried append a no-op.
    span_id = models.CharField(max_length=64, null=True, blank=True)
    parent_span_id = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=16, choices=StepKind.choices, default=StepKind.OTHER)
    name = models.CharField(max_length=500, blank=True)
    status = models.CharField(
        max_length=16, choices=StepStatus.choices, default=StepStatus.COMPLETED
    )
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveBigIntegerField(null=True, blank=True)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    model = models.CharField(max_length=200, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=20, decimal_places=12, default=0)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["execution", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "sequence"], name="step_unique_sequence"),
            models.UniqueConstraint(
                fields=["execution", "span_id"],
                condition=models.Q(span_id__isnull=False),
                name="step_unique_span",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.get_kind_display()} {self.name}".strip()

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class PendingSpanEvents(models.Model):
    """GenAI content events that came as OTLP log records (/v1/logs) before their span.

    Exporters send logs and spans independently, so a model call's messages may arrive
    first: they wait here, and the span takes them when it comes (ingest/logs.py).
    Rows whose span never came are dropped after a day.
    """

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    trace_id = models.CharField(max_length=64)
    span_id = models.CharField(max_length=64)
    events = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "trace_id"], name="pending_events_trace"),
            models.Index(fields=["created_at"], name="pending_events_age"),
        ]

    def __str__(self) -> str:
        return f"{self.trace_id}/{self.span_id}"


def artifact_upload_to(instance: "Artifact", filename: str) -> str:
    return f"artifacts/{instance.workspace_id}/{instance.id}/{filename}"


class ArtifactKind(models.TextChoices):
    SCREENSHOT = "screenshot", "Screenshot"
    IMAGE = "image", "Image"
    VIDEO = "video", "Video"
    DOCUMENT = "document", "Document"
    CODE = "code", "Code"
    FILE = "file", "File"


class Artifact(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="artifacts")
    execution = models.ForeignKey(
        Execution, models.CASCADE, null=True, blank=True, related_name="artifacts"
    )
    step = models.ForeignKey(Step, models.SET_NULL, null=True, blank=True, related_name="artifacts")
    kind = models.CharField(max_length=16, choices=ArtifactKind.choices, default=ArtifactKind.FILE)
    name = models.CharField(max_length=300)
    file = models.FileField(upload_to=artifact_upload_to, max_length=500)
    content_type = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    # [{"label": "total", "x": 0.1, "y": 0.2, "width": 0.3, "height": 0.05,
    #   "confidence": 0.97}], coordinates as fractions of the image.
    bounding_boxes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["execution", "created_at"], name="artifact_exec")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @property
    def is_video(self) -> bool:
        return self.content_type.startswith("video/")


class ExecutionPin(models.Model):
    """A run someone chose to keep: retention never deletes it while the workspace keeps
    marked runs (Workspace.retention_keep_marked)."""

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    execution = models.OneToOneField(Execution, models.CASCADE, related_name="pin")
    pinned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"pin on {self.execution_id}"


class ExecutionCounter(models.Model):
    """How many executions a workspace has per agent name and status.

    Kept exact by the code that creates executions and by lifecycle.transition, so
    the table's "N executions total" for the common filters (none, status, agent)
    is a sum over a few rows instead of a COUNT(*) over millions.
    """

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    agent_name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "agent_name", "status"], name="counter_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.agent_name} {self.status}: {self.count}"


class ExecutionSearch(models.Model):
    """The columns the table's text search reads, one narrow row per execution.

    A search for a word matched by 10,000 of a million executions must read and
    recheck every candidate row the trigram index names, to count them exactly.
    Here those rows are ~130 bytes instead of the execution's kilobytes of input
    and output, and the error and summary are one text already upper-cased, so the
    recheck is one LIKE with no case folding. On PostgreSQL the table is partitioned
    on `has_error`: failures are the few rows operators search most, and a search
    for an error then reads only their partition, a tenth of the table.

    Database triggers keep it (migration 0006), so no write path can forget it:
    every insert, and every update of these columns, of an execution is copied
    here, and deleting the execution deletes the row.
    """

    # Plain copies, so no constraints: the triggers, not Django's deletion collector,
    # own these rows, and the execution's own constraints already checked the values.
    # (On PostgreSQL the key is (execution_id, has_error), as partitioning requires;
    # the triggers keep one row per execution.)
    execution = models.OneToOneField(
        Execution, models.DO_NOTHING, primary_key=True, db_constraint=False, related_name="+"
    )
    has_error = models.BooleanField()
    workspace = models.ForeignKey(
        Workspace, models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    batch = models.ForeignKey(
        Batch, models.DO_NOTHING, null=True, db_constraint=False, db_index=False, related_name="+"
    )
    agent_name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status.choices)
    created_at = models.DateTimeField()
    # UPPER(error || newline || summary): matched with LIKE against the upper-cased
    # search, as icontains does, but folded once on write rather than on every read.
    document = models.TextField(blank=True)

    class Meta:
        # The search's page walks this backwards, as the table's own time index.
        indexes = [
            models.Index(
                fields=["workspace", "-created_at", "-execution"], name="exec_search_created"
            )
        ]

    def __str__(self) -> str:
        return f"search row of {self.execution_id}"


class SavedView(models.Model):
    """A named set of table filters and sort: a URL that can be shared in the workspace."""

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="saved_views")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    query = models.TextField(blank=True, help_text="The query string, without page")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="savedview_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One attempt to hand an execution (or a cancel/approval) to its runtime."""

    class Event(models.TextChoices):
        EXECUTE = "execute", "Execute"
        CANCEL = "cancel", "Cancel"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    execution = models.ForeignKey(Execution, models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=16, choices=Event.choices, default=Event.EXECUTE)
    attempt = models.PositiveSmallIntegerField(default=1)
    url = models.URLField(max_length=500)
    request_body = models.JSONField(default=dict, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["execution", "created_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event} #{self.attempt} for {self.execution_id}"


# The overview's rollup tables live in their own package; imported here so Django
# registers them with this app.
from executions.alerts.models import AlertEvent, AlertRule, Notification  # noqa: E402, F401
from executions.overview.models import (  # noqa: E402, F401
    AgentDay,
    AgentHour,
    DurationDay,
    DurationHour,
    DurationRollup,
    DurationRollupDay,
    ErrorGroupHour,
    RunRollup,
    RunRollupDay,
    StatusDay,
    StatusHour,
    StepDay,
    StepDurationDay,
    StepDurationHour,
    StepHour,
    StepRunDay,
    StepRunDurationDay,
    StepRunDurationHour,
    StepRunHour,
)
