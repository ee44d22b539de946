"""The Form tab's sticky Save bar: it never hides the field being edited, and the
outcome of a save is said where the Save button is."""

import pytest
from playwright.sync_api import expect

from tests.factories import ExecutionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OUTPUT = {f"field_{n:02d}": f"value {n}" for n in range(40)}


@pytest.fixture
def browser_user(bob):
    return bob


def test_the_last_field_stays_above_the_bar_and_saved_is_in_view(page, agent_version):
    execution = ExecutionFactory(agent_version=agent_version, output=OUTPUT)
    page.set_viewport_size({"width": 1200, "height": 700})
    page.goto(f"/executions/{execution.pk}/?tab=form")
    # Brought into view from above, as Tab or the browser's find do (block: "end"), a
    # field lands at the bottom of the window: right where the sticky bar is.
    for ptr in ("/field_20", "/field_39"):
        field = page.locator(f'.jf-leaf[data-ptr="{ptr}"]').locator("input, textarea").first
        page.evaluate("window.scrollTo(0, 0)")
        field.evaluate("el => el.scrollIntoView({block: 'end'})")
        field_box = field.bounding_box()
        bar_box = page.locator(".jf-actions").bounding_box()
        assert field_box["y"] + field_box["height"] <= bar_box["y"] + 1, ptr
    last = page.locator('.jf-leaf[data-ptr="/field_39"]').locator("input, textarea").first
    last.fill("corrected")

    page.get_by_role("button", name="Save corrections").click()
    outcome = page.locator(".jf-actions .jf-outcome")
    expect(outcome).to_have_text("Saved 1 correction.")
    box = outcome.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 700  # on screen, by the button
    assert page.errors == []
