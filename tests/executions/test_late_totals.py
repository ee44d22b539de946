"""Late totals: when counting must read every match (a text or metadata search), the
rows come first and htmx fetches the total (part=total) into the same page; without
JavaScript it is counted inline. Every total equals a plain COUNT."""

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.http import QueryDict
from django.utils import timezone

from executions import counters
from executions.models import Execution, Source, Status
from executions.table.selectors import execution_table_page
from tests.factories import AgentVersionFactory, BatchFactory, ExecutionFactory

from .detail_html import parse

pytestmark = pytest.mark.django_db
URL = "/executions/"


def htmx(client, path):
    return client.get(path, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results")


@pytest.fixture
def runs(agent_version, workspace):
    other = AgentVersionFactory(agent__workspace=workspace, agent__name="triage")
    now = timezone.now()
    batch = BatchFactory(workspace=workspace, created_at=now - timedelta(days=3))
    made = []
    for i in range(45):
        made.append(
            ExecutionFactory(
                agent_version=agent_version if i % 3 else other,
                created_at=now - timedelta(days=i % 10, minutes=i),
                status=Status.FAILED if i % 4 == 0 else Status.COMPLETED,
                error="Purchase order rejected" if i % 4 == 0 else "",
                summary="Matched the order" if i % 2 == 0 else "Done",
                source=Source.SCHEDULE if i % 2 else Source.API,
                metadata={"customer": "acme" if i % 3 == 0 else "globex"},
                cost_usd=Decimal("0.01") * (i % 7),
                correction_count=1 if i % 9 == 0 else 0,
                batch=batch if i in (5, 10, 15) else None,
            )
        )
    counters.rebuild(workspace)
    return made


def test_a_search_sends_rows_first_and_asks_for_its_total(alice_client, runs):
    response = htmx(alice_client, f"{URL}?q=order")
    page = response.context["page"]
    assert page.total is None and len(page.entries) == 20
    doc = parse(response.content)
    placeholder = doc.one("span", cls="is-counting")
    url = placeholder.attrs["data-late-total"]
    assert "part=total" in url and "q=order" in url
    assert "page 1" in doc.one("span", cls="page-of").text
    assert any(a.attrs.get("rel") == "next" for a in doc.select("a", attr="rel"))

    counted = htmx(alice_client, url)
    assert counted.status_code == 200
    total = parse(counted.content).one("span", id=placeholder.attrs["id"])
    assert total.attrs["hx-swap-oob"] == "true"
    expected = Execution.objects.filter(error__icontains="order").count()
    expected += Execution.objects.filter(summary__icontains="order", error="").count()
    assert total.one("strong").text == str(expected)
    pager = parse(counted.content).one("div", cls="pager-bar")
    assert pager.attrs["hx-swap-oob"] == "true"
    assert f"page 1 / {-(-counted.context['page'].entry_count // 20)}" in pager.text


def test_without_javascript_the_total_is_counted_inline(alice_client, runs):
    page = alice_client.get(f"{URL}?q=order").context["page"]
    assert page.total is not None
    # A browser that ran app.js has the cookie: its full page is late too.
    alice_client.cookies["js"] = "1"
    assert alice_client.get(f"{URL}?q=order").context["page"].total is None
    # The <noscript> link (part=total, no htmx) answers the whole page, counted.
    full = alice_client.get(f"{URL}?q=order&part=total")
    assert full.context["page"].total is not None
    assert parse(full.content).one("form", id="filters")


def test_cheap_totals_are_never_late(alice_client, runs):
    for query in ("", "status=failed", "agent=triage&status=completed", "source=api"):
        assert htmx(alice_client, f"{URL}?{query}").context["page"].total is not None
    # A deep page needs its count to find itself.
    assert htmx(alice_client, f"{URL}?q=order&page=2").context["page"].total is not None


def test_a_late_count_cannot_land_on_other_filters(alice_client, runs):
    one = parse(htmx(alice_client, f"{URL}?q=order").content).one("span", cls="is-counting")
    two = parse(htmx(alice_client, f"{URL}?q=rejected").content).one("span", cls="is-counting")
    assert one.attrs["id"] != two.attrs["id"]


def test_late_pages_walk_by_cursor(alice_client, runs):
    seen, url = [], f"{URL}?meta=customer%3Dglobex&sort=-cost"
    while url:
        response = htmx(alice_client, url)
        page = response.context["page"]
        assert page.total is None
        seen += [e.pk for e in page.entries]
        nxt = [
            a for a in parse(response.content).select("a", attr="rel") if a.attrs["rel"] == "next"
        ]
        url = URL + nxt[0].attrs["href"] if nxt else None
    expected = Execution.objects.filter(metadata__customer="globex")
    assert sorted(seen) == sorted(expected.values_list("pk", flat=True))
    assert len(seen) == len(set(seen))


FILTERS = {
    "agent": "agent=triage",
    "status": "status=failed",
    "start": f"start={(timezone.localdate() - timedelta(days=4)).isoformat()}",
    "source": "source=schedule",
    "meta": "meta=customer%3Dacme",
    "q": "q=order",
    "min_cost": "min_cost=0.03",
    "feedback": "feedback=corrected",
}


def expected_count(workspace, names):
    rows = Execution.objects.filter(workspace=workspace)
    for name in names:
        if name == "agent":
            rows = rows.filter(agent_name="triage")
        elif name == "status":
            rows = rows.filter(status=Status.FAILED)
        elif name == "start":
            days = timezone.localdate() - timedelta(days=4)
            rows = [r for r in rows if timezone.localdate(r.created_at) >= days]
            rows = Execution.objects.filter(pk__in=[r.pk for r in rows])
        elif name == "source":
            rows = rows.filter(source=Source.SCHEDULE)
        elif name == "meta":
            rows = rows.filter(pk__in=[r.pk for r in rows if r.metadata.get("customer") == "acme"])
        elif name == "q":
            rows = rows.filter(
                pk__in=[
                    r.pk for r in rows if "order" in r.error.lower() or "order" in r.summary.lower()
                ]
            )
        elif name == "min_cost":
            rows = rows.filter(cost_usd__gte=Decimal("0.03"))
        elif name == "feedback":
            rows = rows.filter(correction_count__gt=0)
    return rows.count()


@pytest.mark.parametrize(
    "names",
    [(n,) for n in FILTERS]
    + list(itertools.combinations(FILTERS, 2))[::3]
    + [("agent", "status", "start")],
)
def test_totals_equal_a_plain_count(workspace, runs, names):
    query = "&".join(FILTERS[n] for n in names)
    for flat in ("", "&flat=1"):
        page = execution_table_page(workspace=workspace, params=QueryDict(query + flat))
        assert page.total == expected_count(workspace, names), query


def test_late_pages_keep_their_query_count(alice_client, runs, django_assert_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    htmx(alice_client, URL)
    # Flat: a page holding a batch group reads its mix (two queries more) on any page.
    with CaptureQueriesContext(connection) as first:
        response = htmx(alice_client, f"{URL}?q=order&flat=1")
    nxt = [a for a in parse(response.content).select("a", attr="rel") if a.attrs["rel"] == "next"]
    with django_assert_num_queries(len(first.captured_queries)):
        htmx(alice_client, URL + nxt[0].attrs["href"])


@pytest.mark.parametrize("query", ["q=order", "q=order&status=completed", "q=order&source=api"])
def test_late_batch_groups_match_the_counted_ones(alice_client, runs, query):
    late = htmx(alice_client, f"{URL}?{query}").context["page"]
    counted = htmx(alice_client, f"{URL}?{query}&part=total").context["page"]
    assert late.total is None and counted.total is not None

    def groups(page):
        return [(e.pk, e.matching) for e in page.entries if getattr(e, "is_batch", False)]

    assert groups(late) == groups(counted)
    assert [e.pk for e in late.entries] == [e.pk for e in counted.entries]
