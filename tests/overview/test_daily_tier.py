"""The daily tier: a range read from daily rows plus hourly corrections gives exactly
the numbers of the hourly rows alone and of exact SQL over the runs, in UTC, in New
York (across its DST change), in a half-hour zone; and reads a fixed number of
queries."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Count, Sum
from django.http import QueryDict
from django.utils import timezone

from executions.models import Execution, Source, Status, Step
from executions.overview import selectors
from executions.overview.query import parse
from tests.factories import AgentVersionFactory, ExecutionFactory, StepFactory

pytestmark = pytest.mark.django_db
ZONES = ["UTC", "America/New_York", "Asia/Kolkata"]
# 2026-03-08 is New York's spring-forward day: its local day has 23 hours.
RANGE = "start=2026-02-25&end=2026-03-14"


@pytest.fixture
def spread(agent_version):
    """Runs every 5 h 13 min over three weeks (every hour of the day is hit), in
    statuses, two agents, sources; some with a tool call."""
    other = AgentVersionFactory(
        agent__workspace=agent_version.agent.workspace, agent__name="support-bot"
    )
    t0 = datetime(2026, 2, 22, 0, 7, tzinfo=UTC)
    statuses = [Status.COMPLETED, Status.FAILED, Status.COMPLETED, Status.TIMED_OUT]
    for i in range(110):
        execution = ExecutionFactory(
            agent_version=other if i % 3 == 0 else agent_version,
            status=statuses[i % 4],
            created_at=t0 + i * timedelta(hours=5, minutes=13),
            duration_ms=37 * (i + 1) ** 2,
            total_tokens=i,
            cost_usd=Decimal(i) / 1000,
            credits=Decimal(i % 7),
            source=Source.OTLP if i % 5 == 0 else Source.API,
        )
        if i % 2:
            StepFactory(
                execution=execution,
                sequence=1,
                kind="tool_call",
                name="lookup",
                duration_ms=11 * i,
                status="failed" if i % 9 == 0 else "completed",
                created_at=execution.created_at,
            )


def _numbers(query):
    tl = selectors.timeline(query)
    buckets = [
        (b.statuses, b.tokens, b.cost, b.credits, b.credited_runs, b.durations)
        for b in (*tl.buckets, tl.totals)
    ]
    agents, versions = selectors.ranked_lists(query, now=query.end)
    ranked = [
        (r.label, r.runs, r.errors, r.finished, r.cost, r.durations, r.previous_runs, r.sparkline)
        for r in (*agents, *versions)
    ]
    calls = sorted((c.name, c.calls, c.failed, c.durations) for c in selectors.call_stats(query))
    return buckets, ranked, calls


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("params", [RANGE, f"{RANGE}&agent=support-bot", f"{RANGE}&source=api"])
def test_daily_reads_equal_hourly_reads_and_exact_sql(spread, workspace, monkeypatch, zone, params):
    timezone.activate(ZoneInfo(zone))
    try:
        query = parse(QueryDict(params), workspace=workspace)
        assert query.grain == "day" and len(query.buckets) == 18
        plan = selectors.daily_plan(query.edges)
        assert plan is not None  # the daily tier is what this range reads
        # Each edge corrects with the hours to its nearest UTC midnight: none in UTC, 5 or
        # 4 in New York (EST, then EDT), 6 in Kolkata (18:30 UTC, held as 18:00).
        corrections = {"UTC": 0, "America/New_York": 12 * 5 + 7 * 4, "Asia/Kolkata": 19 * 6}
        assert len(plan[1]) == corrections[zone]
        daily = _numbers(query)
        monkeypatch.setattr(selectors, "DAY_COST", 10**6)  # the hourly rows alone
        assert selectors.daily_plan(query.edges) is None
        assert _numbers(query) == daily
    finally:
        timezone.deactivate()
    # And exact SQL, bucket by bucket, over the runs of each local day.
    tl_buckets = daily[0]
    assert sum(sum(b[0].values()) for b in tl_buckets[:-1]) > 20
    for (start, end), (statuses, _, cost, *_rest) in zip(query.buckets, tl_buckets, strict=False):
        runs = Execution.objects.filter(created_at__gte=start, created_at__lt=end)
        if query.agent:
            runs = runs.filter(agent_name=query.agent)
        if query.source:
            runs = runs.filter(source=query.source)
        assert statuses == dict(runs.values_list("status").annotate(n=Count("pk")).order_by())
        by_agent = dict(runs.values_list("agent_name").annotate(c=Sum("cost_usd")).order_by())
        assert {a: c for a, c in cost.items() if c} == {a: c for a, c in by_agent.items() if c}
    # The call lists honour the same filters: exact SQL over the filtered runs' steps.
    steps = Step.objects.filter(
        kind="tool_call", created_at__gte=query.start, created_at__lt=query.end
    )
    if query.agent:
        steps = steps.filter(execution__agent_name=query.agent)
    if query.source:
        steps = steps.filter(execution__source=query.source)
    want = (steps.count(), steps.filter(status="failed").count())
    assert [(c[1], c[2]) for c in daily[2]] == [want]


def test_a_new_york_day_across_the_dst_change_has_23_hours(spread, workspace):
    timezone.activate(ZoneInfo("America/New_York"))
    try:
        query = parse(QueryDict(RANGE), workspace=workspace)
    finally:
        timezone.deactivate()
    lengths = {(b - a) for a, b in query.buckets}
    assert lengths == {timedelta(hours=24), timedelta(hours=23)}


def test_daily_plan_is_none_for_short_ranges_and_minutes():
    hour = datetime(2026, 3, 1, 13, tzinfo=UTC)
    assert selectors.daily_plan([hour, hour + timedelta(hours=24)]) is None
    assert selectors.daily_plan([hour + timedelta(minutes=1), hour + timedelta(days=9)]) is None
    edges = [hour.replace(hour=0) + timedelta(days=i) for i in range(31)]
    assert selectors.daily_plan(edges) == (edges, [])


@pytest.mark.parametrize(("zone", "queries"), [("UTC", 16), ("America/New_York", 25)])
def test_the_90_day_page_reads_a_fixed_number_of_queries(
    alice_client, spread, django_assert_num_queries, zone, queries
):
    """Session, user, workspace and choices, then the regions: each daily read is one
    query, plus one for its hourly corrections where the zone's midnight is not UTC's."""
    alice_client.cookies["tz"] = zone
    alice_client.get("/overview/?range=90d")  # warm the per-request caches the same way
    with django_assert_num_queries(queries):
        response = alice_client.get("/overview/?range=90d")
    assert response.status_code == 200
