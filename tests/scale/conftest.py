"""The scale tests start their own PostgreSQL clusters, web processes and HAProxy.

They run with the PostgreSQL half of the suite (DATABASE_URL=postgres://..., as CI
does): on SQLite they skip, saying so. In CI a missing PostgreSQL binary or HAProxy is
an error, not a skip.
"""

import os

import pytest

from .stack import HAProxy, ReplicatedPair, app_env, pg_bindir, prepare

IN_CI = os.environ.get("CI", "").lower() == "true"
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


def need_postgres():
    if not ON_POSTGRES:
        pytest.skip("scale tests run with the PostgreSQL suite (set DATABASE_URL=postgres://...)")
    if pg_bindir() is None:
        if IN_CI:
            pytest.fail("CI=true and no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        pytest.skip("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")


def need_haproxy():
    if not os.path.exists(HAProxy.BINARY):
        if IN_CI:
            pytest.fail(f"CI=true and no HAProxy at {HAProxy.BINARY} (.ci/run installs it)")
        pytest.skip(f"no HAProxy at {HAProxy.BINARY} (apt-get install haproxy)")


@pytest.fixture(scope="session")
def replicated():
    """A private primary and streaming standby with Runboard migrated on the primary
    (and so on the standby); yields (pair, api key)."""
    need_postgres()
    pair = ReplicatedPair().start()
    try:
        key = prepare(app_env(pair.primary.url(pair.dbname)))
        pair.wait_replayed()
        yield pair, key
    finally:
        pair.stop()
