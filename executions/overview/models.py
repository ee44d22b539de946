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
DAY_KEY = ["day" if c == "hour" else c for c in KEY]


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


# The daily tier: the same sums per UTC day (`day` is its midnight, UTC), so a 90-day
# view reads ~90 rows per series instead of ~2,160. A viewer's local day rarely is a
# UTC day: selectors.py adds and takes away the hourly rows between a local midnight
# and the nearest UTC one, so every bucket stays exact in any time zone.


class RunRollupDay(models.Model):
    """RunRollup per UTC day."""

    workspace_id = models.BigIntegerField()
    day = models.DateTimeField()
    agent_name = models.CharField(max_length=200)
    version_name = models.CharField(max_length=100)
    agent_version_id = models.BigIntegerField()
    source = models.CharField(max_length=16)
    schedule_id = models.BigIntegerField()
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
            models.UniqueConstraint(fields=[*DAY_KEY, "status"], name="runrollupday_key"),
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.agent_name} {self.status}: {self.runs}"


class DurationRollupDay(models.Model):
    """DurationRollup per UTC day."""

    workspace_id = models.BigIntegerField()
    day = models.DateTimeField()
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
            models.UniqueConstraint(fields=[*DAY_KEY, "bucket"], name="durationrollupday_key"),
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.agent_name} bucket {self.bucket}: {self.runs}"


class StatusDay(models.Model):
    """StatusHour per UTC day."""

    workspace_id = models.BigIntegerField()
    day = models.DateTimeField()
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
            models.UniqueConstraint(fields=["workspace_id", "day", "status"], name="statusday_key")
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.status}: {self.runs}"


class AgentDay(models.Model):
    """AgentHour per UTC day."""

    workspace_id = models.BigIntegerField()
    day = models.DateTimeField()
    agent_name = models.CharField(max_length=200)
    runs = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=30, decimal_places=12, default=0)

    class Meta:
        app_label = "executions"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace_id", "day", "agent_name"], name="agentday_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.agent_name}: {self.runs}"


class DurationDay(models.Model):
    """DurationHour per UTC day."""

    workspace_id = models.BigIntegerField()
    day = models.DateTimeField()
    bucket = models.SmallIntegerField()
    runs = models.BigIntegerField(default=0)

    class Meta:
        app_label = "executions"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace_id", "day", "bucket"], name="durationday_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} bucket {self.bucket}: {self.runs}"


class StepDay(models.Model):
    """StepHour per UTC day."""

    workspace_id = models.BigIntegerField()
    day = models.DateTimeField()
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
                fields=["workspace_id", "day", "kind", "name", "model"], name="stepday_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.kind} {self.name} {self.model}: {self.calls}"


class StepDurationDay(models.Model):
    """StepDurationHour per UTC day."""

    workspace_id = models.BigIntegerField()
    day = models.DateTimeField()
    kind = models.CharField(max_length=16)
    name = models.CharField(max_length=200)
    model = models.CharField(max_length=200)
    bucket = models.SmallIntegerField()
    calls = models.BigIntegerField(default=0)

    class Meta:
        app_label = "executions"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace_id", "day", "kind", "name", "model", "bucket"],
                name="stepdurationday_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.name} bucket {self.bucket}: {self.calls}"


# Tool and model calls per the run's agent, version, source and schedule too, hourly
# and daily: what the lists read when the page has a filter (step_rollups.py).
STEP_RUN_KEY_HOUR = ["workspace_id", "hour", "agent_name", "agent_version_id", "source"]
STEP_RUN_KEY_HOUR += ["schedule_id", "kind", "name", "model"]
STEP_RUN_KEY_DAY = ["day" if c == "hour" else c for c in STEP_RUN_KEY_HOUR]


class StepRunHour(models.Model):
    """StepHour per the run's agent version, source and schedule."""

    workspace_id = models.BigIntegerField()
    hour = models.DateTimeField()
    agent_name = models.CharField(max_length=200)
    agent_version_id = models.BigIntegerField()
    source = models.CharField(max_length=16)
    schedule_id = models.BigIntegerField()
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
        constraints = [models.UniqueConstraint(fields=[*STEP_RUN_KEY_HOUR], name="steprunhour_key")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H} {self.agent_name} {self.name}: {self.calls}"


class StepRunDurationHour(models.Model):
    """StepDurationHour per the run's agent version, source and schedule."""

    workspace_id = models.BigIntegerField()
    hour = models.DateTimeField()
    agent_name = models.CharField(max_length=200)
    agent_version_id = models.BigIntegerField()
    source = models.CharField(max_length=16)
    schedule_id = models.BigIntegerField()
    kind = models.CharField(max_length=16)
    name = models.CharField(max_length=200)
    model = models.CharField(max_length=200)
    bucket = models.SmallIntegerField()
    calls = models.BigIntegerField(default=0)

    class Meta:
        app_label = "executions"
        constraints = [
            models.UniqueConstraint(
                fields=[*STEP_RUN_KEY_HOUR, "bucket"], name="steprundurationhour_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H} {self.agent_name} {self.name}: {self.calls}"


class StepRunDay(models.Model):
    """StepRunHour per UTC day."""

    workspace_id = models.BigIntegerField()
    day = models.DateTimeField()
    agent_name = models.CharField(max_length=200)
    agent_version_id = models.BigIntegerField()
    source = models.CharField(max_length=16)
    schedule_id = models.BigIntegerField()
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
        constraints = [models.UniqueConstraint(fields=[*STEP_RUN_KEY_DAY], name="steprunday_key")]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d %H} {self.agent_name} {self.name}: {self.calls}"


class StepRunDurationDay(models.Model):
    """StepRunDurationHour per UTC day."""

    workspace_id = models.BigIntegerField()
    day = models.DateTimeField()
    agent_name = models.CharField(max_length=200)
    agent_version_id = models.BigIntegerField()
    source = models.CharField(max_length=16)
    schedule_id = models.BigIntegerField()
    kind = models.CharField(max_length=16)
    name = models.CharField(max_length=200)
    model = models.CharField(max_length=200)
    bucket = models.SmallIntegerField()
    calls = models.BigIntegerField(default=0)

    class Meta:
        app_label = "executions"
        constraints = [
            models.UniqueConstraint(
                fields=[*STEP_RUN_KEY_DAY, "bucket"], name="steprundurationday_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d %H} {self.agent_name} {self.name}: {self.calls}"
