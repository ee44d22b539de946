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


# --- a saved view's filters ----------------------------------------------------------


def view(workspace, query, name="view"):
    from executions.models import SavedView
    from tests.factories import UserFactory

    return SavedView.objects.create(
        workspace=workspace, owner=UserFactory(), name=name, query=query
    )


def test_a_view_of_rollup_dimensions_is_read_from_the_rollups_with_every_filter(workspace):
    bot = AgentVersionFactory(agent__workspace=workspace, agent__name="bot")
    other = AgentVersionFactory(agent__workspace=workspace, agent__name="other")
    at = NOW - timedelta(hours=2)  # a whole hour: from the rollups
    run(bot, at, status=Status.RUNNING, completed_at=None, source="api")
    run(bot, at, status=Status.QUEUED, completed_at=None, source="api")
    run(bot, at, status=Status.RUNNING, completed_at=None, source="ui")  # other source
    run(bot, at, status=Status.COMPLETED, source="api")  # not active
    run(other, at, status=Status.RUNNING, completed_at=None, source="api")  # other agent
    # "active" is the table's shorthand for every unfinished status.
    scoped = view(workspace, "agent=bot&status=active&source=api&sort=-cost")
    r = rule(workspace, window_minutes=180, saved_view=scoped, threshold=Decimal(1))
    assert metrics.scope_of(r).view is None  # the rollups carry all of these
    evaluate.evaluate(now=NOW)
    r.refresh_from_db()
    assert (r.last_value, r.state) == (2.0, State.FIRING)


def test_a_view_with_other_filters_counts_exactly_the_runs_the_table_shows(workspace, alice_client):
    from executions.tags.models import ExecutionTag

    bot = AgentVersionFactory(agent__workspace=workspace, agent__name="bot")
    at = NOW - timedelta(hours=2)
    costly = [
        run(bot, at, cost_usd=Decimal("2"), metadata={"customer": "acme"}, duration_ms=5000),
        run(bot, at, cost_usd=Decimal("3"), metadata={"customer": "acme"}, duration_ms=9000),
        run(bot, at, cost_usd=Decimal("2"), metadata={"customer": "acme"}, status=Status.FAILED),
    ]
    run(bot, at, cost_usd=Decimal("0.1"), metadata={"customer": "acme"})  # under the minimum
    run(bot, at, cost_usd=Decimal("5"), metadata={"customer": "other"})  # another customer
    untagged = run(bot, at, cost_usd=Decimal("5"), metadata={"customer": "acme"})
    for execution in costly:
        ExecutionTag.objects.create(workspace=workspace, execution=execution, name="prod")
    ExecutionTag.objects.create(workspace=workspace, execution=untagged, name="staging")
    query = "meta=customer%3Dacme&min_cost=1&tag=prod"
    scoped = view(workspace, query)
    metrics_rules = {
        "run_count": rule(workspace, name="n", window_minutes=180, saved_view=scoped),
        "total_cost": rule(
            workspace, name="c", metric="total_cost", window_minutes=180, saved_view=scoped
        ),
        "error_rate": rule(
            workspace, name="e", metric="error_rate", window_minutes=180, saved_view=scoped
        ),
    }
    assert metrics.scope_of(metrics_rules["run_count"]).view == scoped.pk
    evaluate.evaluate(now=NOW)
    values = {}
    for name, r in metrics_rules.items():
        r.refresh_from_db()
        values[name] = r.last_value
    assert values == {"run_count": 3.0, "total_cost": 7.0, "error_rate": pytest.approx(100 / 3)}
    # The same runs as the table's own filters.
    html = alice_client.get(f"/executions/?{query}&flat=1").content.decode()
    shown = {e.short_id for e in costly}
    assert all(short in html for short in shown)
    assert untagged.short_id not in html
    # The link on the history goes to the same filters over the window.
    link = metrics.table_link(
        metrics_rules["run_count"], metrics.scope_of(metrics_rules["run_count"]), at, NOW
    )
    assert link.startswith("/executions/?meta=customer%3Dacme&min_cost=1&tag=prod&after=")


def test_a_view_read_from_runs_has_its_baseline_and_shares_one_read(workspace):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    bot = AgentVersionFactory(agent__workspace=workspace, agent__name="bot")
    for day in range(1, 8):  # 2 matching runs in the window on each day before
        for i in range(2):
            run(bot, NOW - timedelta(days=day, minutes=10 + i), cost_usd=Decimal("1"))
        run(bot, NOW - timedelta(days=day, minutes=5), cost_usd=Decimal("0"))  # filtered out
    for i in range(5):
        run(bot, NOW - timedelta(minutes=10 + i), cost_usd=Decimal("1"))
    scoped = view(workspace, "min_cost=0.5")
    r = rule(workspace, saved_view=scoped, threshold=None, baseline_factor=Decimal(2), sustain=1)
    rule(workspace, name="twin", saved_view=scoped, threshold=None, baseline_factor=Decimal(9))
    with CaptureQueriesContext(connection) as one_view:
        evaluate.evaluate(now=NOW)
    r.refresh_from_db()
    assert (r.last_value, r.last_baseline, r.state) == (5.0, 2.0, State.FIRING)
    reads = [
        q for q in one_view.captured_queries if "cost_usd" in q["sql"] and "GROUP BY" in q["sql"]
    ]
    assert len(reads) == 1  # the two rules of the view and window share it


def test_a_deleted_view_cannot_leave_its_rule_watching_everything(workspace, alice):
    from django.core.exceptions import PermissionDenied

    from agents.models import Membership
    from executions.table.saved_views import saved_view_delete

    scoped = view(workspace, "min_cost=1")
    rule(workspace, name="Costly", saved_view=scoped)
    with pytest.raises(PermissionDenied, match="This view scopes “Costly”: change or delete it"):
        saved_view_delete(view=scoped, membership=Membership.objects.get(user=alice))


def test_a_workspace_with_a_view_scoped_rule_can_still_be_deleted(workspace):
    from agents.models import Workspace

    rule(workspace, saved_view=view(workspace, "min_cost=1"))
    workspace.delete()  # the rule goes with its view: RESTRICT only guards the view alone
    assert not Workspace.objects.filter(pk=workspace.pk).exists()
    assert not AlertRule.objects.exists()
