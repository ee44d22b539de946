"""The detail page in Debian's chromium: debugging a failed run, tabs, live updates."""

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import lifecycle
from executions.ingest import services
from executions.ingest.steps import StepRecord
from executions.models import Status, StepKind, StepStatus
from tests.executions.test_detail import make_failed_run, make_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_debugging_a_failed_run(page, agent_version):
    execution, _ = make_failed_run(agent_version)
    execution.output = {"partial": True, "invoice_number": "INV-2257", "lines": [1, 2, 3]}
    execution.save()
    page.goto(execution.get_absolute_url())

    box = page.locator(".failure-box")
    assert "never became clickable" in box.inner_text()
    assert "TimeoutError" in box.locator(".failure-error").inner_text()

    # Look at another step first, then click the failing one in the timeline.
    page.click("#step-3 .step-head")
    page.wait_for_selector('#inspector[data-seq="3"]')
    assert page.locator("#inspector img").count() == 0
    page.click("#step-6 .step-head")
    page.wait_for_selector('#inspector[data-seq="6"]')
    assert "step=6" in page.url
    shot = page.locator("#inspector .bbox-frame img")
    shot.wait_for()
    page.wait_for_function(
        "() => { const img = document.querySelector('#inspector .bbox-frame img');"
        " return img && img.complete && img.naturalWidth > 0; }"
    )
    assert "element not clickable" in page.locator("#inspector .step-error-full").inner_text()
    assert "is-selected" in page.get_attribute("#step-6", "class")
    assert "is-failing" in page.get_attribute("#step-6", "class")

    # The card expands in place to its full input and output.
    page.click("#step-6 .step-more summary")
    page.wait_for_selector("#step-6 .step-full .json-view")
    assert "Download PDF" in page.locator("#step-6 .step-full").inner_text()

    # Switch to the Output tab: swapped by htmx, deep-linked in the URL.
    page.click('nav.tabs a:has-text("Output")')
    page.wait_for_selector('#pane[data-tab="output"]')
    assert "tab=output" in page.url
    assert page.locator(".failure-box").count() == 1  # the header and failure stay
    page.fill("[data-json-search]", "INV-2257")
    page.wait_for_function("() => document.querySelector('[data-json-hits]').textContent")
    assert page.locator("[data-json-hits]").inner_text() == "1 of 1"
    # (PostgreSQL's jsonb orders keys its own way, so the line may or may not end in a comma.)
    assert '"invoice_number": "INV-2257"' in page.locator(".jl.hit-current").inner_text()
    page.click("[data-json-collapse]")
    assert page.locator(".json-box details.jd details.jd[open]").count() == 0

    # Back restores the overview from the server, as a whole page.
    page.go_back()
    page.wait_for_selector('#inspector[data-seq="6"]')
    assert page.errors == []


def test_the_panes_work_with_javascript_off(browser, live_server, agent_version, alice):
    from tests.browser.conftest import login_cookie

    execution, _ = make_failed_run(agent_version)
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.add_cookies([{**login_cookie(alice), "url": live_server.url}])
    page = context.new_page()
    page.goto(execution.get_absolute_url())
    page.click('nav.tabs a:has-text("Request")')
    page.wait_for_selector('#pane[data-tab="request"]')
    assert "curl -X POST" in page.locator("#reproduce").inner_text()
    page.click('nav.tabs a:has-text("Overview")')
    page.wait_for_selector('#pane[data-tab="overview"]')
    page.click("#step-3 .step-head")
    page.wait_for_selector('#inspector[data-seq="3"]')
    # The header's API panel opens with no script, and points to the Request tab.
    page.click(".api-pop summary")
    assert page.locator(".api-pop-panel a").first.get_attribute("href").endswith("#reproduce")
    context.close()


@pytest.mark.parametrize(
    "stream_seconds",
    [30, 0],
    ids=["streaming", "server-cannot-stream"],  # 0: each request answers and closes: polling
)
def test_a_running_execution_updates_by_itself(page, agent_version, settings, stream_seconds):
    settings.RUNBOARD_STREAM_MAX_SECONDS = stream_seconds
    execution, _ = make_run(agent_version, steps=2, status=Status.RUNNING, nested=False)
    # The step below is written once the page has asked for its live updates.
    with page.expect_request(lambda request: "/stream" in request.url):
        page.goto(execution.get_absolute_url())
    page.wait_for_selector("#step-2")
    assert page.locator("#run-badge .live-pill").count() == 1

    now = timezone.now()
    services.steps_append(
        workspace=execution.workspace,
        execution_id=execution.pk,
        records=[
            StepRecord(
                sequence=3,
                kind=StepKind.TOOL_CALL,
                name="search_orders",
                status=StepStatus.COMPLETED,
                started_at=now,
                ended_at=now + timedelta(milliseconds=250),
                input={"query": "NW-10442"},
                output={"found": 1},
            )
        ],
    )
    page.wait_for_selector("#step-3.is-new", timeout=5000)
    assert "search_orders" in page.locator("#step-3").inner_text()
    page.wait_for_function(
        "() => document.querySelector('#step-counters b').textContent.trim() === '3'"
    )

    execution.refresh_from_db()
    lifecycle.transition(execution, Status.COMPLETED)
    page.wait_for_selector('#run-badge .badge[data-status="completed"]', timeout=5000)
    page.wait_for_selector("#run[data-ended]")
    assert page.locator("#run-badge .live-pill").count() == 0
    assert page.errors == []
