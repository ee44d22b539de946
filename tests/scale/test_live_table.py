"""The executions table's live region as a long poll on a real uvicorn process and
PostgreSQL (issue 19), in Debian's chromium: while nothing changes the page has one
request out, held by the server; a run recorded through the API answers it, and the
"new executions" banner shows at once."""

import os
import shutil
import time
from pathlib import Path

import pytest

from .conftest import need_postgres
from .stack import (
    PASSWORD,
    USERNAME,
    Cluster,
    WebProcess,
    _workdir,
    app_env,
    create_execution,
    manage,
    prepare,
)

pytestmark = pytest.mark.postgres

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp"))


@pytest.fixture(scope="module")
def web():
    """A private cluster (on SCALE_PG_PORT when set, else a free port) and one uvicorn
    process on it."""
    need_postgres()
    workdir = _workdir("rb_live_table_")
    cluster = Cluster(workdir / "pg", port=int(os.environ.get("SCALE_PG_PORT", 0)) or None)
    cluster.init().start()
    process = None
    try:
        cluster.sql("CREATE DATABASE runboard")
        # DEBUG is off: the page's scripts come from collected static files.
        env = app_env(cluster.url("runboard"), STATIC_ROOT=str(workdir / "static"))
        manage(env, "collectstatic", "--no-input", "-v", "0")
        key = prepare(env)
        process = WebProcess(env).start()
        yield process, key
    finally:
        if process is not None:
            process.stop()
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_the_banner_comes_from_a_held_request_not_from_polling(web):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    process, key = web
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            sent, answered = [], []
            page.on("request", lambda r: "/executions/live/" in r.url and sent.append(r.url))
            page.on(
                "requestfinished",
                lambda r: "/executions/live/" in r.url and answered.append(time.monotonic()),
            )
            page.goto(f"{process.url}/accounts/login/")
            page.fill("input[name=username]", USERNAME)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.goto(f"{process.url}/executions/")
            assert page.locator("#live").get_attribute("hx-trigger") == "every 2s"

            # The first request answers at once (no token yet); the next is held.
            deadline = time.monotonic() + 20
            while len(sent) < 2 and time.monotonic() < deadline:
                page.wait_for_timeout(200)
            assert len(sent) == 2 and "live=" in sent[1]
            page.wait_for_timeout(6000)
            # Polling every 2 s would have sent three more by now.
            assert len(sent) == 2 and len(answered) == 1

            create_execution(process.url, key, "live-table:v1")
            page.locator(".new-banner").wait_for(timeout=5000)
            assert "1 new execution" in page.locator(".new-banner").inner_text()
            assert "{#" not in page.locator("body").inner_text()  # no template text shown
            assert len(answered) == 2
            page.screenshot(path=str(SHOTS / "i19_live_table_banner.png"), full_page=False)
        finally:
            browser.close()
