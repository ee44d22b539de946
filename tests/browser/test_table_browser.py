"""The executions table in a real browser: a filter swaps only the results, the URL
follows, Back restores the previous state; a batch expands in place; keys move."""

import contextlib
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from executions import counters
from executions.models import Status
from tests.factories import BatchFactory, ExecutionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def executions(agent_version, workspace):
    failed = ExecutionFactory.create_batch(
        3, agent_version=agent_version, status=Status.FAILED, error="Tool call timed out"
    )
    completed = ExecutionFactory.create_batch(5, agent_version=agent_version)
    batch = BatchFactory(workspace=workspace, name="April receipts")
    in_batch = ExecutionFactory.create_batch(4, agent_version=agent_version, batch=batch)
    counters.rebuild(workspace)
    return {"failed": failed, "completed": completed, "batch": batch, "in_batch": in_batch}


def rows(page):
    return page.locator("#exec-table tr.exec-row")


def test_a_filter_swaps_only_the_table_and_back_restores_it(page, live_server, executions):
    page.goto("/executions/")
    assert rows(page).count() == 8
    # Marks outside the results region: a full page load would lose both.
    page.evaluate("window.__kept = 'yes'; document.querySelector('h1').dataset.kept = 'yes'")

    page.locator("details[data-multi] summary").click()
    page.get_by_label("Failed", exact=True).check()
    page.wait_for_url(re.compile(r"/executions/\?status=failed$"))
    expect(rows(page)).to_have_count(3)

    assert page.evaluate("window.__kept") == "yes"
    assert page.evaluate("document.querySelector('h1').dataset.kept") == "yes"
    expect(page.locator("#results-summary")).to_contain_text("3 executions total")
    assert page.locator("#exec-table tr.batch-row").count() == 0

    page.go_back()
    page.wait_for_url(re.compile(r"/executions/$"))
    expect(rows(page)).to_have_count(8)
    assert not page.get_by_label("Failed", exact=True).is_checked()
    assert page.evaluate("window.__kept") == "yes"  # history restore, not a reload
    assert page.errors == []


def test_search_sort_and_paging_keep_the_url_in_step(page, executions):
    page.goto("/executions/")
    page.locator("#id_q").fill("timed out")
    page.wait_for_url(re.compile(r"q=timed\+out"))
    expect(rows(page)).to_have_count(3)
    page.locator("a.sort-link", has_text="Duration").click()
    page.wait_for_url(re.compile(r"q=timed\+out&sort=-duration"))
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Duration")
    expect(page.locator("#filter-state input[name=sort]")).to_have_value("-duration")
    # The search box kept its text and focus state through the swap: it is outside #results.
    expect(page.locator("#id_q")).to_have_value("timed out")
    assert page.errors == []


def test_a_batch_expands_in_place(page, executions):
    batch = executions["batch"]
    page.goto("/executions/")
    head = page.locator(f"#batch-head-{batch.pk}")
    assert "April receipts" in head.inner_text()
    head.locator("a.batch-toggle").click()
    group = page.locator(f"#batch-{batch.pk}")
    expect(group.locator("tr.exec-row")).to_have_count(4)
    assert group.locator("a.batch-toggle").get_attribute("aria-expanded") == "true"
    assert page.url.endswith("/executions/")  # expanding is not a new state
    group.locator("a.batch-toggle").click()
    expect(group.locator("tr.exec-row")).to_have_count(0)
    assert page.errors == []


def test_keys_move_between_rows_and_open_one(page, executions):
    page.goto("/executions/")
    page.keyboard.press("j")
    page.keyboard.press("j")
    current = page.locator("#exec-table tr.is-current")
    assert current.count() == 1
    href = current.get_attribute("data-href")
    page.keyboard.press("k")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(href) + "$"))
    page.go_back()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "id_q"


def test_ticking_rows_shows_the_bulk_bar(page, executions):
    page.goto("/executions/")
    bar = page.locator("[data-bulk-bar]")
    expect(bar).to_be_hidden()
    page.locator("input.row-check").nth(0).check()
    page.locator("input.row-check").nth(1).check()
    expect(bar).to_be_visible()
    expect(page.locator("[data-bulk-count]")).to_have_text("2 selected")
    with page.expect_download() as download:
        bar.get_by_role("button", name="Export selected as CSV").click()
    text = Path(download.value.path()).read_text()
    assert len(text.strip().splitlines()) == 3  # header and two rows


def test_running_rows_update_and_new_runs_are_announced_without_moving_rows(
    page, agent_version, workspace
):
    from django.utils import timezone

    from executions.lifecycle import transition

    running = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING, step_count=2)
    ExecutionFactory.create_batch(3, agent_version=agent_version)
    counters.rebuild(workspace)
    page.goto("/executions/")
    first_row = rows(page).first.get_attribute("id")
    row = page.locator(f"#row-{running.pk}")
    expect(row.locator(".badge")).to_have_text("Running")
    headers = page.locator("#exec-table thead th").all_inner_texts()
    steps_column = next(i for i, text in enumerate(headers) if text.strip().startswith("Steps"))
    steps_cell = row.locator("td").nth(steps_column)
    expect(steps_cell).to_have_text("2")

    running.step_count = 9
    running.save(update_fields=["step_count"])
    transition(running, Status.COMPLETED)
    later = timezone.now() + timezone.timedelta(seconds=1)
    ExecutionFactory.create_batch(2, agent_version=agent_version, created_at=later)
    counters.rebuild(workspace)

    expect(row.locator(".badge")).to_have_text("Completed", timeout=10_000)
    expect(steps_cell).to_have_text("9")
    banner = page.locator("a.new-banner")
    expect(banner).to_contain_text("2 new executions", timeout=10_000)
    assert rows(page).first.get_attribute("id") == first_row  # nothing moved
    expect(rows(page)).to_have_count(4)
    banner.click()
    expect(rows(page)).to_have_count(6)
    assert page.errors == []


def test_a_late_total_arrives_and_an_obsolete_one_is_dropped_quietly(page, executions):
    """A search's total comes after its rows; when the user sorts before it arrives,
    the old count must neither land on the new table nor log an error (htmx logged
    every aborted count as a console error)."""
    held = []
    page.route(re.compile(r"part=total"), lambda route: held.append(route))
    page.goto("/executions/")  # app.js sets the js cookie: searches are now counted late
    page.locator("#id_q").fill("timed out")
    page.wait_for_url(re.compile(r"q=timed\+out"))
    expect(rows(page)).to_have_count(3)
    expect(page.locator(".results-count.is-counting")).to_have_count(1)
    wait_until(page, lambda: len(held) == 1, "the rows came without asking for their total")

    page.locator("a.sort-link", has_text="Duration").click()
    page.wait_for_url(re.compile(r"q=timed\+out&sort=-duration"))
    expect(page.locator("th[aria-sort=descending]")).to_contain_text("Duration")
    wait_until(page, lambda: len(held) == 2, "the sorted rows did not ask for their total")
    # The obsolete count answers first (the browser may already have aborted it).
    for route in held:
        # An aborted request cannot be continued: that is the point.
        with contextlib.suppress(Exception):
            route.continue_()
    expect(page.locator("#results-summary")).to_contain_text("3 executions total")
    expect(page.locator(".page-of")).to_contain_text("page 1 / 1")
    expect(page.locator(".results-count.is-counting")).to_have_count(0)
    assert page.errors == []


def wait_until(page, condition, message):
    for _ in range(100):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError(message)
