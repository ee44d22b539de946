"""The evaluator: every minute (runboard_scheduler), each enabled rule reads its metric
and moves through ok -> pending -> firing -> resolved.

A breach is the metric past the limit with at least `min_runs` runs counted. A rule
fires after `sustain` breaching evaluations in a row (pending until then) and
resolves after `sustain` clear ones in a row, so one outlier, or one quiet minute
in the middle of an outage, changes nothing. Every state change is an AlertEvent;
firing and resolved ones are notified (unless the rule is muted or snoozed).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from agents.models import Workspace

from . import metrics, notify
from .models import AlertEvent, AlertRule, Condition, Metric, State

SAVED_FIELDS = [
    "state",
    "breaches",
    "clears",
    "last_value",
    "last_baseline",
    "last_runs",
    "evaluated_at",
]


@dataclass
class Tick:
    rules: int = 0
    events: int = 0
    queries: int = 0


def _limit(rule: AlertRule, baseline: float | None) -> float | None:
    if rule.baseline_factor is not None:
        return None if baseline is None else float(rule.baseline_factor) * baseline
    return float(rule.threshold) if rule.threshold is not None else None


def _mean(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def step(rule: AlertRule, reading: metrics.Reading, baseline: float | None, now: datetime):
    """Move the rule one evaluation on; the new state if it changed, else None."""
    limit = _limit(rule, baseline)
    value = reading.value
    breach = (
        reading.runs >= rule.min_runs
        and value is not None
        and limit is not None
        and (value > limit if rule.condition == Condition.ABOVE else value < limit)
    )
    rule.last_value, rule.last_baseline, rule.last_runs = value, baseline, reading.runs
    rule.evaluated_at = now
    before = rule.state
    if breach:
        rule.breaches += 1
        rule.clears = 0
        if rule.state != State.FIRING:
            rule.state = State.FIRING if rule.breaches >= rule.sustain else State.PENDING
    else:
        rule.clears += 1
        rule.breaches = 0
        if rule.state == State.PENDING:
            rule.state = State.OK
        elif rule.state == State.FIRING and rule.clears >= rule.sustain:
            rule.state = State.RESOLVED
    return rule.state if rule.state != before else None


def _fmt(value: float | None) -> str:
    return "no data" if value is None else f"{value:.4g}"


def message(rule: AlertRule, state: str, value, limit, runs: int) -> str:
    label = Metric(rule.metric).label
    window = (
        f"{rule.window_minutes // 60} h"
        if rule.window_minutes % 60 == 0
        else f"{rule.window_minutes} min"
    )
    words = {
        State.FIRING: "is firing",
        State.PENDING: "is pending",
        State.RESOLVED: "resolved",
        State.OK: "is back to ok",
    }[state]
    return (
        f"{rule.name} {words}: {label} {_fmt(value)} ({rule.condition} {_fmt(limit)}) "
        f"over the last {window}, {runs} run{'s' if runs != 1 else ''}, {rule.scope_label}."
    )


def evaluate(*, now: datetime | None = None, workspace: Workspace | None = None) -> Tick:
    """One tick over every enabled rule (or one workspace's)."""
    now = now or timezone.now()
    rules = AlertRule.objects.filter(enabled=True).select_related("saved_view", "agent_version")
    if workspace is not None:
        rules = rules.filter(workspace=workspace)
    by_window: dict[tuple, list[AlertRule]] = defaultdict(list)
    for rule in rules.order_by("workspace_id", "window_minutes", "pk"):
        by_window[(rule.workspace_id, rule.window_minutes)].append(rule)
    tick = Tick()
    events: list[AlertEvent] = []
    evaluated: list[AlertRule] = []
    # A saved view read from its runs, per (view, window, with baseline days): rules
    # sharing a view share the read.
    view_reads: dict[tuple, list[metrics.Groups]] = {}
    views: dict = {}  # each saved view's parsed filters, for this tick
    for (workspace_id, minutes), group in by_window.items():
        window = timedelta(minutes=minutes)
        scopes = {rule.pk: metrics.scope_of(rule, views) for rule in group}
        rollup = [
            r for r in group if r.metric in metrics.ROLLUP_METRICS and scopes[r.pk].view is None
        ]
        durations = any(r.metric == Metric.DURATION_P95 for r in rollup)
        current = past = None
        if rollup:
            windows = [(now - window, now)]
            if any(r.baseline_factor is not None for r in rollup):
                windows += [
                    (now - window - timedelta(days=d), now - timedelta(days=d))
                    for d in range(1, metrics.BASELINE_DAYS + 1)
                ]
            current, *past = metrics.read_series(workspace_id, windows, durations=durations)
        for rule in group:
            scope = scopes[rule.pk]
            baseline = None
            if rule.metric in metrics.ROLLUP_METRICS and scope.view is not None:
                relative = rule.baseline_factor is not None
                key = (scope.view, minutes, relative)
                if key not in view_reads:
                    windows = [(now - window, now)]
                    if relative:
                        windows += [
                            (now - window - timedelta(days=d), now - timedelta(days=d))
                            for d in range(1, metrics.BASELINE_DAYS + 1)
                        ]
                    view_reads[key] = metrics.read_runs_series(
                        metrics.view_runs(rule, views), windows, durations=True
                    )
                here, *before = view_reads[key]
                # Every group read from the view's runs is in its scope.
                reading = metrics.rollup_metric(rule.metric, here, metrics.Scope())
                if relative:
                    baseline = _mean(
                        [
                            metrics.rollup_metric(rule.metric, g, metrics.Scope()).value
                            for g in before
                        ]
                    )
            elif rule.metric in metrics.ROLLUP_METRICS:
                reading = metrics.rollup_metric(rule.metric, current, scope)
                if rule.baseline_factor is not None:
                    baseline = _mean(
                        [metrics.rollup_metric(rule.metric, g, scope).value for g in past]
                    )
            else:
                windows = [(now - window, now)]
                if rule.baseline_factor is not None:
                    windows += [
                        (now - window - timedelta(days=d), now - timedelta(days=d))
                        for d in range(1, metrics.BASELINE_DAYS + 1)
                    ]
                series = metrics.direct_series(rule, scope, windows, views)
                reading = series[0]
                if rule.baseline_factor is not None:
                    baseline = _mean([r.value for r in series[1:]])
            changed = step(rule, reading, baseline, now)
            evaluated.append(rule)
            if changed:
                limit = _limit(rule, baseline)
                events.append(
                    AlertEvent(
                        rule=rule,
                        state=changed,
                        at=now,
                        value=reading.value,
                        baseline=baseline,
                        threshold=limit,
                        runs=reading.runs,
                        window_start=now - window,
                        window_end=now,
                        message=message(rule, changed, reading.value, limit, reading.runs),
                    )
                )
    tick.rules = len(evaluated)
    tick.events = len(events)
    with transaction.atomic():
        save_states(evaluated, now)
        AlertEvent.objects.bulk_create(events)
        for event in events:
            if event.state in (State.FIRING, State.RESOLVED):
                notify.enqueue(event)
        if events:
            firing_counts(
                workspace_ids={e.rule.workspace_id for e in events}
                if workspace is None
                else {workspace.pk}
            )
    return tick


def save_states(rules: list[AlertRule], now: datetime) -> None:
    """Write every evaluated rule's state in one statement. bulk_update builds a CASE
    per field and row, which for a thousand rules costs seconds of Python; arrays
    (PostgreSQL) or one prepared statement run many times (SQLite) cost milliseconds."""
    if not rules:
        return
    table = connection.ops.quote_name(AlertRule._meta.db_table)
    columns = SAVED_FIELDS[:-1]  # evaluated_at is `now` for all of them
    rows = [[getattr(r, c) for c in columns] + [r.pk] for r in rules]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = list(zip(*rows, strict=True))
            types = ["text", "bigint", "bigint", "float8", "float8", "bigint", "bigint"]
            unnest = ", ".join(f"%s::{t}[]" for t in types)
            sets = ", ".join(f"{c} = v.{c}" for c in columns)
            cursor.execute(
                f"UPDATE {table} AS r SET {sets}, evaluated_at = %s "
                f"FROM unnest({unnest}) AS v({', '.join(columns)}, id) WHERE r.id = v.id",
                [now, *[list(a) for a in arrays]],
            )
        else:
            sets = ", ".join(f"{c} = %s" for c in columns)
            cursor.executemany(
                f"UPDATE {table} SET {sets}, evaluated_at = %s WHERE id = %s",
                [[*row[:-1], now, row[-1]] for row in rows],
            )


def firing_counts(*, workspace_ids) -> None:
    """Keep Workspace.alerts_firing, which the nav badge reads without a query."""
    counts = dict(
        Workspace.objects.filter(pk__in=list(workspace_ids))
        .annotate(n=Count("alert_rules", filter=Q(alert_rules__state=State.FIRING)))
        .values_list("pk", "n")
    )
    for pk, n in counts.items():
        Workspace.objects.filter(pk=pk).exclude(alerts_firing=n).update(alerts_firing=n)
