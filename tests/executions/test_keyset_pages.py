"""Keyset pages of the executions table: following Next (or Previous) from either end
visits every row exactly once in the table's order, for every sort, with NULL
measures and ties, with batch groups, and while new runs arrive; a cursor costs the
same queries as page 1; a bad cursor is reported, never a 500."""

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions import counters
from executions.models import Execution, Status
from executions.table import keyset
from executions.table.selectors import table_ordering
from executions.table.state import SORT_FIELDS
from tests.factories import BatchFactory, ExecutionFactory

from .detail_html import parse

pytestmark = pytest.mark.django_db
URL = "/executions/"
SORTS = [s for name in SORT_FIELDS for s in (f"-{name}", name)]


@pytest.fixture
def runs(agent_version, workspace):
    """47 executions over two days with repeated and missing measures (so ties and
    NULLs are crossed by page boundaries), 3 of them in a batch."""
    base = timezone.now() - timedelta(days=2)
    made = []
    for i in range(47):
        made.append(
            ExecutionFactory(
                agent_version=agent_version,
                # Pairs share a start time: the id must break the tie.
                created_at=base + timedelta(minutes=i // 2),
                duration_ms=None if i % 5 == 0 else 1000 * (i % 4),
                credits=None if i % 7 == 0 else Decimal(i % 3),
                cost_usd=Decimal("0.01") * (i % 6),
                step_count=i % 3,
                total_tokens=100 * (i % 4),
                status=Status.FAILED if i % 4 == 0 else Status.COMPLETED,
            )
        )
    batch = BatchFactory(workspace=workspace, created_at=base + timedelta(minutes=7, seconds=30))
    Execution.objects.filter(pk__in=[e.pk for e in made[30:33]]).update(batch=batch)
    counters.rebuild(workspace)
    return made, batch


def shown(response) -> list:
    return [entry.pk for entry in response.context["page"].entries]


def link(response, rel) -> str | None:
    """The pager's Next or Previous link, as a URL of the table."""
    found = parse(response.content).select("a", attr="rel")
    hrefs = [a.attrs["href"] for a in found if a.attrs["rel"] == rel]
    return URL + "?" + urlsplit(hrefs[0]).query if hrefs else None


def walk(client, start, rel, *, between=None, limit=20) -> list:
    """Every entry met following `rel` links from `start`, in the order met."""
    seen, url = [], start
    for _ in range(limit):
        response = client.get(url)
        assert response.status_code == 200
        assert "notice-page" not in response.content.decode()
        page = shown(response)
        seen.extend(page if rel == "next" else page[::-1])
        href = link(response, rel)
        if href is None:
            return seen
        assert "cursor=" in href
        url = href
        if between is not None:
            between()
    raise AssertionError("the walk did not end")


def expected(workspace, sort, **filters) -> list:
    rows = Execution.objects.filter(workspace=workspace, **filters)
    return list(rows.order_by(*table_ordering(sort)).values_list("pk", flat=True))


@pytest.mark.parametrize("sort", SORTS)
def test_next_walks_every_row_once_in_order(alice_client, workspace, runs, sort):
    query = f"sort={sort}&flat=1&per_page=20"
    seen = walk(alice_client, f"{URL}?{query}", "next")
    assert seen == expected(workspace, sort)


@pytest.mark.parametrize("sort", SORTS)
def test_previous_walks_back_from_the_last_page(alice_client, workspace, runs, sort):
    query = f"sort={sort}&flat=1&status=completed"
    seen = walk(alice_client, f"{URL}?{query}&page=last", "prev")
    assert seen == expected(workspace, sort, status=Status.COMPLETED)[::-1]


def test_batch_groups_are_one_stop_of_the_walk(alice_client, workspace, runs):
    _, batch = runs
    outside = Execution.objects.filter(workspace=workspace, batch__isnull=True)
    entries = [(e.created_at, e.pk) for e in outside] + [(batch.created_at, batch.pk)]
    in_order = [pk for _, pk in sorted(entries, reverse=True)]
    assert walk(alice_client, URL, "next") == in_order
    assert walk(alice_client, f"{URL}?page=last", "prev") == in_order[::-1]


def test_new_runs_neither_repeat_nor_hide_rows(alice_client, workspace, agent_version, runs):
    """An OFFSET page shifts by one row per run created meanwhile; a cursor does not."""
    before = expected(workspace, "-started")

    def arrive():
        ExecutionFactory.create_batch(3, agent_version=agent_version)

    seen = walk(alice_client, f"{URL}?flat=1", "next", between=arrive)
    assert seen == before
    # Backwards from the end, the walk reaches the new runs at the top as well.
    seen = walk(alice_client, f"{URL}?flat=1&page=last", "prev", between=arrive)
    now = expected(workspace, "-started")
    assert seen == now[::-1]
    assert len(now) > len(before)


def test_pages_by_cursor_carry_their_number(alice_client, runs):
    first = alice_client.get(f"{URL}?flat=1")
    second = alice_client.get(link(first, "next"))
    assert second.context["page"].number == 2
    third = alice_client.get(link(second, "next"))
    page = third.context["page"]
    assert (page.number, page.has_next, len(page.entries)) == (3, False, 7)
    back = alice_client.get(link(third, "prev"))
    assert back.context["page"].number == 2
    assert shown(back) == shown(second)


@pytest.mark.parametrize(
    "cursor, message",
    [
        ("not-a-cursor", "not one Runboard wrote"),
        (keyset.Cursor("-cost", Decimal(1), __import__("uuid").uuid4()).encode(), "-cost"),
        (
            keyset.Cursor("-started", "yesterday", __import__("uuid").uuid4()).encode(),
            "not a value of its sort",
        ),
    ],
)
def test_a_bad_cursor_is_reported_and_page_one_shown(alice_client, runs, cursor, message):
    response = alice_client.get(f"{URL}?flat=1&cursor={cursor}&page=3")
    assert response.status_code == 200
    assert message in parse(response.content).one("p", id="notice-page").text
    assert response.context["page"].number == 1
    assert len(shown(response)) == 20


@pytest.mark.parametrize("sort", ["-started", "cost", "-duration"])
def test_a_cursor_page_costs_the_queries_of_page_one(
    alice_client, runs, sort, django_assert_num_queries
):
    alice_client.get(URL)  # the first request also stores the chosen workspace in the session
    # Flat: a page holding a batch group reads its mix (two queries more) on any page.
    with CaptureQueriesContext(connection) as first:
        response = alice_client.get(f"{URL}?sort={sort}&flat=1")
    second = link(response, "next")
    with django_assert_num_queries(len(first.captured_queries)):
        deeper = alice_client.get(second)
    with django_assert_num_queries(len(first.captured_queries)):
        alice_client.get(link(deeper, "next"))


@pytest.fixture
def hours(agent_version, workspace):
    """100 executions over 10 hours, 10 of them in a batch that starts mid-way."""
    base = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=12)
    made = [
        ExecutionFactory(
            agent_version=agent_version,
            created_at=base + timedelta(minutes=6 * i + 3),
            status=Status.FAILED if i % 3 == 0 else Status.COMPLETED,
        )
        for i in range(100)
    ]
    batch = BatchFactory(workspace=workspace, created_at=base + timedelta(minutes=205))
    Execution.objects.filter(pk__in=[e.pk for e in made[30:40]]).update(batch=batch)
    counters.rebuild(workspace)
    return made


@pytest.mark.parametrize(
    "query", ["", "flat=1", "sort=started", "status=completed&flat=1", "source=api&flat=1"]
)
def test_page_numbers_found_through_the_hours_match_offsets(
    alice_client, hours, query, monkeypatch
):
    """Page N located through the hourly rollups is the page an OFFSET gives."""
    from executions.table import jump

    def pages():
        first = alice_client.get(f"{URL}?{query}&per_page=20")
        count = first.context["page"].num_pages
        return [
            shown(alice_client.get(f"{URL}?{query}&per_page=20&page={n}"))
            for n in range(1, count + 1)
        ]

    monkeypatch.setattr(jump, "JUMP_MIN_ROWS", 10**9)
    by_offset = pages()
    monkeypatch.setattr(jump, "JUMP_MIN_ROWS", 1)
    with CaptureQueriesContext(connection) as ctx:
        by_hours = pages()
    assert by_hours == by_offset
    assert len(by_offset) >= 4
    rollups = ("executions_runrollup", "executions_statushour", "executions_agenthour")
    assert any(name in q["sql"] for q in ctx.captured_queries for name in rollups)
