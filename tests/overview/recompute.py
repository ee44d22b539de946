"""The rollups recomputed from scratch in Python, to compare the triggers' with."""

from collections import Counter, defaultdict
from datetime import UTC
from decimal import Decimal

from executions.models import Execution
from executions.overview.histogram import bucket_of
from executions.overview.models import DurationRollup, RunRollup

SCALE = {"cost_usd": Decimal("1e-12"), "credits": Decimal("0.0001")}
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
        k: {c: Decimal(v).quantize(SCALE[c]) if c in SCALE else v for c, v in row.items()}
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
    assert_narrow_rollups_exact()
    assert_error_groups_exact()
    assert_daily_tier_exact()


def _narrow_expected(full_runs: dict, full_durations: dict) -> dict:
    """The narrow rollups are sums of the full ones' keys: (ws, hour, status),
    (ws, hour, agent), (ws, hour, bucket)."""
    status_hours: dict = defaultdict(lambda: dict.fromkeys(SUMS, 0))
    agent_hours: dict = defaultdict(lambda: dict.fromkeys(("runs", "total_tokens", "cost_usd"), 0))
    duration_hours: Counter = Counter()
    for key, row in full_runs.items():
        ws, hour, agent, status = key[0], key[1], key[2], key[7]
        for c in SUMS:
            status_hours[(ws, hour, status)][c] += row[c]
        for c in ("runs", "total_tokens", "cost_usd"):
            agent_hours[(ws, hour, agent)][c] += row[c]
    for key, n in full_durations.items():
        duration_hours[(key[0], key[1], key[7])] += n
    drop = lambda rows: {k: v for k, v in rows.items() if any(v.values())}  # noqa: E731
    return {
        "status_hours": _normal(drop(status_hours)),
        "agent_hours": _normal(drop(agent_hours)),
        "duration_hours": {k: n for k, n in duration_hours.items() if n},
    }


def _narrow_actual() -> dict:
    from executions.overview.models import AgentHour, DurationHour, StatusHour

    def rows(model, key, sums):
        out = {}
        for r in model.objects.all():
            values = {c: getattr(r, c) for c in sums}
            if any(values.values()):
                out[tuple(getattr(r, k) for k in key)] = values
        return out

    fix = lambda rows: {(k[0], k[1].astimezone(UTC), k[2]): v for k, v in rows.items()}  # noqa: E731
    return {
        "status_hours": _normal(fix(rows(StatusHour, ("workspace_id", "hour", "status"), SUMS))),
        "agent_hours": _normal(
            fix(
                rows(
                    AgentHour,
                    ("workspace_id", "hour", "agent_name"),
                    ("runs", "total_tokens", "cost_usd"),
                )
            )
        ),
        "duration_hours": {
            k: v["runs"]
            for k, v in fix(
                rows(DurationHour, ("workspace_id", "hour", "bucket"), ("runs",))
            ).items()
        },
    }


def assert_narrow_rollups_exact() -> None:
    want_runs, want_durations = expected()
    assert _narrow_actual() == _narrow_expected(want_runs, want_durations)


def assert_error_groups_exact() -> None:
    from executions.overview.errors import normalize
    from executions.overview.models import ErrorGroupHour

    want: Counter = Counter()
    for e in Execution.objects.exclude(error=""):
        hour = e.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        want[(e.workspace_id, hour, e.agent_name, normalize(e.error))] += 1
    got = {
        (g.workspace_id, g.hour.astimezone(UTC), g.agent_name, g.error_group): g.runs
        for g in ErrorGroupHour.objects.exclude(runs=0)
    }
    assert got == dict(want)


def _daily_from_hourly(hour_model, key: list[str], sums: list[str]) -> dict:
    days: dict = defaultdict(lambda: dict.fromkeys(sums, 0))
    for r in hour_model.objects.all():
        moment = r.hour.astimezone(UTC).replace(hour=0)
        k = tuple(moment if c == "hour" else getattr(r, c) for c in key)
        for c in sums:
            days[k][c] += getattr(r, c)
    return _normal({k: v for k, v in days.items() if any(v.values())})


def _daily_rows(day_model, key: list[str], sums: list[str]) -> dict:
    rows = {}
    for r in day_model.objects.all():
        values = {c: getattr(r, c) for c in sums}
        if any(values.values()):
            rows[tuple(r.day.astimezone(UTC) if c == "hour" else getattr(r, c) for c in key)] = (
                values
            )
    return _normal(rows)


def assert_daily_tier_exact() -> None:
    """Every daily table holds its hourly table's sums per UTC day (and the hourly ones
    are checked against a recomputation from the executions and steps)."""
    from executions.overview import models as m

    full = ["workspace_id", "hour", "agent_name", "version_name", "agent_version_id", "source"]
    full += ["schedule_id"]
    narrow_sums = ["runs", "total_tokens", "cost_usd"]
    step_key = ["workspace_id", "hour", "kind", "name", "model"]
    step_sums = ["calls", "failed", "timed_calls", "duration_ms", "prompt_tokens"]
    step_sums += ["completion_tokens", "cost_usd"]
    run_key = [*step_key[:2], "agent_name", "agent_version_id", "source", "schedule_id"]
    run_key += step_key[2:]
    pairs = [
        (m.RunRollup, m.RunRollupDay, [*full, "status"], SUMS),
        (m.DurationRollup, m.DurationRollupDay, [*full, "bucket"], ["runs"]),
        (m.StatusHour, m.StatusDay, ["workspace_id", "hour", "status"], SUMS),
        (m.AgentHour, m.AgentDay, ["workspace_id", "hour", "agent_name"], narrow_sums),
        (m.DurationHour, m.DurationDay, ["workspace_id", "hour", "bucket"], ["runs"]),
        (m.StepHour, m.StepDay, step_key, step_sums),
        (m.StepDurationHour, m.StepDurationDay, [*step_key, "bucket"], ["calls"]),
        (m.StepRunHour, m.StepRunDay, run_key, step_sums),
        (m.StepRunDurationHour, m.StepRunDurationDay, [*run_key, "bucket"], ["calls"]),
    ]
    for hour_model, day_model, key, sums in pairs:
        want = _daily_from_hourly(hour_model, key, sums)
        assert _daily_rows(day_model, key, sums) == want, day_model.__name__
