"""Shared fixtures for browser tests: Debian's chromium driven by Playwright.

`page` is a Playwright page on a live server, already logged in as `browser_user`
(alice, an admin of her workspace, unless a test overrides that fixture). `watch(page)`
makes `page.errors` collect uncaught exceptions, console errors and Content Security
Policy violations; a test fails at its end if any was collected that it did not
declare in `page.expected_errors` (substrings). A test that makes its own page calls
`watch` and `assert_no_unexpected_errors` itself.

Chromium is at $CHROMIUM_PATH (/usr/bin/chromium by default, which is where `.ci/run`
installs it). Without it the browser tests skip with the reason, except in CI
(CI=true), where a missing browser is an error: CI must not pass by skipping them.
"""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


# Package scope, not session: Playwright's sync API keeps an event loop running in
# this thread while it is open, and every later test that reaches async code through
# async_to_sync (the live region, the stream caps, the Citus walk) or starts its own
# Playwright (tests/scale) fails inside that loop.
@pytest.fixture(scope="package")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"Debian's chromium is not installed at {CHROMIUM} (CHROMIUM_PATH)"
        if IN_CI:
            pytest.fail(f"CI=true and {message}: the browser tests cannot run", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the
    # tests make between browser steps are still plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield instance
            instance.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_user(alice):
    return alice


def login_cookie(user) -> dict:
    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
    }


# Registered before any page script runs: a violation is reported even when the
# blocked script or style would have reported nothing itself.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__reportCsp(
    `CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}` +
      ` at ${event.sourceFile || document.location.href}:${event.lineNumber}`
  );
});
"""


def watch(page) -> None:
    """Collect into `page.errors` what a user never sees but a test must: uncaught
    exceptions, console errors (failed loads among them) and CSP violations."""
    page.errors = []
    page.expected_errors = []
    page.on("pageerror", lambda exc: page.errors.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda msg: (
            page.errors.append(f"console: {msg.text} at {msg.location.get('url')}")
            if msg.type == "error"
            else None
        ),
    )
    page.expose_function("__reportCsp", lambda text: page.errors.append(text))
    page.add_init_script(CSP_LISTENER)


def assert_no_unexpected_errors(page) -> None:
    unexpected = [
        error
        for error in page.errors
        if not any(expected in error for expected in page.expected_errors)
    ]
    assert unexpected == [], "errors in the browser:\n" + "\n".join(unexpected)


@pytest.fixture
def page(browser, live_server, browser_user):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1400, "height": 900}, timezone_id="UTC"
    )
    context.add_cookies([{**login_cookie(browser_user), "url": live_server.url}])
    page = context.new_page()
    page.set_default_timeout(10_000)
    watch(page)
    yield page
    context.close()
    assert_no_unexpected_errors(page)
