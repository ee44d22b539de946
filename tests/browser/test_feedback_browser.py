"""Reviewer feedback in a real browser: edit a nested field, add and reorder rows, save
(htmx swaps the form), see the diff; leave a note from the header."""

import re

import pytest
from playwright.sync_api import expect

from feedback.models import ExecutionNote, FieldCorrection
from feedback.selectors import execution_corrected
from tests.factories import AgentVersionFactory, ExecutionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OUTPUT = {
    "invoice_id": "INV-7",
    "vendor": {"name": "ACME", "address": {"city": "Leeds", "zip": "LS1"}},
    "items": [{"sku": "bolt", "qty": 2}, {"sku": "nut", "qty": 3}],
}


@pytest.fixture
def browser_user(bob):
    return bob


@pytest.fixture
def execution(agent_version):
    return ExecutionFactory(agent_version=agent_version, output=OUTPUT)


def field(page, ptr):
    return page.locator(f'.jf-leaf[data-ptr="{ptr}"]').locator("input, textarea, select")


def test_edit_a_nested_field_add_and_reorder_rows_save_and_see_the_diff(page, execution):
    page.goto(f"/executions/{execution.pk}/?tab=form")
    city = field(page, "/vendor/address/city")
    expect(city).to_have_value("Leeds")
    city.fill("York")
    expect(page.locator('.jf-leaf[data-ptr="/vendor/address/city"]')).to_have_class(
        re.compile("jf-dirty")
    )

    items = page.locator('.jf-arr[data-ptr="/items"]')
    items.locator('[data-jf="add"]').click()
    new_row = items.locator(".jf-row-new")
    expect(new_row).to_have_count(1)
    new_row.locator(".jf-leaf").filter(has_text="sku").locator("input").fill("washer")
    new_row.locator(".jf-leaf").filter(has_text="qty").locator("input").fill("9")
    expect(items.locator(".jf-count")).to_have_text("3 items")

    page.get_by_placeholder("Comment (optional)").fill("Checked the PDF")
    page.get_by_role("button", name="Save corrections").click()
    expect(page.locator("#feedback-form .alert-success")).to_have_text("Saved 2 corrections.")
    # htmx swapped only the form: the page is the same one, at the same URL.
    assert page.url.endswith("?tab=form")
    expect(field(page, "/vendor/address/city")).to_have_value("York")

    corrected = execution_corrected(workspace=execution.workspace, execution=execution).output
    assert corrected["vendor"]["address"]["city"] == "York"
    assert corrected["items"][2] == {"sku": "washer", "qty": 9}
    assert set(FieldCorrection.objects.values_list("comment", flat=True)) == {"Checked the PDF"}

    # Reorder: move the new row to the top, which replaces the whole list.
    items = page.locator('.jf-arr[data-ptr="/items"]')
    items.locator(".jf-row").nth(2).locator('[data-jf="up"]').click()
    items.locator(".jf-row").nth(1).locator('[data-jf="up"]').click()
    page.get_by_role("button", name="Save corrections").click()
    expect(page.locator("#feedback-form .alert-success")).to_have_text("Saved 1 correction.")
    corrected = execution_corrected(workspace=execution.workspace, execution=execution).output
    assert [i["sku"] for i in corrected["items"]] == ["washer", "bolt", "nut"]

    page.locator("nav.tabs").get_by_role("link", name=re.compile("^Diff")).click()
    diff = page.locator("#feedback-diff")
    city_row = diff.locator('li[data-path="/vendor/address/city"]')
    expect(city_row.locator(".fb-del")).to_contain_text('"Leeds"')
    expect(city_row.locator(".fb-ins")).to_contain_text('"York"')
    expect(city_row).to_contain_text("bob")
    expect(diff.locator('li[data-path="/items/0"]')).to_contain_text("washer")

    diff.get_by_role("link", name="Side by side").click()
    expect(page.locator("table.fb-split")).to_be_visible()
    assert "mode=split" in page.url
    diff = page.locator("#feedback-diff")
    diff.get_by_role("link", name="Original JSON").click()
    expect(page.locator("#feedback-json-text")).to_contain_text('"city": "Leeds"')
    page.locator("#feedback-diff").get_by_role("link", name="Corrected JSON").click()
    expect(page.locator("#feedback-json-text")).to_contain_text('"city": "York"')
    assert page.errors == []
    page.screenshot(path="screens/feedback-browser-diff.png", full_page=True)


def test_a_schema_violation_is_shown_beside_its_field_and_nothing_is_saved(page, bob):
    version = AgentVersionFactory(
        agent__workspace=bob.memberships.get().workspace,
        version="typed",
        output_schema={
            "type": "object",
            "properties": {
                "total": {"type": "number", "minimum": 0},
                "issued_at": {"type": "string", "format": "date-time"},
            },
        },
    )
    execution = ExecutionFactory(
        agent_version=version, output={"total": 5, "issued_at": "2024-03-01T10:00:00Z"}
    )
    page.goto(f"/executions/{execution.pk}/feedback/")
    field(page, "/total").fill("-5")
    field(page, "/issued_at").fill("2024-03-01T11:30:00Z")
    page.get_by_role("button", name="Save corrections").click()
    total = page.locator('.jf-leaf[data-ptr="/total"]')
    expect(total.locator(".field-error")).to_contain_text("less than the minimum of 0")
    expect(field(page, "/total")).to_have_value("-5")
    expect(field(page, "/issued_at")).to_have_value("2024-03-01T11:30:00Z")
    assert FieldCorrection.objects.count() == 0
    field(page, "/total").fill("7")
    page.get_by_role("button", name="Save corrections").click()
    expect(page.locator("#feedback-form .alert-success")).to_have_text("Saved 2 corrections.")
    assert page.errors == []


def test_a_note_from_the_header(page, execution):
    page.goto(f"/executions/{execution.pk}/")
    menu = page.locator("#feedback-note-form")
    menu.locator("summary").click()
    menu.get_by_label("Needs work").check()
    menu.get_by_label("Note").fill("Vendor name is truncated")
    menu.get_by_role("button", name="Save note").click()
    expect(page.locator("#feedback-note-form summary .fb-saved")).to_have_text("saved")
    note = ExecutionNote.objects.get()
    assert (note.rating, note.text) == ("down", "Vendor name is truncated")
    page.locator("nav.tabs").get_by_role("link", name=re.compile("^Notes")).click()
    expect(page.locator("#feedback-notes")).to_contain_text("Vendor name is truncated")
    expect(page.locator("#feedback-notes")).to_contain_text("Needs work")
    assert page.errors == []


def test_without_javascript_the_form_posts_and_redirects_back(browser, live_server, bob, execution):
    from tests.browser.conftest import login_cookie

    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    context.add_cookies([{**login_cookie(bob), "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"/executions/{execution.pk}/?tab=form")
    field(page, "/vendor/name").fill("ACME Ltd")
    page.locator('.jf-row[data-key="0"] .jf-remove input').check()  # remove the first item
    page.get_by_role("button", name="Save corrections").click()
    # Redirected to the page the form was on, with the outcome as a message.
    page.wait_for_url(re.compile(r"\?tab=form$"))
    expect(page.locator(".messages")).to_contain_text("Saved 2 corrections.")
    expect(field(page, "/vendor/name")).to_have_value("ACME Ltd")
    corrected = execution_corrected(workspace=execution.workspace, execution=execution).output
    assert [i["sku"] for i in corrected["items"]] == ["nut"]
    context.close()
