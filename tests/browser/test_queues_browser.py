"""A reviewer works through a review queue in a real browser: Start, correct a field
and submit with Ctrl+Enter, skip one with Alt+K, submit the last with the button; and
the same page without JavaScript."""

import pytest
from playwright.sync_api import expect

from agents.models import Membership
from executions.models import Execution
from feedback.models import FieldCorrection
from feedback.queues.models import QueueItem, Review
from feedback.queues.services import items_add, queue_create
from tests.factories import ExecutionFactory

from .conftest import login_cookie

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_user(bob):
    return bob


@pytest.fixture
def queue(alice, workspace, agent_version):
    admin = Membership.objects.get(user=alice)
    q = queue_create(
        membership=admin,
        name="Invoices",
        instructions="Check the total against the PDF.",
        fields=["/invoice_id", "/total"],
        questions=[{"key": "tone", "label": "Tone", "kind": "choice", "choices": ["fine", "rude"]}],
    )
    runs = [
        ExecutionFactory(agent_version=agent_version, output={"invoice_id": f"INV-{i}", "total": i})
        for i in range(3)
    ]
    items_add(queue=q, membership=admin, executions=[r.pk for r in runs])
    return q


def order(queue):
    return list(
        QueueItem.objects.filter(queue=queue).order_by("id").values_list("execution_id", flat=True)
    )


def test_a_reviewer_works_through_three_items(page, bob, queue):
    runs = order(queue)
    page.goto("/reviews/")
    expect(page.locator("#queues")).to_contain_text("Invoices")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("h2", has_text="Fields")).to_be_visible()
    expect(page.locator(".review-run")).to_contain_text('"invoice_id": "INV-')
    # queues.js is deferred: it binds its listeners by DOMContentLoaded, which the
    # visible heading does not imply.
    page.wait_for_load_state("domcontentloaded")

    # Typing a value ticks "Corrected to" (queues.js); Ctrl+Enter submits and moves on.
    total = page.get_by_label("Corrected value of /total")
    total.fill("77")
    expect(page.locator('input[name="v-1"][value="corrected"]')).to_be_checked()
    page.get_by_label("Tone").select_option("rude")
    first_url = page.url
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: url != first_url)
    fc = FieldCorrection.objects.get(execution_id=runs[0])
    assert fc.value_after == 77
    assert Review.objects.get(item__execution_id=runs[0]).answers == {"tone": "rude"}

    # Alt+K skips the second.
    second_url = page.url
    page.keyboard.press("Alt+k")
    page.wait_for_url(lambda url: url != second_url)
    third = Execution.objects.get(pk=runs[2]).output["invoice_id"]
    expect(page.locator(".review-run")).to_contain_text(f'"invoice_id": "{third}"')

    page.get_by_role("button", name="Submit and next").click()
    expect(page.locator(".messages")).to_contain_text("Nothing left for you in Invoices.")
    states = dict(QueueItem.objects.values_list("execution_id", "state"))
    assert states == {runs[0]: "done", runs[1]: "open", runs[2]: "done"}
    assert Review.objects.get(item__execution_id=runs[1]).skipped


def test_the_review_flow_works_with_javascript_off(browser, live_server, bob, queue):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.add_cookies([{**login_cookie(bob), "url": live_server.url}])
    page = context.new_page()
    try:
        page.goto("/reviews/")
        page.get_by_role("button", name="Start").click()
        run = Review.objects.get(reviewer=bob).item.execution
        # No script ticks the radio: the edited value alone counts as the correction.
        page.get_by_label("Corrected value of /total").fill("5")
        page.get_by_role("button", name="Submit and stop").click()
        expect(page.locator(".messages")).to_contain_text("Review saved.")
        assert FieldCorrection.objects.get(execution=run).value_after == 5
    finally:
        context.close()
