"""The overview in a real browser (New York time): no console errors or CSP
violations, a range change swaps the charts in place and pushes the URL, and a bar
of the chart lands on a table whose total is the bar's number."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from executions import counters
from executions.models import Status
from tests.factories import ExecutionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def runs(agent_version, workspace):
    now = timezone.now()
    for i in range(12):
        ExecutionFactory(
            agent_version=agent_version,
            status=Status.FAILED if i % 4 == 0 else Status.COMPLETED,
            error="Timeout after 30 s" if i % 4 == 0 else "",
            created_at=now - timedelta(hours=i * 2),
        )
    counters.rebuild(workspace)


def test_overview_swaps_in_place_and_its_bars_land_on_the_same_runs(page, live_server, runs):
    page.context.add_cookies([{"name": "tz", "value": "America/New_York", "url": live_server.url}])
    page.goto("/overview/?range=24h")
    expect(page.locator("#chart-runs svg.chart")).to_be_visible()
    page.evaluate("document.querySelector('h1').dataset.kept = 'yes'")
    page.get_by_label("7d").check()
    expect(page).to_have_url(re.compile(r"range=7d"))
    expect(page.locator(".ov-range-note")).to_contain_text("by hour")
    assert page.evaluate("document.querySelector('h1').dataset.kept") == "yes"
    bar = page.locator("#chart-runs svg.chart a").first
    title = bar.locator("title").text_content()
    count = int(title.split(": ")[1].split(" ")[0].replace(",", ""))
    bar.click()
    expect(page).to_have_url(re.compile(r"/executions/\?.*after="))
    expect(page.locator("#results-summary")).to_contain_text(f"{count} execution")
