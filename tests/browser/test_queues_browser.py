"""A reviewer works through a review queue in a real browser: Start, the run's tabs,
j/k/y/n on the rubric, a correction typed in the Form tab and Enter to submit, s to
skip, the button for the last; and the same page without JavaScript."""

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
    expect(page.locator("h2", has_text="Rubric")).to_be_visible()
    # queues.js is deferred: it binds its listeners by DOMContentLoaded, which the
    # visible heading does not imply.
    page.wait_for_load_state("domcontentloaded")
    expect(page.locator("#review-keys")).to_be_visible()  # the legend, shown by the script

    # The run's tabs switch in place; the Form tab is the feedback app's JSON form.
    page.locator("#run-tabs").get_by_role("link", name="Output JSON").click()
    expect(page.locator("#pane-output")).to_contain_text('"invoice_id": "INV-')
    expect(page.locator("#pane-form")).to_be_hidden()
    page.locator("#run-tabs").get_by_role("link", name="Form").click()
    total = page.locator('#pane-form .jf-leaf[data-ptr="/total"] input')
    expect(total).to_be_visible()

    # j moves to the first field, y marks it correct and moves on; n on the total marks
    # it as needing a fix and puts the cursor in its Form field; Enter submits and
    # takes the next item once Escape has left the text box.
    page.keyboard.press("j")
    expect(page.locator(".review-field.is-current")).to_have_attribute("data-ptr", "/invoice_id")
    page.keyboard.press("y")
    expect(page.locator(".review-field.is-current")).to_have_attribute("data-ptr", "/total")
    page.keyboard.press("n")
    expect(page.locator('input[name="v-1"][value="corrected"]')).to_be_checked()
    expect(total).to_be_focused()
    total.fill("77")
    page.get_by_label("Tone").select_option("rude")
    page.locator("#review-comment").fill("PDF says 77")
    page.locator("#review-comment").press("Escape")
    first_url = page.url
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url != first_url)
    fc = FieldCorrection.objects.get(execution_id=runs[0])
    assert (fc.path, fc.value_after, fc.comment) == ("/total", 77, "PDF says 77")
    first = Review.objects.get(item__execution_id=runs[0])
    assert first.answers == {"tone": "rude"}
    assert first.fields["/total"] == {"verdict": "corrected", "value": 77}

    # s skips the second.
    page.wait_for_load_state("domcontentloaded")
    second_url = page.url
    page.keyboard.press("s")
    page.wait_for_url(lambda url: url != second_url)
    third = Execution.objects.get(pk=runs[2]).output["invoice_id"]
    expect(page.locator('#pane-form .jf-leaf[data-ptr="/invoice_id"] input')).to_have_value(third)

    # Typing in the Form marks the field "needs fix" by itself; the button submits.
    page.wait_for_load_state("domcontentloaded")
    page.locator('#pane-form .jf-leaf[data-ptr="/invoice_id"] input').fill(third + "-B")
    expect(page.locator('input[name="v-0"][value="corrected"]')).to_be_checked()
    page.get_by_role("button", name="Submit and next").click()
    expect(page.locator(".messages")).to_contain_text("Nothing left for you in Invoices.")
    states = dict(QueueItem.objects.values_list("execution_id", "state"))
    assert states == {runs[0]: "done", runs[1]: "open", runs[2]: "done"}
    assert Review.objects.get(item__execution_id=runs[1]).skipped
    assert FieldCorrection.objects.get(execution_id=runs[2]).value_after == third + "-B"


def test_the_review_flow_works_with_javascript_off(browser, live_server, bob, queue):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.add_cookies([{**login_cookie(bob), "url": live_server.url}])
    page = context.new_page()
    try:
        page.goto("/reviews/")
        page.get_by_role("button", name="Start").click()
        run = Review.objects.get(reviewer=bob).item.execution
        expect(page.locator("#review-keys")).to_be_hidden()  # no script, no shortcuts
        # The tabs are links: Output JSON reloads the page on that tab.
        page.locator("#run-tabs").get_by_role("link", name="Output JSON").click()
        expect(page.locator("#pane-output")).to_be_visible()
        page.locator("#run-tabs").get_by_role("link", name="Form").click()
        # No script ticks the radio: the edited value alone counts as the correction.
        page.locator('#pane-form .jf-leaf[data-ptr="/total"] input').fill("5")
        page.get_by_role("button", name="Submit and stop").click()
        expect(page.locator(".messages")).to_contain_text("Review saved.")
        assert FieldCorrection.objects.get(execution=run).value_after == 5
    finally:
        context.close()
