"""The numbers alert rules compare: read per workspace and window, shared by every rule
of that window, so a tick costs a few queries per (workspace, window), not per rule.

A window [end - W, end) is split into whole UTC hours, read from the overview's
rollups (RunRollup, DurationRollup: kept by triggers), and the partial hours at its
edges, read from the executions themselves through their (workspace, created_at)
index. Both come back grouped by (agent, version, source, schedule, status), the
dimensions a rule's scope can name; each rule then sums the groups in its scope.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Count, Q, Sum
from django.http import QueryDict

from executions.models import Execution, Source, Status
from executions.overview.histogram import bucket_of, percentiles
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


# A group: (agent_name, agent_version_id (0: none), source, schedule_id (0: none), status)
Groups = dict[tuple, Sums]


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
    groups: Groups = defaultdict(Sums)
    first, last = _split(start, end)
    edges = [(start, end)] if first is None else [(start, first), (last, end)]
    if first is not None:
        rows = (
            RunRollup.objects.filter(workspace_id=workspace_id, hour__gte=first, hour__lt=last)
            .values_list("agent_name", "agent_version_id", "source", "schedule_id", "status")
            .annotate(n=Sum("runs"), c=Sum("cost_usd"), cr=Sum("credits"), crn=Sum("credited_runs"))
            .order_by()
        )
        for agent, version, source, schedule, status, runs, cost, credits, credited in rows:
            groups[(agent, version, source, schedule, status)].add(
                status, runs, cost, credits, credited
            )
        if durations:
            buckets = (
                DurationRollup.objects.filter(
                    workspace_id=workspace_id, hour__gte=first, hour__lt=last
                )
                .values_list("agent_name", "agent_version_id", "source", "schedule_id", "bucket")
                .annotate(n=Sum("runs"))
                .order_by()
            )
            for agent, version, source, schedule, bucket, runs in buckets:
                # Durations have no status; kept on a status-less key of the group.
                groups[(agent, version, source, schedule, "")].buckets[bucket] += runs
    for edge_start, edge_end in edges:
        if edge_start >= edge_end:
            continue
        runs = Execution.objects.filter(
            workspace_id=workspace_id, created_at__gte=edge_start, created_at__lt=edge_end
        )
        rows = (
            runs.values_list("agent_name", "agent_version_id", "source", "schedule_id", "status")
            .annotate(
                n=Count("id"),
                c=Sum("cost_usd"),
                cr=Sum("credits"),
                crn=Count("id", filter=Q(credits__isnull=False)),
            )
            .order_by()
        )
        for agent, version, source, schedule, status, n, cost, credits, credited in rows:
            key = (agent, version or 0, source, schedule or 0, status)
            groups[key].add(status, n, cost, credits, credited)
        if durations:
            timed = runs.filter(duration_ms__isnull=False).values_list(
                "agent_name", "agent_version_id", "source", "schedule_id", "duration_ms"
            )
            for agent, version, source, schedule, ms in timed.iterator(chunk_size=2000):
                key = (agent, version or 0, source, schedule or 0, "")
                groups[key].buckets[bucket_of(ms)] += 1
    return groups


@dataclass
class Scope:
    """Which groups a rule counts: None means any."""

    agents: frozenset | None = None
    version: int | None = None
    source: str | None = None
    schedule: int | None = None
    statuses: frozenset | None = None

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


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def scope_of(rule: AlertRule) -> Scope:
    """The rule's agent or version, or the filters of its saved view that the rollups
    carry (agent, version, source, schedule, status); others in the view are ignored."""
    if rule.agent_version_id:
        return Scope(version=rule.agent_version_id)
    if rule.agent_name:
        return Scope(agents=frozenset({rule.agent_name}))
    if rule.saved_view_id and rule.saved_view is not None:
        saved = QueryDict(rule.saved_view.query)
        agents = [a for a in saved.getlist("agent") if a]
        statuses = [s for s in saved.getlist("status") if s in Status.values]
        source = saved.get("source") or None
        return Scope(
            agents=frozenset(agents) if agents else None,
            version=_int(saved.get("version", "")),
            source=source if source in Source.values else None,
            schedule=_int(saved.get("schedule", "")),
            statuses=frozenset(statuses) if statuses else None,
        )
    return Scope()


@dataclass
class Reading:
    value: float | None
    runs: int


def rollup_metric(metric: str, groups: Groups, scope: Scope) -> Reading:
    total = Sums()
    buckets: dict = defaultdict(int)
    for key, sums in groups.items():
        if key[4] == "":
            if scope.matches(key, status_free=True):
                for bucket, n in sums.buckets.items():
                    buckets[bucket] += n
            continue
        if scope.matches(key):
            total.runs += sums.runs
            total.ended += sums.ended
            total.errors += sums.errors
            total.cost += sums.cost
            total.credits += sums.credits
            total.credited += sums.credited
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


def _scoped_executions(rule: AlertRule, scope: Scope):
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


def direct_metric(rule: AlertRule, scope: Scope, start: datetime, end: datetime) -> Reading:
    """The metrics the rollups do not carry, each one indexed query."""
    runs = _scoped_executions(rule, scope)
    if rule.metric == Metric.APPROVALS_WAITING:
        # Runs waiting for a person longer than the window, whenever they started.
        waiting = runs.filter(status=Status.AWAITING_APPROVAL, paused_at__lt=start).count()
        return Reading(float(waiting), waiting)
    in_window = runs.filter(created_at__gte=start, created_at__lt=end)
    if rule.metric == Metric.BUDGET_FLAGGED:
        counts = in_window.aggregate(
            runs=Count("id"), flagged=Count("id", filter=Q(budget__flagged=True))
        )
        return Reading(float(counts["flagged"]), counts["runs"])
    if rule.metric == Metric.CORRECTION_RATE:
        from feedback.models import FieldCorrection

        corrections = FieldCorrection.objects.filter(execution__in=in_window.values("pk"))
        if rule.field_name:
            corrections = corrections.filter(path=rule.field_name)
        total = in_window.count()
        corrected = corrections.values("execution_id").distinct().count()
        return Reading(100.0 * corrected / total if total else None, total)
    raise ValueError(f"metric: unknown metric {rule.metric}")


def table_link(rule: AlertRule, scope: Scope, start: datetime, end: datetime) -> str:
    """The executions table filtered to the runs the reading counted."""
    from executions.overview.query import iso

    pairs = scope.table_params()
    if rule.metric == Metric.ERROR_RATE and scope.statuses is None:
        pairs += [("status", s) for s in sorted(ERROR_STATUSES)]
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
