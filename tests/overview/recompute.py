"""The rollups recomputed from scratch in Python, to compare the triggers' with."""

from collections import Counter, defaultdict
from datetime import UTC
from decimal import Decimal

from executions.models import Execution
from executions.overview.histogram import bucket_of
from executions.overview.models import DurationRollup, RunRollup

SUMS = [
    "runs",
    "timed_runs",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "credits",
    "credited_runs",
]


def _key(e: Execution) -> tuple:
    hour = e.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return (
        e.workspace_id,
        hour,
        e.agent_name,
        e.version_name,
        e.agent_version_id or 0,
        e.source,
        e.schedule_id or 0,
    )


def expected() -> tuple[dict, dict]:
    runs: dict = defaultdict(lambda: dict.fromkeys(SUMS, 0))
    durations: Counter = Counter()
    for e in Execution.objects.all():
        row = runs[(*_key(e), e.status)]
        row["runs"] += 1
        row["timed_runs"] += e.duration_ms is not None
        row["duration_ms"] += e.duration_ms or 0
        row["prompt_tokens"] += e.prompt_tokens
        row["completion_tokens"] += e.completion_tokens
        row["total_tokens"] += e.total_tokens
        row["cost_usd"] += e.cost_usd
        row["credits"] += e.credits or 0
        row["credited_runs"] += e.credits is not None
        if e.duration_ms is not None:
            durations[(*_key(e), bucket_of(e.duration_ms))] += 1
    return _normal(runs), dict(durations)


def _normal(runs: dict) -> dict:
    return {
        k: {
            c: Decimal(v).quantize(Decimal("0.000001")) if c in ("cost_usd", "credits") else v
            for c, v in row.items()
        }
        for k, row in runs.items()
    }


def actual() -> tuple[dict, dict]:
    """The rollup rows, without the zero rows a delete or a move leaves behind."""
    runs = {}
    for r in RunRollup.objects.all():
        values = {c: getattr(r, c) for c in SUMS}
        if not any(values.values()):
            continue
        key = (
            r.workspace_id,
            r.hour.astimezone(UTC),
            r.agent_name,
            r.version_name,
            r.agent_version_id,
            r.source,
            r.schedule_id,
            r.status,
        )
        runs[key] = values
    durations = {
        (
            d.workspace_id,
            d.hour.astimezone(UTC),
            d.agent_name,
            d.version_name,
            d.agent_version_id,
            d.source,
            d.schedule_id,
            d.bucket,
        ): d.runs
        for d in DurationRollup.objects.exclude(runs=0)
    }
    return _normal(runs), durations


def assert_rollups_exact() -> None:
    want_runs, want_durations = expected()
    got_runs, got_durations = actual()
    assert got_runs == want_runs
    assert got_durations == want_durations
