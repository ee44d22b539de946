"""Read replicas for real: a private primary, a standby streaming from it (made with
pg_basebackup), and a Runboard web process pointed at both.

Proof that a read came from the standby: its replay is paused, a run is written on the
primary, and the run's page answers 404 to a reader whose reads go to the standby and
200 to one pinned to the primary. Once replay resumes the standby serves it too.
"""

import time

import pytest

from .stack import Browser, WebProcess, app_env, create_execution

pytestmark = pytest.mark.postgres


def web_on_pair(pair, **extra):
    env = app_env(
        pair.primary.url(pair.dbname),
        DATABASE_REPLICA_URL=pair.standby.url(pair.dbname),
        **extra,
    )
    return WebProcess(env).start()


def reader(web, pair) -> Browser:
    """Logged in (a POST, so pinned to the primary), then un-pinned once the standby
    holds the session: its reads go to the replica from here on."""
    browser = Browser(web.url)
    response = browser.login()
    assert "rb_primary" in response.cookies
    pair.wait_replayed()
    return browser


def unpinned(browser: Browser, path: str):
    browser.session.cookies.pop("rb_primary", None)
    return browser.get(path)


def pinned(browser: Browser, path: str):
    browser.session.cookies.set("rb_primary", "1")
    return browser.get(path)


def test_reads_come_from_the_standby_and_writes_reach_it(replicated):
    pair, key = replicated
    web = web_on_pair(pair, REPLICA_MAX_LAG_SECONDS="3600", REPLICA_CHECK_SECONDS="0")
    try:
        browser = reader(web, pair)
        pair.pause_replay()
        try:
            run = create_execution(web.url, key)
            # The API reads its own write on the primary.
            api = browser.session.get(
                f"{web.url}/api/v1/executions/{run}",
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert api.status_code == 200, api.text[:300]
            # The run's page, read from the standby that has not replayed the run yet.
            assert unpinned(browser, f"/executions/{run}/").status_code == 404
            assert run not in unpinned(browser, "/executions/").text
            # A client that just wrote reads the primary.
            assert pinned(browser, f"/executions/{run}/").status_code == 200
            assert run in pinned(browser, "/executions/").text
        finally:
            pair.resume_replay()
        pair.wait_replayed()
        # The write reached the standby, which now serves it.
        assert pair.standby.sql(
            "SELECT count(*) FROM executions_execution WHERE id = %s", run, dbname=pair.dbname
        ) == [(1,)]
        page = unpinned(browser, f"/executions/{run}/")
        assert page.status_code == 200
        assert run in unpinned(browser, "/executions/").text
        assert unpinned(browser, "/overview/").status_code == 200
        assert unpinned(browser, "/executions/export.csv").status_code == 200
    finally:
        web.stop()


def test_a_lagging_or_missing_replica_is_skipped(replicated):
    pair, key = replicated
    web = web_on_pair(pair, REPLICA_MAX_LAG_SECONDS="1", REPLICA_CHECK_SECONDS="0")
    try:
        browser = reader(web, pair)
        pair.pause_replay()
        try:
            run = create_execution(web.url, key)
            # Wait (bounded) until the standby is more than the allowed second behind.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                lag = pair.standby.sql(
                    "SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
                )[0][0]
                if lag > 1.5:
                    break
                time.sleep(0.1)
            # Served by the primary although not pinned: the standby is skipped.
            assert unpinned(browser, f"/executions/{run}/").status_code == 200
        finally:
            pair.resume_replay()
        pair.wait_replayed()
        # A standby that is down is skipped too: pages still answer.
        pair.standby.stop()
        assert unpinned(browser, f"/executions/{run}/").status_code == 200
        assert unpinned(browser, "/executions/").status_code == 200
    finally:
        web.stop()
