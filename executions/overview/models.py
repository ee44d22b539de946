"""Hourly rollups of executions, kept by database triggers (see rollups.py).

Plain columns, no foreign keys: the triggers own these rows, and an execution's
agent version or schedule may be deleted while its hour still counts. A missing
version or schedule is stored as 0, so the unique key (which ON CONFLICT needs)
never holds a NULL.
"""

from django.db import models

KEY = [
    "workspace_id",
    "hour",
    "agent_name",
    "version_name",
    "agent_version_id",
    "source",
    "schedule_id",
]


class RunRollup(models.Model):
    """Executions created in one UTC hour, per agent version, source, schedule, status."""

    workspace_id = models.BigIntegerField()
    hour = models.DateTimeField()
    agent_name = models.CharField(max_length=200)
    version_name = models.CharField(max_length=100)
    agent_version_id = models.BigIntegerField()
    source = models.CharField(max_length=16)
    schedule_id = models.BigIntegerField()
    status = models.CharField(max_length=20)

    runs = models.BigIntegerField(default=0)
    # Runs with a duration (finished ones), and the sum of those durations.
    timed_runs = models.BigIntegerField(default=0)
    duration_ms = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    # Same scale as Execution.cost_usd and .credits, so sums are exact.
    cost_usd = models.DecimalField(max_digits=30, decimal_places=12, default=0)
    credits = models.DecimalField(max_digits=24, decimal_places=4, default=0)
    # Runs whose credits are known (NULL credits are "not yet calculated").
    credited_runs = models.BigIntegerField(default=0)

    class Meta:
        app_label = "executions"
        # The key leads with (workspace, hour): it is also the index every read uses.
        constraints = [
            models.UniqueConstraint(fields=[*KEY, "status"], name="runrollup_key"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.agent_name} {self.status}: {self.runs}"


class DurationRollup(models.Model):
    """How many runs of one UTC hour (per agent version, source and schedule) took
    a duration inside each log-spaced bucket (histogram.py): percentiles for any
    range and filter come from these counts."""

    workspace_id = models.BigIntegerField()
    hour = models.DateTimeField()
    agent_name = models.CharField(max_length=200)
    version_name = models.CharField(max_length=100)
    agent_version_id = models.BigIntegerField()
    source = models.CharField(max_length=16)
    schedule_id = models.BigIntegerField()
    bucket = models.SmallIntegerField()
    runs = models.BigIntegerField(default=0)

    class Meta:
        app_label = "executions"
        constraints = [
            models.UniqueConstraint(fields=[*KEY, "bucket"], name="durationrollup_key"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.agent_name} bucket {self.bucket}: {self.runs}"


# Narrow rollups without version, source or schedule: what the unfiltered page
# reads (at 90 days, a sixth of the rows of the full ones).


class StatusHour(models.Model):
    """Runs of one UTC hour per status, every agent together."""

    workspace_id = models.BigIntegerField()
    hour = models.DateTimeField()
    status = models.CharField(max_length=20)
    runs = models.BigIntegerField(default=0)
    timed_runs = models.BigIntegerField(default=0)
    duration_ms = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=30, decimal_places=12, default=0)
    credits = models.DecimalField(max_digits=24, decimal_places=4, default=0)
    credited_runs = models.BigIntegerField(default=0)

    class Meta:
        app_label = "executions"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace_id", "hour", "status"], name="statushour_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.status}: {self.runs}"


class AgentHour(models.Model):
    """Runs, tokens and cost of one UTC hour per agent name."""

    workspace_id = models.BigIntegerField()
    hour = models.DateTimeField()
    agent_name = models.CharField(max_length=200)
    runs = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=30, decimal_places=12, default=0)

    class Meta:
        app_label = "executions"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace_id", "hour", "agent_name"], name="agenthour_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.agent_name}: {self.runs}"


class DurationHour(models.Model):
    """The duration histogram of one UTC hour, every agent together."""

    workspace_id = models.BigIntegerField()
    hour = models.DateTimeField()
    bucket = models.SmallIntegerField()
    runs = models.BigIntegerField(default=0)

    class Meta:
        app_label = "executions"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace_id", "hour", "bucket"], name="durationhour_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h bucket {self.bucket}: {self.runs}"


class ErrorGroupHour(models.Model):
    """Runs of one UTC hour with an error, per agent and error group (errors.py)."""

    workspace_id = models.BigIntegerField()
    hour = models.DateTimeField()
    agent_name = models.CharField(max_length=200)
    error_group = models.CharField(max_length=200)
    runs = models.BigIntegerField(default=0)

    class Meta:
        app_label = "executions"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace_id", "hour", "agent_name", "error_group"],
                name="errorgrouphour_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.error_group[:40]}: {self.runs}"


class StepHour(models.Model):
    """Tool and model calls of one UTC hour per kind, name and model (step_rollups.py)."""

    workspace_id = models.BigIntegerField()
    hour = models.DateTimeField()
    kind = models.CharField(max_length=16)
    name = models.CharField(max_length=200)
    model = models.CharField(max_length=200)
    calls = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    timed_calls = models.BigIntegerField(default=0)
    duration_ms = models.BigIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=30, decimal_places=12, default=0)

    class Meta:
        app_label = "executions"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace_id", "hour", "kind", "name", "model"], name="stephour_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.kind} {self.name} {self.model}: {self.calls}"


class StepDurationHour(models.Model):
    """The duration histogram of one UTC hour's tool and model calls, per name and model."""

    workspace_id = models.BigIntegerField()
    hour = models.DateTimeField()
    kind = models.CharField(max_length=16)
    name = models.CharField(max_length=200)
    model = models.CharField(max_length=200)
    bucket = models.SmallIntegerField()
    calls = models.BigIntegerField(default=0)

    class Meta:
        app_label = "executions"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace_id", "hour", "kind", "name", "model", "bucket"],
                name="stepdurationhour_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.name} bucket {self.bucket}: {self.calls}"
