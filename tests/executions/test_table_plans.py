"""The table's plan choice (plans.py): which combinations sort their matches and which
walk a sort index, and that both ways give the same rows in the same order."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions import counters
from executions.models import Execution, Status
from executions.table import plans
from executions.table.selectors import table_ordering
from tests.factories import ExecutionFactory


@pytest.mark.parametrize(
    "applied, sort, matches, expected",
    [
        ({}, "-cost", 1_000_000, False),  # nothing to choose: the sort index is the table
        ({"agent": ["a"]}, "-started", 10, False),  # (workspace, agent, created_at) walks
        ({"status": ["failed"]}, "-cost", 85_000, False),  # exec_ws_status_cost walks
        ({"status": ["failed"]}, "-cost", 10, False),
        ({"agent": ["a"], "status": ["completed"], "start": 1}, "-cost", 3_251, True),
        ({"agent": ["a"]}, "-cost", 140_000, True),  # covering index, no row visits
        ({"agent": ["a"]}, "-cost", 400_000, False),
        ({"meta": ("customer", "acme")}, "-duration", 15_000, True),  # sort them
        ({"meta": ("customer", "acme")}, "-duration", 40_000, False),
        ({"source": "schedule"}, "-cost", 43_454, True),  # exec_ws_source_cover
        ({"version": 19, "agent": ["a"]}, "-cost", 39_874, True),  # exec_ws_version_cover
        ({"version": 19, "source": "api"}, "-cost", 39_874, False),  # no index holds both
        ({"agent": ["a"], "min_cost": 1}, "-cost", 30_000, True),  # measures are included
        ({"feedback": "any", "min_credits": 5}, "duration", 48_000, True),  # 0016
        ({"agent": ["a"], "meta": ("customer", "acme")}, "-cost", 30_000, False),
        ({"schedule": 2}, "-cost", 35_576, True),  # no measure index holds a schedule
        ({"schedule": 2, "source": "schedule"}, "cost", 35_576, True),
        ({"agent": ["a"]}, "cost", None, False),  # unknown: PostgreSQL chooses
        ({"q": "order"}, "-cost", None, False),  # a common word fills page 1 at once
        ({"q": "timeout", "agent": ["a"]}, "-cost", None, True),  # bounded by both
        ({"q": "timeout", "agent": ["a"]}, "-started", None, False),
    ],
)
def test_the_choice(applied, sort, matches, expected):
    assert plans.sorts_filtered_set(applied=applied, sort=sort, matches=matches) is expected


@pytest.mark.parametrize(
    "applied, sort, matches, keep, expected",
    [
        # Page 1 of a few thousand: a top-N sort of the matches from a covering index.
        ({"agent": ["a"], "status": ["completed"], "start": 1}, "-cost", 3_251, 20, False),
        # The middle page of an agent's 39,883 runs keeps 19,960: a full sort (386 ms
        # measured), where the agent-led index walks there (18 ms).
        ({"agent": ["a"]}, "cost", 39_883, 19_960, True),
        ({"agent": ["a"]}, "cost", 140_000, 20, True),  # too many to sort from the top
        ({"version": 7}, "-credits", 39_874, 10_020, True),  # a version has one agent
        ({"agent": ["a"], "source": "api", "status": ["failed"]}, "duration", 2_000, 1_020, True),
        ({"agent": ["a"], "status": ["running"]}, "-cost", 30, 30, False),  # all 30 sorted
        ({"agent": ["a", "b"]}, "cost", 80_000, 20_000, False),  # two agents: two indexes
        ({"agent": ["a"]}, "-started", 40_000, 20_000, False),  # time order: jump.py
        ({"agent": ["a"], "min_cost": 1}, "-cost", 30_000, 20_000, False),  # not in the index
        ({"agent": ["a"], "meta": ("customer", "acme")}, "-cost", 3_000, 2_000, False),
    ],
)
def test_the_agent_walk(applied, sort, matches, keep, expected):
    assert (
        plans.walks_agent_index(applied=applied, sort=sort, matches=matches, keep=keep) is expected
    )


@pytest.mark.parametrize(
    "applied, expected",
    [
        ({"start": 1}, False),  # no index is led by time and holds the measures
        ({"status": ["completed"], "start": 1}, True),  # exec_ws_status_cover
        ({"min_credits": 5}, False),  # a minimum alone leads no covering index
    ],
)
def test_a_covering_index_serves_only_with_its_leading_filter(applied, expected):
    assert plans.sorts_filtered_set(applied=applied, sort="-duration", matches=77_000) is expected


@pytest.mark.django_db
@pytest.mark.parametrize("sort", ["-cost", "cost", "-duration", "duration", "-credits"])
def test_sorting_the_matches_gives_the_index_order(alice_client, agent_version, sort):
    base = timezone.now() - timedelta(days=1)
    for i in range(30):
        ExecutionFactory(
            agent_version=agent_version,
            created_at=base + timedelta(minutes=i),
            cost_usd=Decimal("0.01") * (i % 4),
            duration_ms=None if i % 6 == 0 else 100 * (i % 5),
            credits=None if i % 4 == 0 else Decimal(i % 3),
            status=Status.FAILED if i % 3 else Status.COMPLETED,
        )
    counters.rebuild(agent_version.agent.workspace)
    name = agent_version.agent.name
    with CaptureQueriesContext(connection) as ctx:
        response = alice_client.get(f"/executions/?agent={name}&status=failed&sort={sort}")
    shown = [e.pk for e in response.context["page"].entries]
    rows = Execution.objects.filter(agent_name=name, status=Status.FAILED)
    assert shown == list(rows.order_by(*table_ordering(sort)).values_list("pk", flat=True))
    assert shown == list(
        rows.order_by(*table_ordering(sort, by_value=True)).values_list("pk", flat=True)
    )
    if connection.vendor == "postgresql":
        # 20 matches: sorted as values, in an order no index provides.
        assert any("+ 0)" in q["sql"] and "ORDER BY" in q["sql"] for q in ctx.captured_queries)
