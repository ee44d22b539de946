"""The alert evaluator: the state machine (sustain, no flapping, min runs, resolve),
metrics from the rollups plus the window's partial hours, the 7-day baseline, and
the nav's firing count."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from executions.alerts import evaluate, metrics
from executions.alerts.models import AlertEvent, AlertRule, State
from executions.models import Status
from tests.factories import AgentVersionFactory, ExecutionFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


def rule(workspace, **fields) -> AlertRule:
    values = {
        "name": "Too many runs",
        "metric": "run_count",
        "window_minutes": 60,
        "condition": "above",
        "threshold": Decimal(2),
    }
    values.update(fields)
    return AlertRule.objects.create(workspace=workspace, **values)


def reading(value, runs=10):
    return metrics.Reading(value=value, runs=runs)


# --- the state machine ---------------------------------------------------------------


def test_sustain_keeps_one_outlier_from_firing_and_one_quiet_minute_from_resolving(workspace):
    r = rule(workspace, sustain=3)
    seen = []
    for value in [5, 5, 1, 5, 5, 5, 1, 5, 1, 1, 1, 1]:
        seen.append(evaluate.step(r, reading(value), None, NOW) or "-")
    assert seen == [
        "pending",
        "-",
        "ok",  # the outlier pair never fired
        "pending",
        "-",
        "firing",
        "-",  # one quiet evaluation while firing: still firing
        "-",
        "-",
        "-",
        "resolved",  # three clear in a row
        "-",
    ]


def test_sustain_one_fires_and_resolves_at_once(workspace):
    r = rule(workspace, sustain=1)
    assert evaluate.step(r, reading(3), None, NOW) == State.FIRING
    assert evaluate.step(r, reading(3), None, NOW) is None
    assert evaluate.step(r, reading(2), None, NOW) == State.RESOLVED  # not above 2
    assert evaluate.step(r, reading(3), None, NOW) == State.FIRING


def test_below_and_minimum_runs(workspace):
    r = rule(workspace, metric="error_rate", condition="below", threshold=Decimal(1), min_runs=5)
    # Too few runs: no verdict, whatever the value.
    assert evaluate.step(r, reading(0, runs=4), None, NOW) is None
    assert r.state == State.OK
    assert evaluate.step(r, reading(0, runs=5), None, NOW) == State.FIRING
    # No data at all is not a breach either.
    assert evaluate.step(r, reading(None, runs=9), None, NOW) == State.RESOLVED


def test_a_relative_rule_without_a_baseline_does_not_fire(workspace):
    r = rule(workspace, threshold=None, baseline_factor=Decimal(2))
    assert evaluate.step(r, reading(100), None, NOW) is None
    assert evaluate.step(r, reading(100), 49.0, NOW) == State.FIRING
    assert r.last_baseline == 49.0


# --- metrics from the rollups and the window's edges ---------------------------------


def run(version, at, **fields):
    return ExecutionFactory(agent_version=version, created_at=at, **fields)


def test_a_window_reads_whole_hours_from_rollups_and_its_edges_from_runs(workspace):
    version = AgentVersionFactory(agent__workspace=workspace, agent__name="bot")
    other = AgentVersionFactory(agent__workspace=workspace, agent__name="other")
    # The window is [09:30, 12:30): whole hours 10:00-12:00, edges on each side.
    for at in ["09:15", "09:45", "10:00", "11:59", "12:10", "12:31"]:
        hour, minute = map(int, at.split(":"))
        run(version, NOW.replace(hour=hour, minute=minute))
    run(other, NOW.replace(hour=11))
    r = rule(workspace, window_minutes=180, agent_name="bot", threshold=Decimal(3))
    evaluate.evaluate(now=NOW)
    r.refresh_from_db()
    assert (r.last_value, r.last_runs, r.state) == (4.0, 4, State.FIRING)
    [event] = AlertEvent.objects.filter(rule=r)
    assert event.runs == 4 and event.threshold == 3.0
    assert event.message == (
        "Too many runs is firing: Run count 4 (above 3) over the last 3 h, 4 runs, bot."
    )


def test_error_rate_cost_duration_and_credits(workspace):
    version = AgentVersionFactory(agent__workspace=workspace, agent__name="bot")
    at = NOW - timedelta(hours=2)
    for status, cost, ms in [
        (Status.COMPLETED, "0.10", 1000),
        (Status.FAILED, "0.30", 2000),
        (Status.TIMED_OUT, "0.20", 60000),
        (Status.COMPLETED, "0.40", 1500),
    ]:
        run(version, at, status=status, cost_usd=Decimal(cost), duration_ms=ms)
    run(version, at, status=Status.RUNNING, cost_usd=Decimal("0"), completed_at=None)
    groups = metrics.read_groups(workspace.pk, NOW - timedelta(hours=3), NOW, durations=True)
    scope = metrics.Scope(agents=frozenset({"bot"}))
    assert metrics.rollup_metric("error_rate", groups, scope).value == 50.0
    assert metrics.rollup_metric("total_cost", groups, scope).value == pytest.approx(1.0)
    assert metrics.rollup_metric("cost_per_run", groups, scope).value == pytest.approx(0.2)
    assert metrics.rollup_metric("credits_per_run", groups, scope).value == pytest.approx(1.5)
    p95 = metrics.rollup_metric("duration_p95", groups, scope).value
    assert 50 < p95 < 70  # the 60 s run, within its histogram bucket
    assert metrics.rollup_metric("run_count", groups, metrics.Scope(version=999)).value == 0


def test_the_baseline_is_the_mean_of_the_same_window_on_the_7_days_before(workspace):
    version = AgentVersionFactory(agent__workspace=workspace, agent__name="bot")
    # 1..7 runs in the same hour on each of the 7 days before: a mean of 4.
    for day in range(1, 8):
        for i in range(day):
            run(version, NOW - timedelta(days=day, minutes=20 + i))
    # A run outside every window (eight days back) changes nothing.
    run(version, NOW - timedelta(days=8, minutes=10))
    for i in range(9):
        run(version, NOW - timedelta(minutes=5 + i))
    r = rule(workspace, threshold=None, baseline_factor=Decimal(2), sustain=1)
    evaluate.evaluate(now=NOW)
    r.refresh_from_db()
    assert r.last_baseline == 4.0
    assert (r.last_value, r.state) == (9.0, State.FIRING)  # 9 > 2 x 4
    event = r.events.get()
    assert (event.baseline, event.threshold) == (4.0, 8.0)


def test_approvals_waiting_longer_than_the_window(workspace):
    version = AgentVersionFactory(agent__workspace=workspace)
    for minutes in (5, 45, 90):
        run(
            version,
            NOW - timedelta(minutes=minutes + 1),
            status=Status.AWAITING_APPROVAL,
            completed_at=None,
            paused_at=NOW - timedelta(minutes=minutes),
        )
    r = rule(workspace, metric="approvals_waiting", window_minutes=30, threshold=Decimal(1))
    evaluate.evaluate(now=NOW)
    r.refresh_from_db()
    assert (r.last_value, r.state) == (2.0, State.FIRING)


def test_the_firing_count_for_the_nav_follows_the_rules(workspace, other_workspace):
    version = AgentVersionFactory(agent__workspace=workspace)
    for i in range(3):
        run(version, NOW - timedelta(minutes=i + 1))
    rule(workspace, name="a")
    rule(workspace, name="b")
    rule(workspace, name="c", threshold=Decimal(100))
    rule(other_workspace, name="elsewhere")
    evaluate.evaluate(now=NOW)
    workspace.refresh_from_db()
    other_workspace.refresh_from_db()
    assert (workspace.alerts_firing, other_workspace.alerts_firing) == (2, 0)


def test_a_disabled_rule_is_not_evaluated(workspace):
    r = rule(workspace, enabled=False, threshold=Decimal(-1))
    assert evaluate.evaluate(now=NOW).rules == 0
    r.refresh_from_db()
    assert r.evaluated_at is None


def test_durations_at_the_window_edges_come_from_the_runs(workspace):
    version = AgentVersionFactory(agent__workspace=workspace, agent__name="bot")
    for ms in (1000, 2000, 60000):
        run(version, NOW - timedelta(minutes=10), duration_ms=ms)
    run(version, NOW - timedelta(minutes=5), status=Status.RUNNING, completed_at=None)
    groups = metrics.read_groups(workspace.pk, NOW - timedelta(minutes=30), NOW, durations=True)
    scope = metrics.Scope(agents=frozenset({"bot"}))
    assert metrics.rollup_metric("run_count", groups, scope).value == 4
    p95 = metrics.rollup_metric("duration_p95", groups, scope).value
    assert 50 < p95 < 70


def test_soft_budget_and_correction_rate_with_their_baselines(workspace):
    from tests.factories import FieldCorrectionFactory

    version = AgentVersionFactory(agent__workspace=workspace, agent__name="bot")
    now_runs = [run(version, NOW - timedelta(minutes=m)) for m in (1, 2, 3, 4)]
    now_runs[0].budget = {"flagged": True}
    now_runs[0].save()
    FieldCorrectionFactory(execution=now_runs[1], path="/total")
    FieldCorrectionFactory(execution=now_runs[1], path="/total")  # one run, counted once
    FieldCorrectionFactory(execution=now_runs[2], path="/date")
    yesterday = run(version, NOW - timedelta(days=1, minutes=2))
    FieldCorrectionFactory(execution=yesterday, path="/total")
    scope = metrics.Scope()
    windows = [(NOW - timedelta(minutes=30), NOW)] + [
        (NOW - timedelta(days=d, minutes=30), NOW - timedelta(days=d)) for d in (1, 2)
    ]
    flagged = AlertRule(workspace=workspace, metric="budget_flagged")
    assert [(r.value, r.runs) for r in metrics.direct_series(flagged, scope, windows)] == [
        (1.0, 4),
        (0.0, 1),
        (0.0, 0),
    ]
    total = AlertRule(workspace=workspace, metric="correction_rate", field_name="/total")
    readings = metrics.direct_series(total, scope, windows)
    assert [r.value for r in readings] == [25.0, 100.0, None]
    anything = AlertRule(workspace=workspace, metric="correction_rate")
    assert metrics.direct_series(anything, scope, windows[:1])[0].value == 50.0
