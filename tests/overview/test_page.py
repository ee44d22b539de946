"""The overview page: chart numbers equal exact SQL over the same runs, buckets in
the viewer's time zone, links that land on tables with the same totals, empty and
one-run ranges, bad parameters named."""

import html
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Count
from django.utils import timezone

from executions import counters, lifecycle
from executions.models import Execution, Source, Status
from executions.overview import histogram
from executions.overview.query import parse
from tests.factories import AgentVersionFactory, ExecutionFactory

pytestmark = pytest.mark.django_db
NY = "America/New_York"


def get(client, query: str = "", **headers):
    response = client.get(f"/overview/?{query}", **headers)
    assert response.status_code == 200, response.content[:500]
    return response


def chart(response, name: str):
    return {c.id: c for c in response.context["charts"]}[name]


def column(chart, title: str) -> list:
    i = chart.columns.index(title)
    return [row[i] for row in chart.rows]


def table_total(client, href: str) -> int:
    parts = urlsplit(href)
    assert parts.path == "/executions/"
    response = client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 200
    assert not response.context["form"].errors, response.context["form"].errors
    return response.context["page"].total


@pytest.fixture
def runs(agent_version):
    """Runs over the last 24 hours, in several statuses, agents and hours."""
    now = timezone.now()
    other = AgentVersionFactory(
        agent__workspace=agent_version.agent.workspace, agent__name="support-bot"
    )
    made = []
    for i in range(30):
        version = agent_version if i % 3 else other
        status = [
            Status.COMPLETED,
            Status.FAILED,
            Status.TIMED_OUT,
            Status.RUNNING,
            Status.CANCELLED,
        ][i % 5]
        made.append(
            ExecutionFactory(
                agent_version=version,
                status=status,
                created_at=now - timedelta(minutes=47 * i),
                duration_ms=None if status == Status.RUNNING else 100 * (i + 1) ** 2,
                total_tokens=10 * i,
                source=Source.OTLP if i % 4 == 0 else Source.API,
            )
        )
    return made


def test_runs_and_error_rate_equal_exact_sql_per_bucket(alice_client, runs):
    response = get(alice_client, "range=24h")
    query = response.context["q"]
    runs_chart, errors = chart(response, "runs"), chart(response, "errors")
    for (start, end), row, error_row in zip(
        query.buckets, runs_chart.rows, errors.rows, strict=True
    ):
        in_bucket = Execution.objects.filter(created_at__gte=start, created_at__lt=end)
        assert int(row[1].text) == in_bucket.count()
        exact = dict(in_bucket.values_list("status").annotate(n=Count("pk")))
        for status in response.context["timeline"].statuses:
            i = runs_chart.columns.index(dict(Status.choices)[status])
            assert int(row[i].text) == exact.get(status, 0)
        failed = in_bucket.filter(status__in=["failed", "timed_out"]).count()
        finished = in_bucket.filter(
            status__in=["completed", "failed", "timed_out", "cancelled", "rejected"]
        ).count()
        assert (int(error_row[1].text), int(error_row[2].text)) == (failed, finished)
    assert sum(int(c.text) for c in column(runs_chart, "Runs")) == 30


def test_every_link_lands_on_a_table_with_the_same_total(alice_client, runs):
    response = get(alice_client, "range=24h")
    checked = 0
    for name in ("runs", "errors"):
        for row in chart(response, name).rows:
            for cell in row:
                if cell.href and cell.text not in ("0", ""):
                    assert table_total(alice_client, cell.href) == int(cell.text), cell.href
                    checked += 1
    agents = response.context["lists"][0][0]
    for row in agents.rows:
        assert table_total(alice_client, row[1].href) == int(row[1].text)
        checked += 1
    assert checked > 20
    # The SVG's marks link the same way: each bar's title holds its number.
    page = response.content.decode()
    figure = page[page.index('id="chart-runs"') : page.index('id="chart-errors"')]
    bars = re.findall(r'<a href="([^"]+)"><rect class="st-\w+"[^>]*><title>([^<]+)</title>', figure)
    assert bars
    for href, title in bars[:10]:
        count = int(html.unescape(title).split(": ")[1].split(" ")[0].replace(",", ""))
        assert table_total(alice_client, html.unescape(href)) == count


def test_percentiles_are_within_five_percent_of_exact_sql(alice_client, runs):
    response = get(alice_client, "range=24h")
    totals = response.context["timeline"].totals
    durations = list(
        Execution.objects.exclude(duration_ms=None).values_list("duration_ms", flat=True)
    )
    for q in (0.5, 0.95, 0.99):
        exact = histogram.nearest_rank(durations, q)
        assert abs(totals.percentiles[q] - exact) <= 0.045 * exact


def test_a_run_at_2330_in_new_york_is_in_that_new_york_day(alice_client, agent_version):
    ny = ZoneInfo(NY)
    late = datetime(2026, 3, 10, 23, 30, tzinfo=ny)  # 03:30 UTC on the 11th
    ExecutionFactory(agent_version=agent_version, created_at=late)
    alice_client.cookies["tz"] = NY
    response = get(alice_client, "start=2026-03-08&end=2026-03-12")
    rows = {row[0].text: int(row[1].text) for row in chart(response, "runs").rows}
    assert rows["2026-03-10"] == 1 and rows["2026-03-11"] == 0
    href = chart(response, "runs").rows[2][1].href
    assert table_total(alice_client, href) == 1
    # In UTC the same run is on the 11th.
    alice_client.cookies["tz"] = "UTC"
    rows = {
        r[0].text: int(r[1].text)
        for r in chart(get(alice_client, "start=2026-03-08&end=2026-03-12"), "runs").rows
    }
    assert rows["2026-03-11"] == 1


def test_an_empty_range_and_a_one_run_range_render(alice_client, agent_version):
    response = get(alice_client, "start=2026-01-01&end=2026-01-31")
    assert response.context["timeline"].totals.runs == 0
    assert b"No runs in this range" in response.content
    ExecutionFactory(
        agent_version=agent_version,
        created_at=datetime(2026, 1, 15, 12, tzinfo=UTC),
        duration_ms=1234,
    )
    response = get(alice_client, "start=2026-01-01&end=2026-01-31")
    totals = response.context["timeline"].totals
    assert totals.runs == 1
    assert abs(totals.percentiles[0.99] - 1234) <= 0.045 * 1234
    for name in ("agents", "versions", "runs", "latency", "spikes", "approvals"):
        assert (
            alice_client.get(f"/overview/export.csv?chart={name}&start=2026-01-01").status_code
            == 200
        )


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("range=2w", "range"),
        ("start=yesterday", "start"),
        ("start=2026-02-10&end=2026-02-01", "end"),
        ("agent=nobody", "agent"),
        ("version=999999", "version"),
        ("version=abc", "version"),
        ("schedule=12x", "schedule"),
        ("source=carrier-pigeon", "source"),
        ("view=77777", "view"),
        ("start=1850-01-01", "start"),
        ("region=everything", "region"),
    ],
)
def test_bad_parameters_are_named_and_the_rest_still_apply(alice_client, runs, query, param):
    response = get(alice_client, f"{query}&source=api" if param != "source" else query)
    errors = response.context["q"].errors
    assert param in errors and errors[param].startswith(f"{param}:")
    assert f'data-param="{param}"'.encode() in response.content
    if param != "source":
        assert response.context["q"].source == "api"


def test_csv_names_a_bad_chart_or_parameter(alice_client):
    response = alice_client.get("/overview/export.csv?chart=pie")
    assert response.status_code == 400 and b"chart:" in response.content
    response = alice_client.get("/overview/export.csv?chart=runs&range=forever")
    assert response.status_code == 400 and b"range:" in response.content


def test_csv_has_the_chart_numbers(alice_client, runs):
    response = alice_client.get("/overview/export.csv?chart=runs&range=24h")
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode().strip().splitlines()
    assert lines[0].startswith("Time,Runs")
    assert sum(int(line.split(",")[1]) for line in lines[1:]) == 30


def test_other_workspaces_runs_and_ids_stay_out(alice_client, runs, other_workspace):
    theirs = AgentVersionFactory(agent__workspace=other_workspace)
    ExecutionFactory.create_batch(5, agent_version=theirs)
    response = get(alice_client, "range=24h")
    assert response.context["timeline"].totals.runs == 30
    response = get(alice_client, f"version={theirs.pk}")
    assert "version" in response.context["q"].errors


def test_filters_by_agent_version_and_source(alice_client, runs, agent_version):
    response = get(alice_client, f"range=24h&version={agent_version.pk}&source=api")
    want = Execution.objects.filter(agent_version=agent_version, source="api").count()
    assert response.context["timeline"].totals.runs == want
    response = get(alice_client, "range=24h&agent=support-bot")
    assert response.context["timeline"].totals.runs == 10


def test_htmx_gets_one_region_and_history_restore_the_page(alice_client, runs):
    response = get(alice_client, "range=24h&region=ranked", HTTP_HX_REQUEST="true")
    assert b'id="ranked"' in response.content and b"<html" not in response.content
    assert b'id="timeline"' not in response.content
    assert "HX-Request" in response["Vary"]
    response = get(
        alice_client, "range=24h", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert b"<html" in response.content


def test_the_full_page_reads_a_fixed_number_of_queries(
    alice_client, runs, django_assert_max_num_queries
):
    with django_assert_max_num_queries(24):
        get(alice_client, "range=90d")
    ExecutionFactory.create_batch(10, agent_version=runs[1].agent_version)
    with django_assert_max_num_queries(24):
        get(alice_client, "range=90d")


def test_the_last_hour_is_in_minutes_from_the_executions(alice_client, runs):
    response = get(alice_client, "range=1h")
    assert response.context["q"].grain == "minute"
    assert len(response.context["q"].buckets) == 60
    want = Execution.objects.filter(created_at__gte=response.context["q"].start).count()
    assert response.context["timeline"].totals.runs == want


def test_credit_spikes_list_runs_far_above_their_version(alice_client, agent_version):
    from decimal import Decimal

    for _ in range(20):
        ExecutionFactory(agent_version=agent_version, credits=Decimal("1"))
    spike = ExecutionFactory(agent_version=agent_version, credits=Decimal("90"))
    response = get(alice_client, "range=24h")
    rows = response.context["spikes"].rows
    assert [(r[0].href, r[3].text) for r in rows] == [(spike.get_absolute_url(), "Credits")]


def test_cost_spikes_are_listed_too(alice_client, agent_version):
    for _ in range(20):
        ExecutionFactory(agent_version=agent_version, cost_usd=Decimal("0.01"))
    both = ExecutionFactory(
        agent_version=agent_version, cost_usd=Decimal("2.50"), credits=Decimal("40")
    )
    response = get(alice_client, "range=24h")
    rows = response.context["spikes"].rows
    # Its cost is ~12x the version's mean per run, its credits ~13x: listed for both.
    assert sorted((r[0].href, r[3].text) for r in rows) == [
        (both.get_absolute_url(), "Cost"),
        (both.get_absolute_url(), "Credits"),
    ]
    cost = next(r for r in rows if r[3].text == "Cost")
    assert cost[4].text == "$2.5000"
    csv = alice_client.get("/overview/export.csv?chart=spikes&range=24h").content.decode()
    assert "Cost,$2.5000" in csv


def test_approvals_waiting_by_age(alice_client, agent_version):
    now = timezone.now()
    for hours in (0.1, 5, 30, 30, 400):
        ExecutionFactory(
            agent_version=agent_version,
            status=Status.AWAITING_APPROVAL,
            created_at=now - timedelta(hours=hours),
        )
    counters.rebuild()  # the factory skips the table's counters; the services keep them
    response = get(alice_client, "range=24h")
    rows = response.context["approvals"].rows
    assert [int(r[1].text) for r in rows] == [1, 1, 2, 1, 5]
    assert table_total(alice_client, rows[-1][1].href) == 5


def test_approval_age_counts_from_when_it_began_waiting(alice_client, agent_version):
    """A run created 10 days ago that paused for approval 30 minutes ago has waited 30
    minutes, not 10 days; through the lifecycle, as a runtime would."""
    execution = ExecutionFactory(
        agent_version=agent_version,
        status=Status.RUNNING,
        created_at=timezone.now() - timedelta(days=10),
    )
    lifecycle.transition(
        execution, Status.AWAITING_APPROVAL, at=timezone.now() - timedelta(minutes=30)
    )
    counters.rebuild()
    response = get(alice_client, "range=24h")
    rows = response.context["approvals"].rows
    assert [int(r[1].text) for r in rows] == [1, 0, 0, 0, 1]
    assert response.context["approvals"].columns[0] == "Waiting for"


def test_parse_defaults_to_the_last_24_hours(workspace):
    from django.http import QueryDict

    now = datetime(2026, 5, 5, 10, 20, tzinfo=UTC)
    query = parse(QueryDict(""), workspace=workspace, now=now)
    assert (query.grain, len(query.buckets)) == ("hour", 24)
    assert query.end == datetime(2026, 5, 5, 11, tzinfo=UTC)
    assert query.start_date is None and query.range == "24h"
    assert parse(QueryDict("range=90d"), workspace=workspace, now=now).edges[-1].date() == date(
        2026, 5, 6
    )


def test_the_table_takes_an_exact_time_range(alice_client, agent_version):
    for minute in (0, 59, 60):
        ExecutionFactory(
            agent_version=agent_version,
            created_at=datetime(2026, 4, 1, 10, tzinfo=UTC) + timedelta(minutes=minute),
        )
    href = "/executions/?after=2026-04-01T10:00:00Z&before=2026-04-01T11:00:00Z"
    assert table_total(alice_client, href) == 2
    response = alice_client.get("/executions/?after=noon&before=2026-04-01T11:00:00Z")
    assert response.status_code == 200
    assert "after" in response.context["form"].errors
    assert b"Created from" in response.content


def test_ranked_agents_and_versions_equal_exact_sql(alice_client, runs):
    response = get(alice_client, "range=24h")
    _, versions_chart = (chart for chart, _ in response.context["lists"])
    agents, versions = (items for _, items in response.context["lists"])
    start = response.context["q"].start
    for item in agents:
        mine = Execution.objects.filter(agent_name=item.agent_name, created_at__gte=start)
        assert item.runs == mine.count()
        assert item.errors == mine.filter(status__in=["failed", "timed_out"]).count()
        durations = list(mine.exclude(duration_ms=None).values_list("duration_ms", flat=True))
        exact = histogram.nearest_rank(durations, 0.95)
        assert abs(item.p95 - exact) <= 0.045 * exact
        assert item.sparkline[-1] + item.sparkline[-2] >= 0 and sum(item.sparkline) <= item.runs
    assert sum(v.runs for v in versions) == sum(a.runs for a in agents) == 30
    assert [row[0].text for row in versions_chart.rows] == [v.label for v in versions]


def test_most_frequent_errors_link_to_exactly_their_runs(alice_client, agent_version):
    now = timezone.now()
    for i, message in enumerate(
        [
            "Timeout after 10012 ms",
            "Timeout after 20000 ms",
            "Timeout after 3 ms",
            "KeyError: 'a'",
            "KeyError: 'bb'",
            "Refused",
        ]
    ):
        execution = ExecutionFactory(
            agent_version=agent_version, status=Status.RUNNING, created_at=now - timedelta(hours=i)
        )
        lifecycle.transition(execution, Status.FAILED, error=message)
    response = get(alice_client, "range=24h")
    rows = [(r[0].text, int(r[1].text), r[1].href) for r in response.context["errors"].rows]
    assert [(text, n) for text, n, _ in rows] == [
        ("Timeout after N ms", 3),
        ("KeyError: '?'", 2),
        ("Refused", 1),
    ]
    for _, n, href in rows:
        assert table_total(alice_client, href) == n
    # With a filter the rollup does not have, they are counted from the executions.
    response = get(alice_client, "range=24h&source=api")
    assert [int(r[1].text) for r in response.context["errors"].rows] == [3, 2, 1]


def test_agents_list_and_agent_page_show_seven_day_sparklines(alice_client, runs):
    response = alice_client.get("/agents/")
    agents = {a.name: a for a in response.context["agents"]}
    week = timezone.now() - timedelta(days=6)
    for name, agent in agents.items():
        want = Execution.objects.filter(agent_name=name, created_at__gte=week).count()
        assert agent.sparkline["runs"] >= want > 0
        assert b'class="spark"' in response.content
    response = alice_client.get(runs[1].agent_version.agent.get_absolute_url())
    assert response.context["sparkline"]["runs"] == 20
    assert b"/overview/?range=7d&amp;agent=invoice-extractor" in response.content


def test_the_last_hour_renders_when_the_week_has_other_versions(alice_client, agent_version):
    """The 7-day sparklines read versions the range itself may not have."""
    ExecutionFactory(agent_version=agent_version, created_at=timezone.now() - timedelta(days=2))
    other = AgentVersionFactory(agent=agent_version.agent, version="v9")
    ExecutionFactory(agent_version=other)
    response = get(alice_client, "range=1h")
    versions = response.context["lists"][1][1]
    assert [v.label for v in versions] == ["invoice-extractor:v9"]
    agents = response.context["lists"][0][1]
    assert sum(agents[0].sparkline) == 2


def test_slowest_and_failing_calls_and_models(alice_client, agent_version):
    from tests.factories import StepFactory

    for i in range(4):
        execution = ExecutionFactory(agent_version=agent_version)
        StepFactory(
            execution=execution,
            sequence=1,
            kind="tool_call",
            name="lookup_vendor",
            duration_ms=100 * (i + 1),
            status="failed" if i == 0 else "completed",
        )
        StepFactory(
            execution=execution,
            sequence=2,
            kind="model_call",
            name="chat",
            model="gpt-4o-mini",
            duration_ms=2000,
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=Decimal("0.001"),
        )
        StepFactory(
            execution=execution, sequence=3, kind="tool_call", name="lookup_vendor", duration_ms=50
        )
    response = get(alice_client, "range=24h")
    slowest, failing, models = response.context["calls"]
    assert [r[0].text for r in slowest.rows] == ["chat", "lookup_vendor"]
    lookup = slowest.rows[1]
    assert (lookup[3].text, lookup[4].text, lookup[5].text) == ("8", "1", "12.5%")
    exact = histogram.nearest_rank([100, 200, 300, 400, 50, 50, 50, 50], 0.95)
    assert (
        lookup[6].text == "400 ms" or abs(float(lookup[6].text.split()[0]) - exact) <= 0.045 * exact
    )
    assert [r[0].text for r in failing.rows] == ["lookup_vendor"]
    assert [(r[0].text, r[1].text, r[4].text) for r in models.rows] == [
        ("gpt-4o-mini", "4", "$0.0040")
    ]
    # Links: the runs with such a call.
    assert table_total(alice_client, lookup[0].href) == 4
    assert table_total(alice_client, models.rows[0][0].href) == 4
