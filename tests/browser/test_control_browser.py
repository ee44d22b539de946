"""Control actions in a real browser: cancel a running execution from its detail page
and watch the badge change; decide an approval; the live page follows a status change
made elsewhere and offers the actions the new status allows."""

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from executions.models import Execution, Status
from tests.browser.conftest import assert_no_unexpected_errors, login_cookie, watch
from tests.factories import ApiKeyFactory, ExecutionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def badge(page):
    return page.locator("#run-badge .badge")


@pytest.fixture
def browser_user(operator):
    return operator


def test_an_operator_cancels_a_running_execution_from_its_page(page, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    page.goto(execution.get_absolute_url())
    expect(badge(page)).to_have_attribute("data-status", "running")
    expect(page.locator("[data-action=rerun]")).to_have_count(0)

    # Cancel asks once: the button opens the question, the answer cancels.
    page.locator("#run-actions [data-action=cancel-ask]").click()
    expect(page.locator("#run-actions .cancel-question")).to_be_visible()
    assert Execution.objects.get(pk=execution.pk).status == Status.RUNNING
    page.locator("#run-actions textarea[name=reason]").fill("Wrong file")
    page.locator("#run-actions [data-action=cancel]").click()

    expect(badge(page)).to_have_attribute("data-status", "cancelled")
    expect(badge(page)).to_have_text("Cancelled")
    expect(page.get_by_role("status")).to_contain_text("Execution cancelled")
    # Finished now: Cancel gives way to Rerun.
    expect(page.locator("#run-actions [data-action=cancel]")).to_have_count(0)
    expect(page.locator("#run-actions [data-action=rerun]")).to_be_visible()
    stored = Execution.objects.get(pk=execution.pk)
    assert stored.status == Status.CANCELLED and stored.failure_reason == "Wrong file"
    expect(page.locator(".stopped-box")).to_contain_text("Wrong file")
    assert page.errors == []


@pytest.fixture
def reviewer_page(browser, live_server, bob):
    """A second browser context, logged in as bob the reviewer."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 900})
    context.add_cookies([{**login_cookie(bob), "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(10_000)
    watch(page)
    yield page
    context.close()
    assert_no_unexpected_errors(page)


def test_a_reviewer_approves_with_a_note(reviewer_page, agent_version):
    page = reviewer_page
    execution = ExecutionFactory(
        agent_version=agent_version,
        status=Status.AWAITING_APPROVAL,
        approval_request={"action": "pay", "amount": 120},
    )
    page.goto(execution.get_absolute_url())
    expect(badge(page)).to_have_attribute("data-status", "awaiting_approval")

    page.get_by_text("Approve or reject").click()
    page.locator(".decide-panel textarea[name=note]").fill("Checked the invoice.")
    page.get_by_role("button", name="Approve", exact=True).click()

    expect(badge(page)).to_have_attribute("data-status", "running")
    execution.refresh_from_db()
    assert execution.approval_note == "Checked the invoice."
    assert execution.decided_by.username == "bob"
    assert page.errors == []


def test_the_live_page_follows_a_status_change_made_elsewhere(
    page, live_server, agent_version, workspace
):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    page.goto(execution.get_absolute_url())
    expect(page.locator("#run-actions [data-action=cancel-ask]")).to_be_visible()

    # The runtime reports that it finished, through the API, as a real one would.
    _, key = ApiKeyFactory.create_with_raw(workspace=workspace)
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/executions/{execution.pk}",
        data=json.dumps({"status": "completed"}).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 200

    expect(badge(page)).to_have_attribute("data-status", "completed", timeout=15_000)
    expect(page.locator("#run-actions [data-action=rerun]")).to_be_visible()
    expect(page.locator("#run-actions [data-action=cancel-ask]")).to_have_count(0)
    assert page.errors == []
