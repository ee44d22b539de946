"""The numbers alert rules compare: read per workspace and window, shared by every rule
of that window, so a tick costs a few queries per (workspace, window), not per rule.

A window [end - W, end) is split into whole UTC hours, read from the overview's
rollups (RunRollup, DurationRollup: kept by triggers), and the partial hours at its
edges, read from the executions themselves through their (workspace, created_at)
index. Both come back grouped by (agent, version, source, schedule, status), the
dimensions a rule's scope can name; each rule then sums the groups in its scope.

A rule scoped by a saved view applies every filter of the view, exactly as the table
does (its own ExecutionFilter). A view whose filters are all rollup dimensions (agent,
version, status, source, schedule) is read from the rollups like any scope; a view
with any other filter (a search, metadata, tags, a minimum cost...) is read from the
executions of the window and its baseline days, through the (workspace, created_at)
index, in one query per view and window a tick. Dates (start, end, after, before) pin
a view to a fixed stretch of time, which a moving window cannot use: the rule form
refuses such a view (view_problems).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.db import connections
from django.db.models import Case, Count, IntegerField, Q, Sum, Value, When
from django.db.models.expressions import RawSQL
from django.http import QueryDict

from agents.models import Workspace
from executions.models import Execution, SavedView, Status
from executions.overview.histogram import bucket_sql, percentiles
from executions.overview.models import DurationRollup, RunRollup

from .models import AlertRule, Metric

ERROR_STATUSES = frozenset({Status.FAILED, Status.TIMED_OUT})
ENDED = frozenset({*ERROR_STATUSES, Status.COMPLETED, Status.CANCELLED, Status.REJECTED})
ENDED = ENDED | {Status.TERMINATED}
HOUR = timedelta(hours=1)
BASELINE_DAYS = 7
# Metrics computed from the rollups; the others query their own tables.
ROLLUP_METRICS = frozenset(
    {
        Metric.RUN_COUNT,
        Metric.ERROR_RATE,
        Metric.DURATION_P95,
        Metric.COST_PER_RUN,
        Metric.TOTAL_COST,
        Metric.CREDITS_PER_RUN,
    }
)


@dataclass
class Sums:
    runs: int = 0
    ended: int = 0
    errors: int = 0
    cost: Decimal = Decimal(0)
    credits: Decimal = Decimal(0)
    credited: int = 0
    buckets: dict = field(default_factory=lambda: defaultdict(int))

    def add(self, status: str, runs, cost, credits, credited) -> None:
        self.runs += runs
        if status in ENDED:
            self.ended += runs
        if status in ERROR_STATUSES:
            self.errors += runs
        self.cost += cost or 0
        self.credits += credits or 0
        self.credited += credited or 0


class Groups(defaultdict):
    """Sums per group: (agent_name, agent_version_id (0: none), source, schedule_id
    (0: none), status; "" for the duration buckets, which have no status). A thousand
    rules share one reading, so what each scope adds up to is kept in `scoped`."""

    def __init__(self):
        super().__init__(Sums)
        self.scoped: dict = {}


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _split(start: datetime, end: datetime) -> tuple[datetime | None, datetime | None]:
    """The whole hours inside [start, end), as [first, last) or (None, None)."""
    first = floor_hour(start)
    if first < start:
        first += HOUR
    last = floor_hour(end)
    return (first, last) if first < last else (None, None)


def read_groups(workspace_id: int, start: datetime, end: datetime, *, durations: bool) -> Groups:
    """Every run created in [start, end) of the workspace, summed per group."""
    return read_series(workspace_id, [(start, end)], durations=durations)[0]


def _which(parts: list[tuple[int, Q]]):
    """The index of the window a row falls in, as SQL (windows never overlap)."""
    return Case(*[When(q, then=Value(i)) for i, q in parts], output_field=IntegerField())


def read_series(workspace_id: int, windows: list[tuple], *, durations: bool) -> list[Groups]:
    """Groups for each window (the current one, then the baseline's days), in three
    queries whatever the number of windows: rollups, duration rollups, edge runs."""
    series = [Groups() for _ in windows]
    hours, edges = [], []
    for i, (start, end) in enumerate(windows):
        first, last = _split(start, end)
        if first is None:
            edges.append((i, Q(created_at__gte=start, created_at__lt=end)))
            continue
        hours.append((i, Q(hour__gte=first, hour__lt=last)))
        for edge_start, edge_end in ((start, first), (last, end)):
            if edge_start < edge_end:
                edges.append((i, Q(created_at__gte=edge_start, created_at__lt=edge_end)))
    dims = ["agent_name", "agent_version_id", "source", "schedule_id"]
    if hours:
        anywhere = Q()
        for _i, q in hours:
            anywhere |= q
        rows = (
            RunRollup.objects.filter(anywhere, workspace_id=workspace_id)
            .annotate(_w=_which(hours))
            .values_list("_w", *dims, "status")
            .annotate(n=Sum("runs"), c=Sum("cost_usd"), cr=Sum("credits"), crn=Sum("credited_runs"))
            .order_by()
        )
        for w, agent, version, source, schedule, status, runs, cost, credits, credited in rows:
            series[w][(agent, version, source, schedule, status)].add(
                status, runs, cost, credits, credited
            )
        if durations:
            buckets = (
                DurationRollup.objects.filter(anywhere, workspace_id=workspace_id)
                .annotate(_w=_which(hours))
                .values_list("_w", *dims, "bucket")
                .annotate(n=Sum("runs"))
                .order_by()
            )
            for w, agent, version, source, schedule, bucket, runs in buckets:
                # Durations have no status; kept on a status-less key of the group.
                series[w][(agent, version, source, schedule, "")].buckets[bucket] += runs
    if edges:
        _read_runs(
            Execution.objects.filter(workspace_id=workspace_id), edges, series, durations=durations
        )
    return series


def read_runs_series(runs, windows: list[tuple], *, durations: bool) -> list[Groups]:
    """Groups for each window, read from the runs themselves (a saved view's filtered
    executions), in one query whatever the number of windows."""
    series = [Groups() for _ in windows]
    edges = [
        (i, Q(created_at__gte=start, created_at__lt=end)) for i, (start, end) in enumerate(windows)
    ]
    _read_runs(runs, edges, series, durations=durations)
    return series


def _read_runs(runs, edges: list[tuple[int, Q]], series: list[Groups], *, durations: bool) -> None:
    """Add the runs created in each (window index, time range) to that window's groups.
    Every range in one query; with durations, grouped by histogram bucket as well
    (computed in SQL) rather than a second read of the runs."""
    dims = ["agent_name", "agent_version_id", "source", "schedule_id"]
    anywhere = Q()
    for _i, q in edges:
        anywhere |= q
    runs = runs.filter(anywhere).annotate(_w=_which(edges))
    columns = ["_w", *dims, "status"]
    if durations:
        vendor = connections[runs.db].vendor
        # PostgreSQL's LEAST skips NULLs: a run without a duration must stay NULL.
        bucket = (
            f"CASE WHEN duration_ms IS NULL THEN NULL ELSE {bucket_sql('duration_ms', vendor)} END"
        )
        runs = runs.annotate(_bucket=RawSQL(bucket, []))
        columns.append("_bucket")
    rows = (
        runs.values_list(*columns)
        .annotate(
            n=Count("id"),
            c=Sum("cost_usd"),
            cr=Sum("credits"),
            crn=Count("id", filter=Q(credits__isnull=False)),
        )
        .order_by()
    )
    for row in rows:
        w, agent, version, source, schedule, status = row[:6]
        n, cost, credits, credited = row[-4:]
        key = (agent, version or 0, source, schedule or 0, status)
        series[w][key].add(status, n, cost, credits, credited)
        if durations and row[6] is not None:
            series[w][(*key[:4], "")].buckets[row[6]] += n


@dataclass(frozen=True)
class Scope:
    """Which groups a rule counts: None means any."""

    agents: frozenset | None = None
    version: int | None = None
    source: str | None = None
    schedule: int | None = None
    statuses: frozenset | None = None
    # A saved view with filters the rollups do not carry: its runs are read instead
    # (view_runs), and every group read from them is in scope.
    view: int | None = None

    def matches(self, key: tuple, *, status_free: bool = False) -> bool:
        agent, version, source, schedule, status = key
        if self.agents is not None and agent not in self.agents:
            return False
        if self.version is not None and version != self.version:
            return False
        if self.source is not None and source != self.source:
            return False
        if self.schedule is not None and schedule != self.schedule:
            return False
        return self.statuses is None or status_free or status in self.statuses

    def table_params(self) -> list[tuple[str, str]]:
        pairs = [("agent", a) for a in sorted(self.agents or ())]
        if self.version is not None:
            pairs.append(("version", str(self.version)))
        if self.source:
            pairs.append(("source", self.source))
        if self.schedule is not None:
            pairs.append(("schedule", str(self.schedule)))
        pairs += [("status", s) for s in sorted(self.statuses or ())]
        return pairs


# The table's filters that are dimensions of the rollups' groups.
ROLLUP_FILTERS = frozenset({"agent", "version", "status", "source", "schedule"})
# Filters that pin a view to a fixed stretch of time: a rule reads a moving window.
DATE_FILTERS = ("start", "end", "after", "before")


def view_filterset(view: SavedView, workspace_id: int):
    """The table's own filterset over the view's query (as the API's lists use it): a
    rule counts exactly the runs the table shows for the view (dates in the server's
    time zone)."""
    from executions.table.selectors import execution_filterset

    return execution_filterset(workspace=Workspace(pk=workspace_id), params=QueryDict(view.query))


def view_problems(view: SavedView, workspace_id: int) -> list[str]:
    """Why this view cannot scope a rule, one sentence per filter at fault (none: it can)."""
    filterset = view_filterset(view, workspace_id)
    form = filterset.form
    problems = []
    for name, errors in filterset.errors.items():
        label = form.fields[name].label if name in form.fields else name
        problems.append(f"its filter “{label}” ({name}) is not valid: {' '.join(errors)}")
    for name in DATE_FILTERS:
        if filterset.applied().get(name):
            label = form.fields[name].label
            problems.append(
                f"its filter “{label}” ({name}) pins it to fixed dates, and a rule reads "
                "a moving window: save the view without dates"
            )
    return problems


def _scope_of_view(rule: AlertRule) -> tuple[Scope, object]:
    filterset = view_filterset(rule.saved_view, rule.workspace_id)
    applied = filterset.applied()
    if not set(applied) <= ROLLUP_FILTERS:
        return Scope(view=rule.saved_view_id), filterset
    statuses = filterset.status_values(applied.get("status"))
    version, schedule = applied.get("version"), applied.get("schedule")
    scope = Scope(
        agents=frozenset(applied["agent"]) if applied.get("agent") else None,
        version=version.pk if version is not None else None,
        source=applied.get("source") or None,
        schedule=schedule.pk if schedule is not None else None,
        statuses=frozenset(statuses) if statuses else None,
    )
    return scope, filterset


def scope_of(rule: AlertRule, views: dict | None = None) -> Scope:
    """The rule's agent, version or saved view. A view whose filters the rollups carry
    becomes their groups; any other filter makes it a view read from the runs. `views`
    keeps each view's parsed filters for the rest of a tick (validating a view's
    filters is a form's work, a millisecond or two, and rules share views)."""
    if rule.agent_version_id:
        return Scope(version=rule.agent_version_id)
    if rule.agent_name:
        return Scope(agents=frozenset({rule.agent_name}))
    if rule.saved_view_id and rule.saved_view is not None:
        if views is None:
            return _scope_of_view(rule)[0]
        if rule.saved_view_id not in views:
            views[rule.saved_view_id] = _scope_of_view(rule)
        return views[rule.saved_view_id][0]
    return Scope()


def view_runs(rule: AlertRule, views: dict | None = None):
    """The executions a view-scoped rule counts: every filter of the view applied."""
    if views is not None and rule.saved_view_id in views:
        filterset = views[rule.saved_view_id][1]
    else:
        filterset = view_filterset(rule.saved_view, rule.workspace_id)
    return filterset.qs.order_by()


@dataclass
class Reading:
    value: float | None
    runs: int


def _merge(into: Sums, sums: Sums) -> None:
    into.runs += sums.runs
    into.ended += sums.ended
    into.errors += sums.errors
    into.cost += sums.cost
    into.credits += sums.credits
    into.credited += sums.credited
    for bucket, n in sums.buckets.items():
        into.buckets[bucket] += n


def _index(groups: Groups) -> None:
    """One pass: the sums of everything, of each agent and of each version, which is
    what almost every rule's scope is."""
    everything, by_agent, by_version = Sums(), defaultdict(Sums), defaultdict(Sums)
    for key, sums in groups.items():
        _merge(everything, sums)
        _merge(by_agent[key[0]], sums)
        _merge(by_version[key[1]], sums)
    groups.scoped[Scope()] = everything
    for agent, sums in by_agent.items():
        groups.scoped[Scope(agents=frozenset({agent}))] = sums
    for version, sums in by_version.items():
        groups.scoped[Scope(version=version)] = sums
    groups.scoped["indexed"] = True


def scoped_sums(groups: Groups, scope: Scope) -> Sums:
    """What the groups in `scope` add up to, worked out once per scope and reading."""
    if "indexed" not in groups.scoped:
        _index(groups)
    total = groups.scoped.get(scope)
    if total is None:
        total = Sums()
        for key, sums in groups.items():
            if scope.matches(key, status_free=key[4] == ""):
                _merge(total, sums)
        groups.scoped[scope] = total
    return total


def rollup_metric(metric: str, groups: Groups, scope: Scope) -> Reading:
    total = scoped_sums(groups, scope)
    buckets = total.buckets
    runs = total.runs
    if metric == Metric.RUN_COUNT:
        return Reading(float(runs), runs)
    if metric == Metric.TOTAL_COST:
        return Reading(float(total.cost), runs)
    if metric == Metric.ERROR_RATE:
        return Reading(100.0 * total.errors / total.ended if total.ended else None, runs)
    if metric == Metric.COST_PER_RUN:
        return Reading(float(total.cost) / runs if runs else None, runs)
    if metric == Metric.CREDITS_PER_RUN:
        credited = total.credited
        return Reading(float(total.credits) / credited if credited else None, runs)
    if metric == Metric.DURATION_P95:
        p95 = percentiles(buckets, (0.95,))[0.95]
        return Reading(p95 / 1000 if p95 is not None else None, runs)
    raise ValueError(f"metric: {metric} is not read from the rollups")


def _scoped_executions(rule: AlertRule, scope: Scope, views: dict | None = None):
    if scope.view is not None:
        return view_runs(rule, views)
    runs = Execution.objects.filter(workspace_id=rule.workspace_id)
    if scope.agents is not None:
        runs = runs.filter(agent_name__in=scope.agents)
    if scope.version is not None:
        runs = runs.filter(agent_version_id=scope.version)
    if scope.source is not None:
        runs = runs.filter(source=scope.source)
    if scope.schedule is not None:
        runs = runs.filter(schedule_id=scope.schedule)
    if scope.statuses is not None:
        runs = runs.filter(status__in=scope.statuses)
    return runs


def direct_series(
    rule: AlertRule, scope: Scope, windows: list[tuple], views: dict | None = None
) -> list[Reading]:
    """The metrics the rollups do not carry, for each window (the current one first,
    then the baseline's), in one or two queries whatever the number of windows."""
    runs = _scoped_executions(rule, scope, views)
    if rule.metric == Metric.APPROVALS_WAITING:
        # Runs waiting for a person longer than the window, whenever they started. Only
        # now is known: who was waiting a week ago is not kept, so there is no baseline.
        start = windows[0][0]
        waiting = runs.filter(status=Status.AWAITING_APPROVAL, paused_at__lt=start).count()
        return [Reading(float(waiting), waiting)] + [Reading(None, 0)] * (len(windows) - 1)
    spans = [Q(created_at__gte=start, created_at__lt=end) for start, end in windows]
    anywhere = Q()
    for span in spans:
        anywhere |= span
    in_windows = runs.filter(anywhere)
    totals = in_windows.aggregate(
        **{f"r{i}": Count("id", filter=span) for i, span in enumerate(spans)},
        **(
            {
                f"f{i}": Count("id", filter=span & Q(budget__flagged=True))
                for i, span in enumerate(spans)
            }
            if rule.metric == Metric.BUDGET_FLAGGED
            else {}
        ),
    )
    if rule.metric == Metric.BUDGET_FLAGGED:
        return [Reading(float(totals[f"f{i}"]), totals[f"r{i}"]) for i in range(len(spans))]
    if rule.metric == Metric.CORRECTION_RATE:
        from feedback.models import FieldCorrection

        corrections = FieldCorrection.objects.filter(execution__in=in_windows.values("pk"))
        if rule.field_name:
            corrections = corrections.filter(path=rule.field_name)
        corrected = corrections.aggregate(
            **{
                f"c{i}": Count(
                    "execution_id",
                    distinct=True,
                    filter=Q(
                        execution__created_at__gte=windows[i][0],
                        execution__created_at__lt=windows[i][1],
                    ),
                )
                for i in range(len(spans))
            }
        )
        readings = []
        for i in range(len(spans)):
            total = totals[f"r{i}"]
            readings.append(Reading(100.0 * corrected[f"c{i}"] / total if total else None, total))
        return readings
    raise ValueError(f"metric: unknown metric {rule.metric}")


def direct_metric(rule: AlertRule, scope: Scope, start: datetime, end: datetime) -> Reading:
    return direct_series(rule, scope, [(start, end)])[0]


def _view_link_params() -> list[str]:
    """The table's filters by URL name, in their order (the window's instants replace
    the view's after/before)."""
    from executions.table.filters import ExecutionFilter

    return [p for p in ExecutionFilter.base_filters if p not in ("after", "before")]


def table_link(rule: AlertRule, scope: Scope, start: datetime, end: datetime) -> str:
    """The executions table filtered to the runs the reading counted."""
    from executions.overview.query import iso

    pairs = scope.table_params()
    statuses = scope.statuses
    if rule.saved_view_id and rule.saved_view is not None:
        # The view's own filters, as the table spells them (the view's dates give way
        # to the window's instants).
        saved = QueryDict(rule.saved_view.query)
        pairs = [
            (name, value)
            for name in _view_link_params()
            for value in saved.getlist(name)
            if value.strip()
        ]
        statuses = frozenset(saved.getlist("status")) or None
    if rule.metric == Metric.ERROR_RATE and statuses is None:
        pairs += [("status", s) for s in sorted(ERROR_STATUSES)]
    # The runs that made the value, where the table can tell them apart.
    if rule.metric == Metric.BUDGET_FLAGGED and ("budget", "flagged") not in pairs:
        pairs.append(("budget", "flagged"))
    if rule.metric == Metric.CORRECTION_RATE and not any(k == "feedback" for k, _ in pairs):
        pairs.append(("feedback", "corrected"))
    if rule.metric == Metric.APPROVALS_WAITING:
        pairs = [*pairs, ("status", Status.AWAITING_APPROVAL)]
    else:
        pairs += [("after", iso(start)), ("before", iso(end))]
    return "/executions/?" + urlencode(pairs)


def chart_link(rule: AlertRule, scope: Scope) -> str:
    pairs = [("range", "24h" if rule.window_minutes <= 24 * 60 else "7d")]
    if rule.saved_view_id:
        pairs.append(("view", str(rule.saved_view_id)))
    elif scope.version is not None:
        pairs.append(("version", str(scope.version)))
    elif scope.agents:
        pairs.append(("agent", next(iter(scope.agents))))
    return "/overview/?" + urlencode(pairs)
