"""The overview's reads: every number on the page, from the hourly rollups.

Only the last hour (minute buckets, finer than the rollups) and the lists of
individual runs (credit spikes, approvals waiting) read executions, each through
an index. Buckets are grouped in the database on PostgreSQL (width_bucket over
the bucket edges) and in Python on SQLite, where data sets are small.
"""

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Q
from django.utils import timezone

from executions.models import TERMINAL_STATUSES, Execution, Status

from . import histogram
from .query import OverviewQuery, local_day_start

# Failed runs for the error rate: "terminated" counts once the status exists.
ERROR_STATUSES = [s for s in ("failed", "timed_out", "terminated") if s in Status.values]
FINISHED_STATUSES = sorted(str(s) for s in TERMINAL_STATUSES)
STATUS_ORDER = [str(s) for s in Status]
QUANTILES = (0.5, 0.95, 0.99)
SPIKE_FACTOR = 3  # a run is a spike above this many times its version's mean
SPIKE_LIMIT = 20
APPROVAL_LIMIT = 20

RUN_SUMS = [
    "runs",
    "timed_runs",
    "duration_ms",
    "total_tokens",
    "cost_usd",
    "credits",
    "credited_runs",
]


def _where(query: OverviewQuery, start: datetime, end: datetime) -> tuple[str, list]:
    sql = ["workspace_id = %s", "hour >= %s", "hour < %s"]
    adapt = connection.ops.adapt_datetimefield_value
    params: list = [query.workspace.pk, adapt(start), adapt(end)]
    for column, value in (
        ("agent_name", query.agent),
        ("agent_version_id", query.version),
        ("source", query.source),
        ("schedule_id", query.schedule),
    ):
        if value is not None:
            sql.append(f"{column} = %s")
            params.append(value)
    return " AND ".join(sql), params


def _grouped(
    query: OverviewQuery, table: str, keys: list[str], sums: list[str], edges: list[datetime] | None
) -> list[dict]:
    """Sums of `sums` over the rollup `table` in [edges[0], edges[-1]), per bucket of
    `edges` (None: one bucket) and per `keys`. Each row: {"b": index, key..., sum...}."""
    edges = edges or [query.start, query.end]
    where, params = _where(query, edges[0], edges[-1])
    sum_sql = ", ".join(f"SUM({s})" for s in sums)
    key_sql = "".join(f", {k}" for k in keys)
    if connection.vendor == "postgresql" and len(edges) > 2:
        sql = (
            f"SELECT width_bucket(hour, %s::timestamptz[]) - 1 AS b{key_sql}, {sum_sql} "
            f"FROM {table} WHERE {where} GROUP BY 1{key_sql}"
        )
        params = [list(edges), *params]
    elif len(edges) > 2:
        sql = f"SELECT hour{key_sql}, {sum_sql} FROM {table} WHERE {where} GROUP BY hour{key_sql}"
    else:
        sql = f"SELECT 0{key_sql}, {sum_sql} FROM {table} WHERE {where}"
        sql += f" GROUP BY {', '.join(keys)}" if keys else ""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        raw = cursor.fetchall()
    merged: dict[tuple, list] = {}
    for row in raw:
        b = row[0]
        if isinstance(b, datetime | str):  # SQLite: bucket the hour here
            b = bisect_right(edges, _sqlite_time(b)) - 1
        key = (b, *row[1 : 1 + len(keys)])
        values = [_number(name, v) for name, v in zip(sums, row[1 + len(keys) :], strict=True)]
        if key in merged:
            merged[key] = [a + v for a, v in zip(merged[key], values, strict=True)]
        else:
            merged[key] = values
    return [
        {"b": k[0], **dict(zip(keys, k[1:], strict=True)), **dict(zip(sums, v, strict=True))}
        for k, v in merged.items()
        if sum(v) != 0 or not sums
    ]


# Decimal sums, at the scale of the execution's own columns (SQLite sums them as floats).
DECIMAL_SCALE = {"cost_usd": Decimal("0.000001"), "credits": Decimal("0.0001")}


def _number(name: str, value) -> int | Decimal:
    if value is None:
        return Decimal(0) if name in DECIMAL_SCALE else 0
    if name in DECIMAL_SCALE:
        return Decimal(str(value)).quantize(DECIMAL_SCALE[name])
    return int(value)


def _sqlite_time(value) -> datetime:
    """An hour as SQLite hands it back (naive UTC, as text or datetime)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _from_executions(query: OverviewQuery) -> tuple[list[dict], list[dict]]:
    """Minute buckets of the last hour straight from the executions: the same shapes
    as the rollups' (runs per status and agent; duration buckets)."""
    runs = Execution.objects.filter(
        workspace=query.workspace, created_at__gte=query.start, created_at__lt=query.end
    )
    if query.agent is not None:
        runs = runs.filter(agent_name=query.agent)
    if query.version is not None:
        runs = runs.filter(agent_version_id=query.version)
    if query.source is not None:
        runs = runs.filter(source=query.source)
    if query.schedule is not None:
        runs = runs.filter(schedule_id=query.schedule)
    by_key: dict = defaultdict(lambda: dict.fromkeys(RUN_SUMS, 0))
    durations: dict = defaultdict(int)
    for created, status, agent, duration, tokens, cost, credits in runs.order_by().values_list(
        "created_at", "status", "agent_name", "duration_ms", "total_tokens", "cost_usd", "credits"
    ):
        b = bisect_right(query.edges, created) - 1
        row = by_key[(b, status, agent)]
        row["runs"] += 1
        row["timed_runs"] += duration is not None
        row["duration_ms"] += duration or 0
        row["total_tokens"] += tokens
        row["cost_usd"] += cost
        row["credits"] += credits or 0
        row["credited_runs"] += credits is not None
        if duration is not None:
            durations[(b, histogram.bucket_of(duration))] += 1
    run_rows = [{"b": b, "status": s, "agent_name": a, **v} for (b, s, a), v in by_key.items()]
    duration_rows = [{"b": b, "bucket": k, "runs": n} for (b, k), n in durations.items()]
    return run_rows, duration_rows


@dataclass
class Bucket:
    start: datetime
    end: datetime
    statuses: dict[str, int] = field(default_factory=dict)
    runs: int = 0
    errors: int = 0
    finished: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    cost: dict[str, Decimal] = field(default_factory=dict)
    credits: Decimal = Decimal(0)
    credited_runs: int = 0
    durations: dict[int, int] = field(default_factory=dict)
    percentiles: dict[float, float | None] = field(default_factory=dict)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.finished if self.finished else None

    @property
    def credits_per_run(self) -> Decimal | None:
        return self.credits / self.credited_runs if self.credited_runs else None


@dataclass
class Timeline:
    buckets: list[Bucket]
    statuses: list[str]
    agents: list[str]
    totals: Bucket


def timeline(query: OverviewQuery) -> Timeline:
    """Every time chart's numbers: runs by status, error rate, percentiles, tokens and
    cost by agent, credits per run. Two queries."""
    if query.grain == "minute":
        run_rows, duration_rows = _from_executions(query)
    else:
        run_rows = _grouped(
            query, "executions_runrollup", ["status", "agent_name"], RUN_SUMS, query.edges
        )
        duration_rows = _grouped(
            query, "executions_durationrollup", ["bucket"], ["runs"], query.edges
        )
    buckets = [Bucket(start=a, end=b) for a, b in query.buckets]
    totals = Bucket(start=query.start, end=query.end)
    statuses: set[str] = set()
    agents: set[str] = set()
    for row in run_rows:
        if not 0 <= row["b"] < len(buckets):
            continue
        for target in (buckets[row["b"]], totals):
            _add_runs(target, row)
        statuses.add(row["status"])
        agents.add(row["agent_name"])
    for row in duration_rows:
        if 0 <= row["b"] < len(buckets):
            for target in (buckets[row["b"]], totals):
                target.durations[row["bucket"]] = (
                    target.durations.get(row["bucket"], 0) + row["runs"]
                )
    for target in (*buckets, totals):
        target.percentiles = histogram.percentiles(target.durations, QUANTILES)
    return Timeline(
        buckets=buckets,
        statuses=[s for s in STATUS_ORDER if s in statuses],
        agents=sorted(agents, key=lambda a: (-totals.cost.get(a, 0), a)),
        totals=totals,
    )


def _add_runs(target: Bucket, row: dict) -> None:
    status, agent, runs = row["status"], row["agent_name"], int(row["runs"])
    target.statuses[status] = target.statuses.get(status, 0) + runs
    target.runs += runs
    if status in ERROR_STATUSES:
        target.errors += runs
    if status in FINISHED_STATUSES:
        target.finished += runs
    target.tokens[agent] = target.tokens.get(agent, 0) + int(row["total_tokens"])
    target.cost[agent] = target.cost.get(agent, Decimal(0)) + Decimal(row["cost_usd"])
    target.credits += Decimal(row["credits"])
    target.credited_runs += int(row["credited_runs"])


@dataclass
class Ranked:
    agent_name: str
    version_name: str
    agent_version_id: int
    runs: int = 0
    errors: int = 0
    finished: int = 0
    cost: Decimal = Decimal(0)
    tokens: int = 0
    durations: dict[int, int] = field(default_factory=dict)
    previous_runs: int = 0
    previous_errors: int = 0
    previous_finished: int = 0
    previous_cost: Decimal = Decimal(0)
    previous_durations: dict[int, int] = field(default_factory=dict)
    sparkline: list[int] = field(default_factory=list)

    @property
    def error_rate(self):
        return self.errors / self.finished if self.finished else None

    @property
    def previous_error_rate(self):
        return self.previous_errors / self.previous_finished if self.previous_finished else None

    @property
    def p95(self):
        return histogram.percentiles(self.durations, (0.95,))[0.95]

    @property
    def previous_p95(self):
        return histogram.percentiles(self.previous_durations, (0.95,))[0.95]

    @property
    def label(self) -> str:
        return f"{self.agent_name}:{self.version_name}" if self.version_name else self.agent_name


def ranked(query: OverviewQuery, *, by_version: bool, now: datetime | None = None) -> list[Ranked]:
    """Agents (or versions) by runs, with error rate, p95, cost, the change against the
    previous period of the same length, and runs per day of the last 7 days."""
    keys = ["agent_name", "version_name", "agent_version_id"] if by_version else ["agent_name"]
    prev_start, _ = query.previous
    edges = [prev_start, query.start, query.end]
    found: dict[tuple, Ranked] = {}

    def entry(row) -> Ranked:
        key = tuple(row[k] for k in keys)
        if key not in found:
            found[key] = Ranked(
                agent_name=row["agent_name"],
                version_name=row.get("version_name", ""),
                agent_version_id=row.get("agent_version_id", 0),
            )
        return found[key]

    for row in _grouped(
        query,
        "executions_runrollup",
        [*keys, "status"],
        ["runs", "total_tokens", "cost_usd"],
        edges,
    ):
        item, runs, current = entry(row), int(row["runs"]), row["b"] == 1
        error = row["status"] in ERROR_STATUSES
        finished = row["status"] in FINISHED_STATUSES
        if current:
            item.runs += runs
            item.errors += runs * error
            item.finished += runs * finished
            item.cost += Decimal(row["cost_usd"])
            item.tokens += int(row["total_tokens"])
        else:
            item.previous_runs += runs
            item.previous_errors += runs * error
            item.previous_finished += runs * finished
            item.previous_cost += Decimal(row["cost_usd"])
    for row in _grouped(query, "executions_durationrollup", [*keys, "bucket"], ["runs"], edges):
        item = entry(row)
        target = item.durations if row["b"] == 1 else item.previous_durations
        target[row["bucket"]] = target.get(row["bucket"], 0) + int(row["runs"])
    _sparklines(query, keys, found, now=now)
    return sorted((r for r in found.values() if r.runs), key=lambda r: (-r.runs, r.label))


def sparkline_edges(query: OverviewQuery, now: datetime | None = None) -> list[datetime]:
    today = timezone.localtime(now or timezone.now(), query.tz).date()
    return [local_day_start(today - timedelta(days=6 - i), query.tz) for i in range(8)]


def _sparklines(query, keys, found, now=None) -> None:
    edges = sparkline_edges(query, now)
    for item in found.values():
        item.sparkline = [0] * 7
    for row in _grouped(query, "executions_runrollup", keys, ["runs"], edges):
        key = tuple(row[k] for k in keys)
        if key in found and 0 <= row["b"] < 7:
            found[key].sparkline[row["b"]] += int(row["runs"])


def agent_sparklines(*, workspace, tz, now=None) -> dict[str, list[int]]:
    """Runs per local day of the last 7 days, per agent name: for the agents pages."""
    from .query import OverviewQuery

    end = timezone.now() if now is None else now
    stub = OverviewQuery(
        workspace=workspace,
        tz=tz,
        range="7d",
        start_date=None,
        end_date=None,
        start=end,
        end=end,
        grain="day",
        edges=[end, end],
    )
    edges = sparkline_edges(stub, now)
    lines: dict[str, list[int]] = defaultdict(lambda: [0] * 7)
    for row in _grouped(stub, "executions_runrollup", ["agent_name"], ["runs"], edges):
        if 0 <= row["b"] < 7:
            lines[row["agent_name"]][row["b"]] += int(row["runs"])
    return dict(lines)


@dataclass
class Spike:
    execution: Execution
    usual: Decimal
    ratio: float


def credit_spikes(query: OverviewQuery) -> list[Spike]:
    """Runs in the range whose credits are over SPIKE_FACTOR times their version's
    mean credits per run (over the same range), the largest first."""
    usual = {}
    for row in _grouped(
        query,
        "executions_runrollup",
        ["agent_version_id", "agent_name"],
        ["credits", "credited_runs"],
        None,
    ):
        if row["credited_runs"]:
            usual[(row["agent_version_id"], row["agent_name"])] = Decimal(row["credits"]) / int(
                row["credited_runs"]
            )
    if not usual:
        return []
    floor = min(usual.values()) * SPIKE_FACTOR
    runs = _scoped_runs(query).filter(credits__gt=floor).order_by(F("credits").desc())
    spikes = []
    # The credits index is walked from the top; a version's usual decides each run.
    for execution in runs.only(
        "id",
        "agent_name",
        "version_name",
        "agent_version_id",
        "credits",
        "cost_usd",
        "created_at",
        "status",
    )[:500]:
        mean = usual.get((execution.agent_version_id or 0, execution.agent_name))
        if mean and execution.credits > mean * SPIKE_FACTOR:
            spikes.append(Spike(execution, mean, float(execution.credits / mean)))
            if len(spikes) == SPIKE_LIMIT:
                break
    return spikes


def _scoped_runs(query: OverviewQuery):
    runs = Execution.objects.filter(
        workspace=query.workspace, created_at__gte=query.start, created_at__lt=query.end
    )
    if query.agent is not None:
        runs = runs.filter(agent_name=query.agent)
    if query.version is not None:
        runs = runs.filter(agent_version_id=query.version)
    if query.source is not None:
        runs = runs.filter(source=query.source)
    if query.schedule is not None:
        runs = runs.filter(schedule_id=query.schedule)
    return runs


@dataclass
class Approvals:
    waiting: int
    oldest: list[Execution]
    ages: list[tuple[str, int]]


AGE_BANDS = [
    ("under 1 h", timedelta(hours=1)),
    ("1-24 h", timedelta(days=1)),
    ("1-7 days", timedelta(days=7)),
    ("over 7 days", None),
]


def approvals_waiting(query: OverviewQuery, now: datetime | None = None) -> Approvals:
    """Runs awaiting approval now (whatever the range), counted by how long since they
    were created, the oldest listed. Two queries on the (workspace, status) index."""
    now = now or timezone.now()
    waiting = Execution.objects.filter(workspace=query.workspace, status=Status.AWAITING_APPROVAL)
    for column, value in (
        ("agent_name", query.agent),
        ("agent_version_id", query.version),
        ("source", query.source),
        ("schedule_id", query.schedule),
    ):
        if value is not None:
            waiting = waiting.filter(**{column: value})
    bands, lower = {}, None
    for i, (_, upper) in enumerate(AGE_BANDS):
        condition = Q()
        if upper is not None:
            condition &= Q(created_at__gt=now - upper)
        if lower is not None:
            condition &= Q(created_at__lte=now - lower)
        bands[f"band{i}"] = Count("pk", filter=condition)
        lower = upper
    counts = waiting.order_by().aggregate(**bands)
    ages = [(label, counts[f"band{i}"]) for i, (label, _) in enumerate(AGE_BANDS)]
    oldest = list(
        waiting.order_by("created_at").only(
            "id", "agent_name", "version_name", "created_at", "status"
        )[:APPROVAL_LIMIT]
    )
    return Approvals(waiting=sum(n for _, n in ages), oldest=oldest, ages=ages)
