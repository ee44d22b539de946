"""In Chromium: picking an agent narrows the Version drop-down to its versions, and
the keyboard hint shows only with JavaScript on."""

import pytest
from playwright.sync_api import expect

from executions import counters
from tests.browser.conftest import login_cookie
from tests.factories import AgentVersionFactory, ExecutionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_version_drop_down_follows_the_agent(page, workspace, agent_version):
    other = AgentVersionFactory(agent__workspace=workspace, agent__name="zeta-bot", version="v9")
    ExecutionFactory(agent_version=agent_version)
    ExecutionFactory(agent_version=other)
    counters.rebuild(workspace)
    page.goto("/executions/")
    expect(page.locator(".kbd-hint")).to_be_visible()
    page.select_option("#id_version", label="zeta-bot:v9")
    page.wait_for_url("**version=*")
    page.select_option("#id_agent", "invoice-extractor")
    page.wait_for_url("**agent=invoice-extractor*")
    hidden = page.evaluate(
        "() => Array.from(document.querySelectorAll('#id_version option'))"
        ".filter(o => o.hidden).map(o => o.text)"
    )
    assert hidden == ["zeta-bot:v9"]
    # The other agent's version no longer applies: it was cleared, not kept hidden.
    assert "version=" not in page.url.split("?", 1)[1].replace("version=&", "")
    assert page.errors == []


def test_without_javascript_the_hint_is_not_shown(browser, live_server, alice, agent_version):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.add_cookies([{**login_cookie(alice), "url": live_server.url}])
    page = context.new_page()
    page.goto("/executions/")
    assert not page.locator(".kbd-hint").is_visible()
    context.close()
