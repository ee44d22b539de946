"""The overview's reads: every number on the page, from the hourly rollups.

Only the last hour (minute buckets, finer than the rollups) and the lists of
individual runs (credit spikes, approvals waiting) read executions, each through
an index. Buckets are grouped in the database on PostgreSQL (width_bucket over
the bucket edges) and in Python on SQLite, where data sets are small.

Over 500 lines on purpose: every region's read shares the range and filter
resolution (_where, _filtered, _grouped, _scoped_runs); the drawing is in present.py.
"""

from bisect import bisect_right
from collections import defaultdict
from copy import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from executions.models import TERMINAL_STATUSES, Execution, Status

from . import histogram, rollups, step_rollups
from .query import OverviewQuery, local_day_start
from .rollups import AGENT_HOURS, DURATION_HOURS, DURATIONS, ERROR_GROUPS, RUNS, STATUS_HOURS
from .step_rollups import STEP_DURATIONS, STEP_HOURS

# Failed runs for the error rate: "terminated" counts once the status exists.
ERROR_STATUSES = [s for s in ("failed", "timed_out", "terminated") if s in Status.values]
FINISHED_STATUSES = sorted(str(s) for s in TERMINAL_STATUSES)
STATUS_ORDER = [str(s) for s in Status]
QUANTILES = (0.5, 0.95, 0.99)
SPIKE_FACTOR = 3  # a run is a spike above this many times its version's mean
SPIKE_LIMIT = 20
SPIKE_SCAN = 1000  # at most this many spikes are ranked

DAILY_TABLES = {**rollups.DAILY, **step_rollups.DAILY}
RUN_SUMS = [
    "runs",
    "timed_runs",
    "duration_ms",
    "total_tokens",
    "cost_usd",
    "credits",
    "credited_runs",
]


FILTER_COLUMNS = (
    ("agent_name", "agent"),
    ("agent_version_id", "version"),
    ("source", "source"),
    ("schedule_id", "schedule"),
)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# What a UTC day's rows cost to read against an hour's (a day holds more distinct keys
# than an hour, fewer than 24 hours' worth): the daily tier is used when it reads less.
DAY_COST = 6


def _where(
    query: OverviewQuery, time_sql: str, time_params: list, filters: bool = True
) -> tuple[str, list]:
    sql = ["workspace_id = %s", time_sql]
    params: list = [query.workspace.pk, *time_params]
    for column, name in FILTER_COLUMNS if filters else ():
        value = getattr(query, name)
        if value is not None:
            sql.append(f"{column} = %s")
            params.append(value)
    return " AND ".join(sql), params


def _range(column: str, start: datetime, end: datetime) -> tuple[str, list]:
    adapt = connection.ops.adapt_datetimefield_value
    return f"{column} >= %s AND {column} < %s", [adapt(start), adapt(end)]


def _nearest_midnight(moment: datetime) -> datetime:
    """The UTC midnight nearest to an hour (the earlier one at noon)."""
    moment = moment.astimezone(UTC)
    floor = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return floor + DAY if moment - floor > timedelta(hours=12) else floor


def daily_plan(edges: list[datetime]) -> tuple[list[datetime], list[datetime]] | None:
    """How to read buckets with these edges from the daily tier, exactly, in any zone.

    Each edge moves to its nearest UTC midnight; the daily rows are bucketed by those
    moved edges. An hour between an edge and its moved edge then sits in the wrong
    bucket, and only those: its hourly rows are added to the bucket it belongs to
    and taken from the one the days gave it to (sums and histogram counts both add
    and subtract). In UTC that is no hour at all; in New York 5 per edge instead of
    24 per day. Returns (moved edges, the hours to correct with), or None when the
    hourly rows alone are fewer to read (short ranges, hour buckets, minute edges).
    """
    if any(e.minute or e.second or e.microsecond for e in edges):
        return None
    moved = [_nearest_midnight(e) for e in edges]
    hours: set[datetime] = set()
    for edge, midnight in zip(edges, moved, strict=True):
        moment = min(edge, midnight)
        while moment < max(edge, midnight):
            hours.add(moment)
            moment += HOUR
    days = (moved[-1] - moved[0]) // DAY
    if days == 0 or days * DAY_COST + len(hours) >= (edges[-1] - edges[0]) // HOUR:
        return None
    return moved, sorted(hours)


def _grouped(
    query: OverviewQuery,
    table: str,
    keys: list[str],
    sums: list[str],
    edges: list[datetime] | None,
    filters: bool = True,
) -> list[dict]:
    """Sums of `sums` over the rollup `table` in [edges[0], edges[-1]), per bucket of
    `edges` (None: one bucket) and per `keys`. Each row: {"b": index, key..., sum...}.

    From the daily twin of `table` plus a few hourly corrections when that reads
    fewer rows (daily_plan), else from the hourly table alone."""
    edges = edges or [query.start, query.end]
    daily = DAILY_TABLES.get(table)
    plan = daily_plan(edges) if daily else None
    merged: dict[tuple, list] = {}
    if plan is None:
        time_sql, time_params = _range("hour", edges[0], edges[-1])
        parts = [(table, "hour", time_sql, time_params, edges, None)]
    else:
        moved, hours = plan
        time_sql, time_params = _range("day", moved[0], moved[-1])
        parts = [(daily, "day", time_sql, time_params, moved, None)]
        if hours:
            parts.append((table, "hour", *_any_hour(hours), edges, moved))
    for part in parts:
        for b, sign, key, values in _fetch(query, keys, sums, filters, *part):
            if not 0 <= b < len(edges) - 1:
                continue
            values = values if sign > 0 else [-v for v in values]
            key = (b, *key)
            if key in merged:
                merged[key] = [a + v for a, v in zip(merged[key], values, strict=True)]
            else:
                merged[key] = values
    return [
        {"b": k[0], **dict(zip(keys, k[1:], strict=True)), **dict(zip(sums, v, strict=True))}
        for k, v in merged.items()
        if sum(v) != 0 or not sums
    ]


def _any_hour(hours: list[datetime]) -> tuple[str, list]:
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor == "postgresql":
        return "hour = ANY(%s::timestamptz[])", [list(hours)]
    return f"hour IN ({', '.join(['%s'] * len(hours))})", [adapt(h) for h in hours]


def _fetch(query, keys, sums, filters, table, column, time_sql, time_params, edges, moved):
    """Rows of one table as (bucket, sign, key values, sums). `moved` (corrections
    only): each row counts +1 in its bucket of `edges`, -1 in its bucket of `moved`."""
    where, params = _where(query, time_sql, time_params, filters)
    sum_sql = ", ".join(f"SUM({s})" for s in sums)
    key_sql = "".join(f", {k}" for k in keys)
    by_time = len(edges) > 2 or moved is not None
    postgres = connection.vendor == "postgresql"
    if postgres and moved is not None:
        sql = (
            f"SELECT width_bucket({column}, %s::timestamptz[]) - 1, "
            f"width_bucket({column}, %s::timestamptz[]) - 1{key_sql}, {sum_sql} "
            f"FROM {table} WHERE {where} GROUP BY 1, 2{key_sql}"
        )
        params = [list(edges), list(moved), *params]
    elif postgres and by_time:
        sql = (
            f"SELECT width_bucket({column}, %s::timestamptz[]) - 1{key_sql}, {sum_sql} "
            f"FROM {table} WHERE {where} GROUP BY 1{key_sql}"
        )
        params = [list(edges), *params]
    elif by_time:  # SQLite: bucket the times here
        sql = f"SELECT {column}{key_sql}, {sum_sql} FROM {table} WHERE {where} "
        sql += f"GROUP BY {column}{key_sql}"
    else:
        sql = f"SELECT 0{key_sql}, {sum_sql} FROM {table} WHERE {where}"
        sql += f" GROUP BY {', '.join(keys)}" if keys else ""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        raw = cursor.fetchall()
    for row in raw:
        if postgres and moved is not None:
            (b, d), rest = row[:2], row[2:]
        else:
            b, rest = row[0], row[1:]
            d = None
            if isinstance(b, datetime | str):
                moment = _sqlite_time(b)
                b = bisect_right(edges, moment) - 1
                if moved is not None:
                    d = bisect_right(moved, moment) - 1
        key = tuple(rest[: len(keys)])
        values = [_number(name, v) for name, v in zip(sums, rest[len(keys) :], strict=True)]
        if moved is None:
            yield b, 1, key, values
        elif b != d:
            yield b, 1, key, values
            yield d, -1, key, values


# Decimal sums, at the scale of the execution's own columns (SQLite sums them as floats).
DECIMAL_SCALE = {"cost_usd": Decimal("1e-12"), "credits": Decimal("0.0001")}


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


def _filtered(query: OverviewQuery) -> bool:
    return any(v is not None for v in (query.agent, query.version, query.source, query.schedule))


def timeline(query: OverviewQuery) -> Timeline:
    """Every time chart's numbers: runs by status, error rate, percentiles, tokens and
    cost by agent, credits per run. Two or three queries: the narrow rollups when no
    filter applies, the full ones (which have every filter's column) otherwise."""
    if query.grain == "minute":
        run_rows, duration_rows = _from_executions(query)
        status_rows = agent_rows = run_rows
    elif _filtered(query):
        run_rows = _grouped(query, RUNS, ["status", "agent_name"], RUN_SUMS, query.edges)
        status_rows = agent_rows = run_rows
        duration_rows = _grouped(query, DURATIONS, ["bucket"], ["runs"], query.edges)
    else:
        status_rows = _grouped(query, STATUS_HOURS, ["status"], RUN_SUMS, query.edges)
        agent_rows = _grouped(
            query, AGENT_HOURS, ["agent_name"], ["total_tokens", "cost_usd"], query.edges
        )
        duration_rows = _grouped(query, DURATION_HOURS, ["bucket"], ["runs"], query.edges)
    buckets = [Bucket(start=a, end=b) for a, b in query.buckets]
    totals = Bucket(start=query.start, end=query.end)
    statuses: set[str] = set()
    agents: set[str] = set()

    def targets(row):
        return (buckets[row["b"]], totals) if 0 <= row["b"] < len(buckets) else ()

    for row in status_rows:
        for target in targets(row):
            _add_status(target, row)
        statuses.add(row["status"])
    for row in agent_rows:
        for target in targets(row):
            _add_agent(target, row)
        agents.add(row["agent_name"])
    for row in duration_rows:
        for target in targets(row):
            target.durations[row["bucket"]] = target.durations.get(row["bucket"], 0) + row["runs"]
    for target in (*buckets, totals):
        target.percentiles = histogram.percentiles(target.durations, QUANTILES)
    return Timeline(
        buckets=buckets,
        statuses=[s for s in STATUS_ORDER if s in statuses],
        agents=sorted(agents, key=lambda a: (-totals.cost.get(a, 0), a)),
        totals=totals,
    )


def _add_status(target: Bucket, row: dict) -> None:
    status, runs = row["status"], int(row["runs"])
    target.statuses[status] = target.statuses.get(status, 0) + runs
    target.runs += runs
    if status in ERROR_STATUSES:
        target.errors += runs
    if status in FINISHED_STATUSES:
        target.finished += runs
    target.credits += Decimal(row["credits"])
    target.credited_runs += int(row["credited_runs"])


def _add_agent(target: Bucket, row: dict) -> None:
    agent = row["agent_name"]
    target.tokens[agent] = target.tokens.get(agent, 0) + int(row["total_tokens"])
    target.cost[agent] = target.cost.get(agent, Decimal(0)) + Decimal(row["cost_usd"])


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
    sparkline: list[int] = field(default_factory=lambda: [0] * 7)

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


def ranked_lists(
    query: OverviewQuery, *, now: datetime | None = None
) -> tuple[list[Ranked], list[Ranked]]:
    """Agents and versions by runs, with error rate, p95, cost, the change against the
    previous period of the same length, and runs per day of the last 7 days.

    Read once per version (three queries); an agent is the sum of its versions, its
    histogram the sum of theirs, so both lists come from the same rows.
    """
    keys = ["agent_name", "version_name", "agent_version_id"]
    prev_start, _ = query.previous
    edges = [prev_start, query.start, query.end]
    versions: dict[tuple, Ranked] = {}
    agents: dict[tuple, Ranked] = {}

    def entries(row) -> tuple[Ranked, Ranked]:
        key = tuple(row[k] for k in keys)
        if key not in versions:
            versions[key] = Ranked(row["agent_name"], row["version_name"], row["agent_version_id"])
        if row["agent_name"] not in agents:
            agents[row["agent_name"]] = Ranked(row["agent_name"], "", 0)
        return versions[key], agents[row["agent_name"]]

    for row in _grouped(
        query, RUNS, [*keys, "status"], ["runs", "total_tokens", "cost_usd"], edges
    ):
        runs, current = int(row["runs"]), row["b"] == 1
        error = row["status"] in ERROR_STATUSES
        finished = row["status"] in FINISHED_STATUSES
        for item in entries(row):
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
    for row in _grouped(query, DURATIONS, [*keys, "bucket"], ["runs"], edges):
        for item in entries(row):
            target = item.durations if row["b"] == 1 else item.previous_durations
            target[row["bucket"]] = target.get(row["bucket"], 0) + int(row["runs"])
    for row in _grouped(query, RUNS, keys, ["runs"], sparkline_edges(query, now)):
        if 0 <= row["b"] < 7:
            for item in entries(row):
                item.sparkline[row["b"]] += int(row["runs"])

    def order(items):
        return sorted((r for r in items if r.runs), key=lambda r: (-r.runs, r.label))

    return order(agents.values()), order(versions.values())


def sparkline_edges(query: OverviewQuery, now: datetime | None = None) -> list[datetime]:
    today = timezone.localtime(now or timezone.now(), query.tz).date()
    return [local_day_start(today - timedelta(days=6 - i), query.tz) for i in range(8)]


def agent_sparklines(*, workspace, tz, agent_name: str | None = None, now=None) -> dict:
    """Runs per local day of the last 7 days, per agent name (all agents, or one):
    for the agents list and the agent page. One query on the narrow AgentHour rollup."""
    from .query import OverviewQuery

    moment = timezone.now() if now is None else now
    stub = OverviewQuery(
        workspace=workspace,
        tz=tz,
        range="7d",
        start_date=None,
        end_date=None,
        start=moment,
        end=moment,
        grain="day",
        edges=[moment, moment],
        agent=agent_name,
    )
    edges = sparkline_edges(stub, now)
    table = RUNS if agent_name is not None else AGENT_HOURS
    lines: dict[str, list[int]] = defaultdict(lambda: [0] * 7)
    for row in _grouped(stub, table, ["agent_name"], ["runs"], edges):
        if 0 <= row["b"] < 7:
            lines[row["agent_name"]][row["b"]] += int(row["runs"])
    return dict(lines)


@dataclass
class Spike:
    execution: Execution
    measure: str  # "credits" or "cost_usd"
    usual: Decimal
    ratio: float

    @property
    def value(self) -> Decimal:
        return getattr(self.execution, self.measure)


# (measure, its rollup sum, the runs it is averaged over): credits are NULL until
# calculated, so their mean is over credited runs; cost is never NULL (0 until known).
SPIKE_MEASURES = (("credits", "credits", "credited_runs"), ("cost_usd", "cost_usd", "runs"))


def spikes(query: OverviewQuery) -> list[Spike]:
    """Runs in the range whose credits or cost are over SPIKE_FACTOR times their
    version's mean per run (over the range, or the 30 days before its end if longer),
    the furthest above first; a run above on both measures is listed for each. One
    rollup read, then per measure one range scan per version on the (workspace,
    agent_version, credits) and (..., cost_usd) indexes, so only the spikes are read."""
    window = copy(query)
    window.start = min(query.start, query.end - timedelta(days=30))
    sums = ["credits", "credited_runs", "cost_usd", "runs"]
    rows = _grouped(window, RUNS, ["agent_version_id", "agent_name"], sums, None)
    found = []
    for measure, total, count in SPIKE_MEASURES:
        usual = {
            (row["agent_version_id"], row["agent_name"]): Decimal(row[total]) / int(row[count])
            for row in rows
            if row[count] and row[total] > 0
        }
        found += _spikes_of(query, measure, usual)
    found.sort(key=lambda s: (-s.ratio, s.execution.created_at, s.measure))
    return found[:SPIKE_LIMIT]


def _spikes_of(query: OverviewQuery, measure: str, usual: dict) -> list[Spike]:
    if not usual:
        return []
    conditions = [
        Q(agent_version_id=version, **{f"{measure}__gt": mean * SPIKE_FACTOR})
        if version
        else Q(agent_version_id=None, agent_name=agent, **{f"{measure}__gt": mean * SPIKE_FACTOR})
        for (version, agent), mean in usual.items()
    ]
    # No ORDER BY on the outer query: the model's default (-created_at) would have the
    # planner walk the time index through every run of the range.
    base = _scoped_runs(query).order_by()
    if connection.features.supports_slicing_ordering_in_compound:
        # One branch per version, each a short walk down (workspace, version, measure):
        # an OR of them all is estimated as common and read with a sequential scan.
        branches = [
            base.filter(c).values_list("pk", measure).order_by(f"-{measure}")[:SPIKE_LIMIT]
            for c in conditions
        ]
        ids = (
            branches[0].union(*branches[1:], all=True).order_by()
            if len(branches) > 1
            else branches[0]
        )
        runs = Execution.objects.filter(pk__in=[pk for pk, _ in ids]).order_by()
    else:
        above = Q()
        for condition in conditions:
            above |= condition
        runs = base.filter(above)
    runs = runs.only(
        "id",
        "agent_name",
        "version_name",
        "agent_version_id",
        "credits",
        "cost_usd",
        "created_at",
        "status",
    )
    found = []
    for execution in runs[:SPIKE_SCAN]:
        mean = usual[(execution.agent_version_id or 0, execution.agent_name)]
        value = getattr(execution, measure)
        found.append(Spike(execution, measure, mean, float(value / mean)))
    return found


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
    ages: list[tuple[str, int]]


AGE_BANDS = [
    ("under 1 h", timedelta(hours=1)),
    ("1-24 h", timedelta(days=1)),
    ("1-7 days", timedelta(days=7)),
    ("over 7 days", None),
]


def approvals_waiting(query: OverviewQuery, now: datetime | None = None) -> Approvals:
    """Runs awaiting approval now (whatever the range), counted by how long they have
    waited: since they last paused for approval (paused_at; a run that has waited
    before, then ran again, starts afresh), or since created when an older row has no
    paused_at. One query on the (workspace, status) index."""
    now = now or timezone.now()
    waiting = Execution.objects.filter(
        workspace=query.workspace, status=Status.AWAITING_APPROVAL
    ).annotate(waiting_since=Coalesce("paused_at", "created_at"))
    for column, name in FILTER_COLUMNS:
        value = getattr(query, name)
        if value is not None:
            waiting = waiting.filter(**{column: value})
    bands, lower = {}, None
    for i, (_, upper) in enumerate(AGE_BANDS):
        condition = Q()
        if upper is not None:
            condition &= Q(waiting_since__gt=now - upper)
        if lower is not None:
            condition &= Q(waiting_since__lte=now - lower)
        bands[f"band{i}"] = Count("pk", filter=condition)
        lower = upper
    counts = waiting.order_by().aggregate(**bands)
    ages = [(label, counts[f"band{i}"]) for i, (label, _) in enumerate(AGE_BANDS)]
    return Approvals(waiting=sum(n for _, n in ages), ages=ages)


@dataclass
class ErrorGroup:
    message: str
    runs: int
    first_hour: datetime
    last_hour: datetime
    agents: int


ERROR_GROUP_LIMIT = 15


def error_groups(query: OverviewQuery) -> list[ErrorGroup]:
    """The most frequent error groups of the range: runs, the first and last hour they
    were seen, how many agents. Version, source and schedule filters are not in this
    rollup: with one of them set, the groups are counted from the executions."""
    if any(v is not None for v in (query.version, query.source, query.schedule)):
        return _error_groups_from_executions(query)
    where, params = _where(query, *_range("hour", query.start, query.end))
    sql = (
        "SELECT error_group, SUM(runs), MIN(hour), MAX(hour), COUNT(DISTINCT agent_name) "
        f"FROM {ERROR_GROUPS} WHERE {where} AND runs > 0 GROUP BY error_group "
        "ORDER BY 2 DESC, 1 LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, ERROR_GROUP_LIMIT])
        rows = cursor.fetchall()
    return [
        ErrorGroup(message, int(n), _sqlite_time(first), _sqlite_time(last), int(agents))
        for message, n, first, last, agents in rows
    ]


def _error_groups_from_executions(query: OverviewQuery) -> list[ErrorGroup]:
    from django.db.models import CharField, Func, Max, Min

    group = Func(F("error"), function="runboard_error_group", output_field=CharField())
    rows = (
        _scoped_runs(query)
        .exclude(error="")
        .annotate(group=group)
        .values("group")
        .annotate(
            n=Count("pk"),
            first=Min("created_at"),
            last=Max("created_at"),
            agents=Count("agent_name", distinct=True),
        )
        .order_by("-n", "group")[:ERROR_GROUP_LIMIT]
    )
    return [ErrorGroup(r["group"], r["n"], r["first"], r["last"], r["agents"]) for r in rows]


@dataclass
class CallStats:
    kind: str
    name: str
    model: str
    calls: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)
    durations: dict[int, int] = field(default_factory=dict)

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.calls if self.calls else None

    @property
    def p95(self) -> float | None:
        return histogram.percentiles(self.durations, (0.95,))[0.95]

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def call_stats(query: OverviewQuery) -> list[CallStats]:
    """Tool and model calls of the range per kind, name and model: calls, failures,
    tokens, cost and their duration histogram. Two to four queries (daily rows plus
    hourly corrections, _grouped): on the narrow step rollups without a filter, on
    the per-run ones (agent, version, source, schedule columns) with one."""
    filtered = _filtered(query)
    sums_table = step_rollups.STEP_RUN_HOURS if filtered else STEP_HOURS
    durations_table = step_rollups.STEP_RUN_DURATIONS if filtered else STEP_DURATIONS
    keys = ["kind", "name", "model"]
    found: dict[tuple, CallStats] = {}
    sums = ["calls", "failed", "prompt_tokens", "completion_tokens", "cost_usd"]
    for row in _grouped(query, sums_table, keys, sums, None, filters=filtered):
        found[(row["kind"], row["name"], row["model"])] = CallStats(
            row["kind"],
            row["name"],
            row["model"],
            row["calls"],
            row["failed"],
            row["prompt_tokens"],
            row["completion_tokens"],
            row["cost_usd"],
        )
    for row in _grouped(
        query, durations_table, [*keys, "bucket"], ["calls"], None, filters=filtered
    ):
        stats = found.get((row["kind"], row["name"], row["model"]))
        if stats is not None:
            stats.durations[row["bucket"]] = row["calls"]
    return [c for c in found.values() if c.calls]
