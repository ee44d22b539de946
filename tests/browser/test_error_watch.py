"""The browser fixture's watch: what it collects is what makes every browser test fail."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import assert_no_unexpected_errors

pytestmark = pytest.mark.browser


def test_csp_violations_console_errors_and_exceptions_fail_a_test(page):
    page.goto("/executions/")
    expect(page.locator("h1")).to_be_visible()
    assert page.errors == []
    # An inline script the CSP forbids, a missing image (a console error) and an
    # uncaught exception, each the way a page's own code could cause them.
    with (
        page.expect_event("pageerror"),
        page.expect_console_message(lambda m: "Failed to load resource" in m.text),
    ):
        page.evaluate(
            """() => {
          const script = document.createElement("script");
          script.textContent = "window.injected = true";
          document.body.append(script);
          const img = document.createElement("img");
          img.src = "/static/no-such-image.png";
          document.body.append(img);
          setTimeout(() => { throw new Error("boom from a test"); });
        }"""
        )
    assert page.evaluate("() => window.injected") is None  # the CSP did block it
    kinds = {error.split(":")[0] for error in page.errors}
    assert {"CSP violation", "console", "pageerror"} <= kinds, page.errors
    assert any("script-src" in e and e.startswith("CSP violation") for e in page.errors)
    assert any("404" in e and "no-such-image.png" in e for e in page.errors)
    with pytest.raises(AssertionError, match="errors in the browser"):
        assert_no_unexpected_errors(page)
    # Declared, they are expected: the fixture's own check at the end passes.
    page.expected_errors = ["script-src", "no-such-image.png", "boom from a test"]
    assert_no_unexpected_errors(page)
