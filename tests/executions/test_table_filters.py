"""The executions table's filters, sorts, pagination and totals, at the selector.

Each test builds a handful of executions and checks that the page holds exactly
the ones the filter should select, and that the total equals a real COUNT.
"""

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.http import QueryDict
from django.utils import timezone

from agents.models import Agent
from executions import counters
from executions.models import Execution, Source, Status
from executions.table import selectors
from tests.factories import (
    AgentVersionFactory,
    BatchFactory,
    ExecutionFactory,
    ScheduleFactory,
)

pytestmark = pytest.mark.django_db


def page_of(workspace, query="", **kwargs):
    return selectors.execution_table_page(workspace=workspace, params=QueryDict(query), **kwargs)


def ids(page) -> set:
    return {e.pk for e in page.entries if not getattr(e, "is_batch", False)}


def make(agent_version, n=1, **fields):
    made = ExecutionFactory.create_batch(n, agent_version=agent_version, **fields)
    counters.rebuild(agent_version.agent.workspace)
    return made


@pytest.fixture
def other_version(workspace):
    return AgentVersionFactory(agent__workspace=workspace, agent__name="receipt-reader")


def test_no_filter_lists_the_workspace_newest_first(workspace, agent_version, other_workspace):
    now = timezone.now()
    # Made out of time order, so neither insertion order nor id order is newest first.
    made = {
        hours: make(agent_version, created_at=now - timedelta(hours=hours))[0]
        for hours in (3, 1, 4, 2)
    }
    foreign = AgentVersionFactory(agent__workspace=other_workspace)
    make(foreign, 3, created_at=now)
    page = page_of(workspace)
    assert [e.pk for e in page.entries] == [made[h].pk for h in (1, 2, 3, 4)]
    assert page.total == 4


def test_agent_filter_includes_removed_agents(workspace, agent_version, other_version):
    kept = make(agent_version, 2)
    gone = make(other_version, 1)[0]
    Agent.objects.filter(pk=other_version.agent_id).delete()
    gone.refresh_from_db()
    assert gone.agent_id is None and gone.agent_name == "receipt-reader"

    page = page_of(workspace, "agent=invoice-extractor")
    assert ids(page) == {e.pk for e in kept}
    removed = page_of(workspace, "agent=receipt-reader")
    assert ids(removed) == {gone.pk}
    choices = dict(page.filterset.form.fields["agent"].choices)
    assert choices["receipt-reader"] == "receipt-reader (removed)"
    assert choices["invoice-extractor"] == "invoice-extractor"


def test_version_filter(workspace, agent_version):
    v2 = AgentVersionFactory(agent=agent_version.agent, version="v2")
    make(agent_version, 2)
    newer = make(v2, 1)[0]
    page = page_of(workspace, f"version={v2.pk}")
    assert ids(page) == {newer.pk}
    assert page.total == 1


def test_status_filter_takes_several_and_active(workspace, agent_version):
    by_status = {s: make(agent_version, status=s)[0] for s in Status.values}
    failed_or_timed_out = page_of(workspace, "status=failed&status=timed_out")
    assert ids(failed_or_timed_out) == {
        by_status["failed"].pk,
        by_status["timed_out"].pk,
    }
    assert failed_or_timed_out.total == 2
    active = page_of(workspace, "status=active")
    assert ids(active) == {
        by_status[s].pk for s in ("pending", "queued", "running", "awaiting_approval")
    }
    assert active.total == 4


def test_dates_are_whole_days_in_the_users_time_zone(workspace, agent_version):
    paris = ZoneInfo("Europe/Paris")
    # 23:30 in Paris on the 9th is 22:30 UTC on the 9th; 00:30 on the 10th is 23:30 UTC the 9th.
    late_9th = make(agent_version, created_at=datetime(2026, 3, 9, 23, 30, tzinfo=paris))[0]
    early_10th = make(agent_version, created_at=datetime(2026, 3, 10, 0, 30, tzinfo=paris))[0]
    later = make(agent_version, created_at=datetime(2026, 3, 12, 12, 0, tzinfo=paris))[0]
    with timezone.override(paris):
        only_10th = page_of(workspace, "start=2026-03-10&end=2026-03-10")
        from_10th = page_of(workspace, "start=2026-03-10")
        to_9th = page_of(workspace, "end=2026-03-09")
    assert ids(only_10th) == {early_10th.pk}
    assert ids(from_10th) == {early_10th.pk, later.pk}
    assert ids(to_9th) == {late_9th.pk}


def test_batch_schedule_and_source_filters(workspace, agent_version):
    batch = BatchFactory(workspace=workspace)
    schedule = ScheduleFactory(agent_version=agent_version)
    in_batch = make(agent_version, 2, batch=batch)
    scheduled = make(agent_version, schedule=schedule, source=Source.SCHEDULE)[0]
    make(agent_version, 2, source=Source.OTLP)

    assert ids(page_of(workspace, f"batch={batch.pk}")) == {e.pk for e in in_batch}
    assert ids(page_of(workspace, f"schedule={schedule.pk}")) == {scheduled.pk}
    assert page_of(workspace, "source=otlp").total == 2
    assert page_of(workspace, "source=schedule").total == 1


def test_metadata_key_value_matches_text_and_numbers(workspace, agent_version):
    acme = make(agent_version, metadata={"customer": "acme", "env": "prod"})[0]
    make(agent_version, metadata={"customer": "globex", "env": "prod"})
    seven = make(agent_version, metadata={"attempt": 7})[0]
    flagged = make(agent_version, metadata={"retry": True})[0]
    spaced = make(agent_version, metadata={"team name": "a b"})[0]

    assert ids(page_of(workspace, "meta=customer%3Dacme")) == {acme.pk}
    assert page_of(workspace, "meta=env%3Dprod").total == 2
    assert ids(page_of(workspace, "meta=attempt%3D7")) == {seven.pk}
    assert ids(page_of(workspace, "meta=retry%3Dtrue")) == {flagged.pk}
    assert ids(page_of(workspace, "meta=team+name%3Da+b")) == {spaced.pk}
    assert page_of(workspace, "meta=customer%3Dnobody").total == 0


def test_search_by_full_id_prefix_error_and_summary(workspace, agent_version):
    target = make(agent_version)[0]
    failing = make(agent_version, status=Status.FAILED, error="Credential expired for Drive")[0]
    summarised = make(agent_version, summary="Extracted invoice INV-2231 for ACME")[0]

    assert ids(page_of(workspace, f"q={target.pk}")) == {target.pk}
    assert ids(page_of(workspace, f"q={str(target.pk).upper()}")) == {target.pk}
    prefix = page_of(workspace, f"q={str(target.pk)[:8]}")
    assert target.pk in ids(prefix)
    assert ids(page_of(workspace, "q=credential+EXPIRED")) == {failing.pk}
    assert ids(page_of(workspace, "q=inv-2231")) == {summarised.pk}


def test_search_never_finds_another_workspaces_execution(workspace, agent_version, other_workspace):
    make(agent_version)
    foreign = make(AgentVersionFactory(agent__workspace=other_workspace), error="secret failure")[0]
    assert page_of(workspace, f"q={foreign.pk}").total == 0
    assert page_of(workspace, f"q={str(foreign.pk)[:10]}").entries == [] or (
        foreign.pk not in ids(page_of(workspace, f"q={str(foreign.pk)[:10]}"))
    )
    assert page_of(workspace, "q=secret+failure").total == 0


def test_minimum_duration_cost_and_credits(workspace, agent_version):
    fast = make(agent_version, duration_ms=500, cost_usd=Decimal("0.001"), credits=Decimal(1))[0]
    slow = make(agent_version, duration_ms=90_000, cost_usd=Decimal("0.5"), credits=Decimal(40))[0]
    unknown = make(agent_version, status=Status.RUNNING, credits=None)[0]
    assert unknown.duration_ms is None

    assert ids(page_of(workspace, "min_duration=60")) == {slow.pk}
    assert ids(page_of(workspace, "min_duration=0.5")) == {fast.pk, slow.pk}
    assert ids(page_of(workspace, "min_cost=0.1")) == {slow.pk}
    assert ids(page_of(workspace, "min_credits=2")) == {slow.pk}


def test_feedback_and_corrected_filters(workspace, agent_version):
    corrected = make(agent_version, correction_count=2)[0]
    noted = make(agent_version, note_count=1)[0]
    make(agent_version, 2)
    assert ids(page_of(workspace, "feedback=any")) == {corrected.pk, noted.pk}
    assert ids(page_of(workspace, "feedback=corrected")) == {corrected.pk}


def _at_least_day(day: int):
    return lambda r: r["created_at"] >= datetime(2026, 1, day, tzinfo=ZoneInfo("UTC"))


def _before_day(day: int):
    return lambda r: r["created_at"] < datetime(2026, 1, day, tzinfo=ZoneInfo("UTC"))


def _all(*tests):
    return lambda r: all(t(r) for t in tests)


# Each query with what it selects, written against the generated rows in plain Python
# (not through the FilterSet the page uses), so a wrong filter cannot agree with itself.
_INVOICE = lambda r: r["agent"] == "invoice-extractor"  # noqa: E731
_RECEIPT = lambda r: r["agent"] == "receipt-reader"  # noqa: E731
_FAILED = lambda r: r["status"] == Status.FAILED  # noqa: E731
_COMPLETED = lambda r: r["status"] == Status.COMPLETED  # noqa: E731
_PROD = lambda r: r["env"] == "prod"  # noqa: E731
_TIMEOUT = lambda r: "timeout" in r["error"].lower()  # noqa: E731
COMBINATIONS = {
    "": lambda r: True,
    "status=failed": _FAILED,
    "status=active": lambda r: r["status"] in {Status.RUNNING, Status.PENDING},
    "agent=invoice-extractor": _INVOICE,
    "agent=invoice-extractor&status=completed&status=failed": _all(
        _INVOICE, lambda r: r["status"] in {Status.COMPLETED, Status.FAILED}
    ),
    "agent=receipt-reader&start=2026-01-03": _all(_RECEIPT, _at_least_day(3)),
    "status=failed&meta=env%3Dprod": _all(_FAILED, _PROD),
    "q=timeout&agent=invoice-extractor": _all(_TIMEOUT, _INVOICE),
    "q=timeout": _TIMEOUT,
    "q=TOOL+TIMEOUT&status=failed&start=2026-01-02&end=2026-01-08": _all(
        lambda r: "tool timeout" in r["error"].lower(),
        _FAILED,
        _at_least_day(2),
        _before_day(9),
    ),
    "q=timeout&meta=env%3Dprod": _all(_TIMEOUT, _PROD),
    "min_duration=2&status=completed": _all(
        lambda r: r["duration_ms"] is not None and r["duration_ms"] >= 2000, _COMPLETED
    ),
    "source=otlp&end=2026-01-04": _all(lambda r: r["source"] == Source.OTLP, _before_day(5)),
    "feedback=any&status=completed": _all(lambda r: r["note_count"] > 0, _COMPLETED),
    "status=completed&min_credits=1&meta=env%3Ddev": _all(
        _COMPLETED,
        lambda r: r["credits"] is not None and r["credits"] >= 1,
        lambda r: r["env"] == "dev",
    ),
}


@pytest.mark.parametrize("query", list(COMBINATIONS))
def test_total_is_exact_for_every_combination(query, workspace, agent_version, other_version):
    """The counters path (agent/status only) and the COUNT path agree with the set the
    query describes, computed here from the rows this test made."""
    start = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))
    statuses = [Status.COMPLETED, Status.FAILED, Status.RUNNING, Status.PENDING]
    rows = {}
    for i in range(40):
        version = agent_version if i % 3 else other_version
        status = statuses[i % 4]
        spec = {
            "status": status,
            "created_at": start + timedelta(hours=7 * i),
            "error": "Tool timeout after 30s" if status == Status.FAILED and i % 2 else "",
            "source": Source.OTLP if i % 5 == 0 else Source.API,
            "duration_ms": (i * 250) if status != Status.RUNNING else None,
            "credits": Decimal(i) / 10 if i % 7 else None,
            "note_count": 1 if i % 9 == 0 else 0,
        }
        (execution,) = make(version, metadata={"env": "prod" if i % 2 else "dev"}, **spec)
        rows[execution.pk] = {
            **spec,
            "agent": version.agent.name,
            "env": "prod" if i % 2 else "dev",
        }
    expected = {pk for pk, row in rows.items() if COMBINATIONS[query](row)}
    assert 0 < len(expected) < 40 or query == ""  # every combination selects a real subset
    with timezone.override(ZoneInfo("UTC")):
        page = page_of(workspace, query)
    assert not page.filterset.errors
    assert page.total == len(expected)
    collected = set()
    for number in range(1, page.num_pages + 1):
        with timezone.override(ZoneInfo("UTC")):
            collected |= ids(page_of(workspace, f"{query}&page={number}"))
    assert collected == expected


def test_total_uses_counters_for_agent_and_status_only(workspace, agent_version):
    make(agent_version, 3, status=Status.FAILED)
    filterset = selectors.execution_filterset(
        workspace=workspace, params=QueryDict("status=failed&agent=invoice-extractor")
    )
    assert filterset.counter_filters() == {
        "agent_names": ["invoice-extractor"],
        "statuses": ["failed"],
    }
    narrowed = selectors.execution_filterset(
        workspace=workspace, params=QueryDict("status=failed&q=timeout")
    )
    assert narrowed.counter_filters() is None


# Sorting --------------------------------------------------------------------

SORT_KEYS = {
    "started": lambda e: e.created_at,
    "duration": lambda e: e.duration_ms,
    "steps": lambda e: e.step_count,
    "tokens": lambda e: e.total_tokens,
    "cost": lambda e: e.cost_usd,
    "credits": lambda e: e.credits,
}


def expected_order(executions, sort):
    """Largest or smallest first as asked, unknown (NULL) measures last, ties by id."""
    key = SORT_KEYS[sort.lstrip("-")]
    descending = sort.startswith("-")
    known = [e for e in executions if key(e) is not None]
    unknown = [e for e in executions if key(e) is None]
    known.sort(key=lambda e: (key(e), e.pk.hex), reverse=descending)
    unknown.sort(key=lambda e: e.pk.hex, reverse=descending)
    return [e.pk for e in known + unknown]


@pytest.fixture
def varied(workspace, agent_version):
    start = timezone.now() - timedelta(days=3)
    made = []
    for i in range(47):
        running = i % 6 == 0
        made += make(
            agent_version,
            status=Status.RUNNING if running else Status.COMPLETED,
            created_at=start + timedelta(minutes=i * 37 % 200),  # repeats: ties broken by id
            duration_ms=None if running else (i * 7919) % 5000,
            step_count=i % 5,
            total_tokens=(i * 31) % 11 * 100,
            cost_usd=Decimal((i * 13) % 7) / 100,
            credits=None if i % 4 == 0 else Decimal((i * 3) % 10),
        )
    return made


@pytest.mark.parametrize("sort", [f"{d}{k}" for k in SORT_KEYS for d in ("", "-")])
def test_every_sort_both_ways_across_every_page(sort, workspace, varied):
    """Walking all pages (the tail ones read backwards from the end) gives the full order."""
    seen = []
    first = page_of(workspace, f"sort={sort}&flat=1")
    for number in range(1, first.num_pages + 1):
        seen += [e.pk for e in page_of(workspace, f"sort={sort}&flat=1&page={number}").entries]
    assert seen == expected_order(varied, sort)


def test_grouped_time_order_walks_every_page_once(workspace, agent_version):
    start = timezone.now() - timedelta(days=1)
    singles = [
        make(agent_version, created_at=start + timedelta(minutes=10 * i))[0] for i in range(30)
    ]
    batches = []
    for b in range(4):
        batch = BatchFactory(workspace=workspace, created_at=start + timedelta(minutes=45 + 70 * b))
        make(agent_version, 3, batch=batch, created_at=batch.created_at + timedelta(seconds=5))
        batches.append(batch)
    for direction in ("-", ""):
        first = page_of(workspace, f"sort={direction}started")
        assert first.grouped
        assert first.total == 42 and first.entry_count == 34
        keys = []
        for number in range(1, first.num_pages + 1):
            page = page_of(workspace, f"sort={direction}started&page={number}")
            keys += [(getattr(e, "is_batch", False), e.pk, e.created_at) for e in page.entries]
        assert len(keys) == 34
        assert {k[1] for k in keys if k[0]} == {b.pk for b in batches}
        assert {k[1] for k in keys if not k[0]} == {e.pk for e in singles}
        times = [k[2] for k in keys]
        assert times == sorted(times, reverse=direction == "-")


# Pagination -----------------------------------------------------------------


def test_page_sizes_and_edges(workspace, agent_version):
    make(agent_version, 105)
    assert len(page_of(workspace).entries) == 20
    fifty = page_of(workspace, "per_page=50&page=3")
    assert (fifty.number, fifty.num_pages, len(fifty.entries)) == (3, 3, 5)
    hundred = page_of(workspace, "per_page=100&page=2")
    assert len(hundred.entries) == 5
    past = page_of(workspace, "page=99")
    assert past.number == past.num_pages == 6
    assert len(past.entries) == 5
    assert "past the end" in past.notices["page"]
    last = page_of(workspace, "page=last")
    assert last.number == 6 and not last.notices


def test_page_range_is_elided(workspace, agent_version):
    make(agent_version, 20 * 30)
    page = page_of(workspace, "page=15")
    shown = list(page.page_range())
    assert shown[0] == 1 and shown[-1] == 30
    assert page.paginator.ELLIPSIS in shown
    assert 15 in shown and 14 in shown and 16 in shown
    assert len(shown) < 12


def test_empty_table_has_one_empty_page(workspace):
    page = page_of(workspace, "page=4")
    assert (page.total, page.number, page.num_pages, page.entries) == (0, 1, 1, [])


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("page=abc", "page", "not a number"),
        ("page=0", "page", "start at 1"),
        ("per_page=7", "per_page", "20, 50 or 100"),
        ("sort=colour", "sort", "Unknown sort"),
    ],
)
def test_bad_table_state_falls_back_with_a_notice(query, field, words, workspace, agent_version):
    make(agent_version, 25)
    page = page_of(workspace, query)
    assert words in page.notices[field]
    assert len(page.entries) == 20 and page.number == 1 and page.sort == "-started"


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        ("status=exploded", "status", "Select a valid choice"),
        ("agent=nobody", "agent", "Select a valid choice"),
        ("version=999999", "version", "Select a valid choice"),
        ("start=2026-02-31", "start", "YYYY-MM-DD"),
        ("end=yesterday", "end", "YYYY-MM-DD"),
        ("start=2099-03-10&end=2099-03-01", "end", "before the start"),
        ("batch=not-a-uuid", "batch", "no batch with this id"),
        (f"batch={uuid.uuid4()}", "batch", "no batch with this id"),
        ("schedule=abc", "schedule", "Select a valid choice"),
        ("source=carrier-pigeon", "source", "Select a valid choice"),
        ("meta=novalue", "meta", "key=value"),
        ("meta=%3Dx", "meta", "key=value"),
        ("q=ab", "q", "at least 3 characters"),
        ("min_duration=-1", "min_duration", "greater than or equal to 0"),
        ("min_cost=cheap", "min_cost", "Enter a number"),
        ("min_credits=1e999", "min_credits", "less than or equal to"),
        ("feedback=maybe", "feedback", "Select a valid choice"),
    ],
)
def test_a_bad_filter_is_reported_and_the_others_still_apply(
    query, field, words, workspace, agent_version
):
    make(agent_version, 2, status=Status.FAILED)
    make(agent_version, 3, status=Status.COMPLETED)
    page = page_of(workspace, f"{query}&status=completed" if field != "status" else query)
    errors = page.filterset.errors
    assert field in errors
    assert words.lower() in " ".join(errors[field]).lower()
    if field == "status":
        assert page.total == 5  # the bad status is dropped, nothing else is set
    elif field == "end" and "start" in query:
        assert page.total == 0  # the start date (after every run) still applies
    else:
        assert page.total == 3  # status=completed still applies
    assert Execution.objects.count() == 5


def test_start_still_applies_when_end_is_before_it(workspace, agent_version):
    made = make(agent_version, created_at=timezone.now() - timedelta(days=1))
    page = page_of(workspace, "start=2000-01-01&end=1999-01-01")
    assert "end" in page.filterset.errors
    assert ids(page) == {made[0].pk}
