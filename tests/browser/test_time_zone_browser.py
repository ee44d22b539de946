"""A browser in New York: app.js tells the server its zone, the page names it, times
and whole-day date filters follow it."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from executions import counters
from tests.factories import ExecutionFactory

from .conftest import assert_no_unexpected_errors, login_cookie, watch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def ny_page(browser, live_server, alice):
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1400, "height": 900},
        timezone_id="America/New_York",
        locale="en-US",
    )
    context.add_cookies([{**login_cookie(alice), "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(10_000)
    watch(page)
    yield page
    context.close()
    assert_no_unexpected_errors(page)


def test_new_york_sees_its_own_times_and_days(ny_page, agent_version, workspace):
    # 23:30 in New York on 3 December is 04:30 UTC on the 4th.
    late_3rd = ExecutionFactory(
        agent_version=agent_version, created_at=datetime(2026, 12, 3, 23, 30, tzinfo=NEW_YORK)
    )
    on_4th = ExecutionFactory(
        agent_version=agent_version, created_at=datetime(2026, 12, 4, 9, 15, tzinfo=NEW_YORK)
    )
    counters.rebuild(workspace)
    page = ny_page
    page.goto("/executions/")  # app.js writes the zone cookie on this first page
    page.goto("/executions/")
    expect(page.locator("#tz-label")).to_have_text("Times: America/New_York")
    cookie = next(c for c in page.context.cookies() if c["name"] == "tz")
    assert cookie["value"] == "America%2FNew_York"
    expect(page.locator(f"#row-{late_3rd.pk} time")).to_have_text("2026-12-03 23:30")
    expect(page.locator(f"#row-{on_4th.pk} time")).to_have_text("2026-12-04 09:15")

    page.goto("/executions/?start=2026-12-03&end=2026-12-03")
    expect(page.locator("tr.exec-row")).to_have_count(1)
    expect(page.locator(f"#row-{late_3rd.pk}")).to_be_visible()

    page.goto(late_3rd.get_absolute_url())
    expect(page.locator("#tz-label")).to_have_text("Times: America/New_York")
    assert page.errors == []
