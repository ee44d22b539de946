"""The executions table page over HTTP: full page and htmx partial, messages for bad
input, workspace isolation, batch groups, live updates and query counts."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from django.utils import timezone

from agents.models import Agent
from executions import counters
from executions.models import Status
from tests.factories import AgentVersionFactory, BatchFactory, ExecutionFactory, ScheduleFactory

from .detail_html import parse, unsafe_markup

pytestmark = pytest.mark.django_db
URL = "/executions/"


def make(agent_version, n=1, **fields):
    made = ExecutionFactory.create_batch(n, agent_version=agent_version, **fields)
    counters.rebuild(agent_version.agent.workspace)
    return made


def htmx(client, path, **headers):
    return client.get(path, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results", **headers)


def row_ids(html) -> list[str]:
    return [tr.attrs["data-id"] for tr in parse(html).select("tr", cls="exec-row")]


def test_full_page_has_the_furniture_and_the_columns(alice_client, agent_version):
    schedule = ScheduleFactory(agent_version=agent_version, name="Morning invoices")
    failed = make(
        agent_version, status=Status.FAILED, error="Credential expired", schedule=schedule
    )[0]
    make(agent_version, credits=None, status=Status.RUNNING)
    response = alice_client.get(URL)
    assert response.status_code == 200
    assert response["Vary"] and "HX-Request" in response["Vary"]
    doc = parse(response.content)
    assert doc.one("form", id="filters")
    assert doc.one("section", id="results")
    headers = [th.text.strip().split("\n")[0].strip("↕↓↑ ") for th in doc.select("th")]
    for name in ("Agent", "Schedule", "Status", "Duration", "Steps", "Tokens", "Cost"):
        assert any(h.startswith(name) for h in headers), name
    row = doc.one("tr", id=f"row-{failed.pk}")
    assert row.attrs["data-href"] == f"/executions/{failed.pk}/"
    assert "Morning invoices" in row.text
    alert = row.one("span", cls="status-alert")
    assert alert.attrs["title"] == "Credential expired"
    started = row.one("time")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", started.text) and started.attrs["title"]
    assert row.one("a", cls="row-link").attrs["href"] == f"/executions/{failed.pk}/"
    running = doc.select("tr", cls="is-live")
    assert len(running) == 1
    assert "—" in running[0].text  # credits not yet calculated
    versions = {
        o.attrs["value"]: o.text for o in doc.one("select", id="id_version").select("option")
    }
    assert versions == {"": "All versions", str(agent_version.pk): "invoice-extractor:v1"}
    schedules = [o.text for o in doc.one("select", id="id_schedule").select("option")]
    assert schedules == ["All schedules", "Morning invoices"]
    assert unsafe_markup(response.content) == []
    assert "2 executions total" in " ".join(doc.one("p", id="results-summary").text.split())


def test_removed_agent_shows_grey_with_its_old_name(alice_client, workspace):
    version = AgentVersionFactory(agent__workspace=workspace, agent__name="old-scraper")
    gone = make(version)[0]
    Agent.objects.filter(pk=version.agent_id).delete()
    doc = parse(alice_client.get(URL).content)
    cell = doc.one("tr", id=f"row-{gone.pk}").one("span", cls="removed")
    assert cell.text == "Agent removed"
    assert "old-scraper" in cell.attrs["title"]


def test_start_time_is_in_the_users_time_zone(alice_client, agent_version):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    run = make(agent_version, created_at=datetime(2026, 7, 1, 22, 30, tzinfo=ZoneInfo("UTC")))[0]
    alice_client.cookies["tz"] = "Asia/Tokyo"
    doc = parse(alice_client.get(URL).content)
    cell = doc.one("tr", id=f"row-{run.pk}").one("time")
    assert cell.text == "2026-07-02 07:30"
    assert cell.attrs["title"].startswith("2026-07-02 07:30:00")


def test_htmx_request_gets_only_the_results_and_a_tidy_pushed_url(alice_client, agent_version):
    make(agent_version, 3, status=Status.FAILED)
    make(agent_version, 2)
    response = htmx(alice_client, f"{URL}?q=&status=failed&agent=&sort=-duration")
    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and 'id="filters"' not in body
    doc = parse(body)
    assert doc.one("section", id="results")
    assert len(row_ids(body)) == 3
    assert not any(tr.attrs.get("hx-swap-oob") for tr in doc.select("tr"))  # swapped in place
    assert "HX-Request" in response["Vary"]
    assert response["HX-Push-Url"] == f"{URL}?status=failed&sort=-duration"
    # The form's error slots and hidden sort travel out of band.
    oob = [n for n in doc.iter() if n.attrs.get("hx-swap-oob")]
    assert {"err-status", "err-q", "filter-state", "save-view-query"} <= {
        n.attrs["id"] for n in oob
    }
    state = doc.one("div", id="filter-state")
    assert state.one("input").attrs == {"type": "hidden", "name": "sort", "value": "-duration"}


def test_history_restore_gets_the_full_page(alice_client, agent_version):
    make(agent_version)
    response = htmx(alice_client, f"{URL}?status=completed", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert b"<html" in response.content
    assert b'id="filters"' in response.content
    assert "HX-Request" in response["Vary"]


def test_a_form_sent_without_javascript_is_tidied_by_a_redirect(alice_client, agent_version):
    response = alice_client.get(f"{URL}?q=&agent=&status=failed&start=&end=")
    assert response.status_code == 302
    assert response["Location"] == f"{URL}?status=failed"
    everything_blank = alice_client.get(f"{URL}?q=&agent=")
    assert everything_blank["Location"] == URL


def test_bad_input_is_explained_beside_each_field_and_the_rest_works(alice_client, agent_version):
    make(agent_version, 2, status=Status.FAILED)
    make(agent_version, 3)
    query = (
        "status=failed&start=someday&meta=oops&q=ab&sort=nonsense&page=abc"
        "&per_page=13&min_cost=free"
    )
    response = alice_client.get(f"{URL}?{query}")
    assert response.status_code == 200
    doc = parse(response.content)
    assert "YYYY-MM-DD" in doc.one("p", id="err-start").text
    assert "key=value" in doc.one("p", id="err-meta").text
    assert "3 characters" in doc.one("p", id="err-q").text
    assert "number" in doc.one("p", id="err-min_cost").text
    assert doc.one("p", id="err-status").text == ""
    assert "Unknown sort" in doc.one("p", id="notice-sort").text
    assert "not a number" in doc.one("p", id="notice-page").text
    assert "20, 50 or 100" in doc.one("p", id="notice-per-page").text
    assert len(row_ids(response.content)) == 2  # status=failed still applies


def test_bad_input_over_htmx_updates_the_error_slots(alice_client, agent_version):
    make(agent_version, 2)
    doc = parse(htmx(alice_client, f"{URL}?status=wrong&end=2026-99-01").content)
    assert "Select a valid choice" in doc.one("p", id="err-status").text
    assert "YYYY-MM-DD" in doc.one("p", id="err-end").text
    assert doc.one("p", id="err-q").text == ""  # cleared, in case it held an old message
    assert len(doc.select("tr", cls="exec-row")) == 2


def test_page_past_the_end_shows_the_last_page(alice_client, agent_version):
    make(agent_version, 25)
    response = alice_client.get(f"{URL}?page=40")
    assert response.context["page"].number == 2
    assert len(row_ids(response.content)) == 5
    assert "past the end" in parse(response.content).one("p", id="notice-page").text


def test_pager_links_keep_the_filters_and_sort(alice_client, agent_version):
    make(agent_version, 45, status=Status.COMPLETED)
    doc = parse(alice_client.get(f"{URL}?status=completed&sort=-cost").content)
    nav = doc.one("nav", cls="pager")
    assert nav.attrs["hx-target"] == "#results"
    next_link = nav.one("a", attr="rel")
    query = parse_qs(urlsplit(next_link.attrs["href"]).query)
    # Next is a keyset link (test_keyset_pages.py walks them); the page number rides along.
    assert query.pop("cursor")
    assert query == {"status": ["completed"], "sort": ["-cost"], "page": ["2"]}
    assert "page 1 / 3" in nav.text
    sort_links = {a.text.strip()[:-1]: a.attrs["href"] for a in doc.select("a", cls="sort-link")}
    assert parse_qs(urlsplit(sort_links["Cost"]).query)["sort"] == ["cost"]  # flips
    assert parse_qs(urlsplit(sort_links["Duration"]).query)["sort"] == ["-duration"]
    assert "page" not in parse_qs(urlsplit(sort_links["Duration"]).query)


def test_it_hides_other_workspaces_executions(alice_client, agent_version, other_workspace):
    mine = make(agent_version)[0]
    theirs_version = AgentVersionFactory(agent__workspace=other_workspace, agent__name="spy")
    theirs = make(theirs_version, error="their secret")[0]
    their_batch = BatchFactory(workspace=other_workspace)
    body = alice_client.get(URL).content.decode()
    assert str(mine.pk) in body and str(theirs.pk) not in body
    assert "spy" not in body
    found = alice_client.get(f"{URL}?q={theirs.pk}")
    assert found.context["page"].total == 0
    assert str(theirs.pk) not in row_ids(found.content)
    assert alice_client.get(f"{URL}?q=their+secret").context["page"].total == 0
    batch = alice_client.get(f"{URL}?batch={their_batch.pk}")
    assert "no batch with this id" in parse(batch.content).one("p", id="err-batch").text
    assert alice_client.get(f"/executions/batches/{their_batch.pk}/").status_code == 404


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("partial", [False, True])
def test_queries_per_page_do_not_grow_with_rows(
    partial, alice_client, agent_version, workspace, django_assert_num_queries
):
    """The same number of queries for 3 rows or 100, batches included."""

    def count_for(query):
        get = (lambda p: htmx(alice_client, p)) if partial else alice_client.get
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert get(f"{URL}?{query}").status_code == 200
        return len(ctx.captured_queries)

    batch = BatchFactory(workspace=workspace)
    make(agent_version, 2, batch=batch)
    make(agent_version, 3, schedule=ScheduleFactory(agent_version=agent_version))
    count_for("")  # the first request also stores the chosen workspace in the session
    small = count_for("per_page=100")
    for _ in range(20):
        b = BatchFactory(workspace=workspace)
        make(agent_version, 2, batch=b, schedule=ScheduleFactory(agent_version=agent_version))
    make(agent_version, 60, status=Status.RUNNING)
    assert count_for("per_page=100") == small
    with django_assert_num_queries(small):
        (
            htmx(alice_client, f"{URL}?per_page=100")
            if partial
            else alice_client.get(f"{URL}?per_page=100")
        )


def test_exact_query_count_for_a_filtered_page(
    alice_client, agent_version, django_assert_num_queries
):
    make(agent_version, 30, status=Status.FAILED, error="Tool timeout after 30s")
    alice_client.get(URL)  # the first request also stores the chosen workspace in the session
    # session, user, membership; the count per batch (a text search is not in the
    # counters: one scan gives the total and the batch groups), page ids, rows; the
    # drop-downs' options (agents that ran, live agents, versions and schedules in one
    # UNION); the saved views menu and the workspace switcher.
    with django_assert_num_queries(9):
        alice_client.get(f"{URL}?q=timeout&status=failed")
    with django_assert_num_queries(6):
        htmx(alice_client, f"{URL}?q=timeout&status=failed")


# Batches ----------------------------------------------------------------------


def test_a_batch_is_one_row_with_its_size_and_mix(alice_client, agent_version, workspace):
    batch = BatchFactory(workspace=workspace, agent_version=agent_version, name="March invoices")
    make(agent_version, 3, batch=batch, status=Status.COMPLETED)
    make(agent_version, 1, batch=batch, status=Status.FAILED)
    make(agent_version, 1, batch=batch, status=Status.RUNNING)
    single = make(agent_version)[0]
    response = alice_client.get(URL)
    doc = parse(response.content)
    head = doc.one("tr", id=f"batch-head-{batch.pk}")
    assert "March invoices" in head.text
    assert "5 executions" in " ".join(head.text.split())
    mix = {s.attrs["class"].split()[1]: s.text.strip() for s in head.select("span", cls="mix-item")}
    assert mix == {
        "mix-running": "1 running",
        "mix-failed": "1 failed",
        "mix-completed": "3 completed",
    }
    assert row_ids(response.content) == [str(single.pk)]
    assert response.context["page"].total == 6
    toggle = head.one("a", cls="batch-toggle")
    assert toggle.attrs["href"] == f"{URL}?batch={batch.pk}"
    assert toggle.attrs["aria-expanded"] == "false"


def test_a_batch_expands_in_place_to_its_matching_executions(
    alice_client, agent_version, workspace
):
    batch = BatchFactory(workspace=workspace)
    failed = make(agent_version, 2, batch=batch, status=Status.FAILED)
    make(agent_version, 3, batch=batch, status=Status.COMPLETED)
    rows_url = f"/executions/batches/{batch.pk}/rows/"
    response = htmx(alice_client, f"{rows_url}?status=failed&expand=1")
    assert "HX-Request" in response["Vary"]
    doc = parse(response.content)
    body = doc.one("tbody", id=f"batch-{batch.pk}")
    assert "is-expanded" in body.classes
    assert {tr.attrs["data-id"] for tr in body.select("tr", cls="exec-row")} == {
        str(e.pk) for e in failed
    }
    assert "2 matches" in " ".join(body.one("tr", cls="batch-row").text.split())
    toggle = body.one("a", cls="batch-toggle")
    assert toggle.attrs["aria-expanded"] == "true"
    assert "expand=0" in toggle.attrs["hx-get"] and "status=failed" in toggle.attrs["hx-get"]
    collapsed = parse(htmx(alice_client, f"{rows_url}?status=failed&expand=0").content)
    assert collapsed.select("tr", cls="exec-row") == []
    # Without JavaScript the toggle is a link to the table filtered by the batch.
    assert alice_client.get(rows_url)["Location"] == f"{URL}?batch={batch.pk}"


def test_batch_page_shows_progress_and_stops_polling_when_done(
    alice_client, agent_version, workspace
):
    batch = BatchFactory(workspace=workspace, name="Receipts")
    make(agent_version, 3, batch=batch, status=Status.COMPLETED)
    running = make(agent_version, 1, batch=batch, status=Status.RUNNING)[0]
    response = alice_client.get(f"/executions/batches/{batch.pk}/")
    doc = parse(response.content)
    progress = doc.one("section", id="batch-progress")
    assert "75%" in progress.text
    assert progress.attrs["hx-trigger"] == "every 3s"
    assert len(doc.select("tr", cls="exec-row")) == 4
    poll = htmx(alice_client, f"/executions/batches/{batch.pk}/?part=progress")
    assert poll.status_code == 200
    from executions.lifecycle import transition

    transition(running, Status.COMPLETED)
    done = htmx(alice_client, f"/executions/batches/{batch.pk}/?part=progress")
    assert done.status_code == 286
    assert "100%" in parse(done.content).one("section", id="batch-progress").text


# Live -------------------------------------------------------------------------


def test_live_poll_re_renders_running_rows_and_counts_new_ones(alice_client, agent_version):
    from executions.lifecycle import transition

    running = make(agent_version, status=Status.RUNNING, step_count=1)[0]
    first = alice_client.get(URL)
    live = parse(first.content).one("div", id="live")
    poll_url = live.attrs["hx-get"]
    assert f"ids={running.pk}" in poll_url and live.attrs["hx-trigger"] == "every 3s"

    running.step_count = 7
    running.save(update_fields=["step_count"])
    transition(running, Status.COMPLETED)
    make(agent_version, 2, created_at=timezone.now() + timedelta(seconds=1))
    make(agent_version, status=Status.FAILED, created_at=timezone.now() + timedelta(seconds=1))

    response = htmx(alice_client, poll_url)
    doc = parse(response.content)
    assert "3 new executions" in doc.one("a", cls="new-banner").text
    row = doc.one("template").one("tr")
    assert row.attrs["id"] == f"row-{running.pk}" and row.attrs["hx-swap-oob"] == "true"
    assert "Completed" in row.text and ">7<" in response.content.decode().replace("\n", "")
    # The finished row is no longer polled.
    assert f"ids={running.pk}" not in doc.one("div", id="live").attrs["hx-get"]

    filtered = htmx(alice_client, poll_url.replace("?", "?status=failed&", 1))
    assert "1 new execution " in parse(filtered.content).one("a", cls="new-banner").text + " "


def test_live_poll_ignores_other_workspaces_ids(alice_client, other_workspace):
    theirs = make(AgentVersionFactory(agent__workspace=other_workspace), status=Status.RUNNING)[0]
    since = quote(timezone.now().isoformat())
    response = htmx(alice_client, f"/executions/live/?ids={theirs.pk}&since={since}")
    assert str(theirs.pk) not in response.content.decode()


def test_live_poll_without_a_time_stops_polling(alice_client):
    assert htmx(alice_client, "/executions/live/").status_code == 286


def test_every_out_of_band_swap_has_a_target_on_the_page(alice_client, agent_version):
    """htmx drops an out-of-band element whose id is not on the page (and logs an
    error): each one a filter answer carries must be in the full page."""
    query = "?after=garbage&before=2026-13-01&q=ab"
    page = alice_client.get(URL + query).content.decode()
    partial = alice_client.get(
        URL + query, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
    ).content.decode()
    targets = re.findall(r'id="([^"]+)"[^>]*hx-swap-oob=', partial)
    assert {"err-after", "err-before", "err-q", "filter-state"} <= set(targets)
    assert [t for t in targets if f'id="{t}"' not in page] == []
    # The message of a filter without a control of its own is shown all the same.
    assert re.search(r'id="err-after">Enter a time as ISO 8601', page)
