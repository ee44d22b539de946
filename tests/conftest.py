"""Named users, as in healthchecks: alice owns a workspace, bob is on her team,
charlie is an outsider with a workspace of his own."""

from pathlib import Path

import pytest

from agents.models import Role

from .factories import AgentVersionFactory, MembershipFactory, UserFactory, WorkspaceFactory


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(name="Alice's team", slug="alices-team")


@pytest.fixture
def other_workspace(db):
    return WorkspaceFactory(name="Charlie's team", slug="charlies-team")


@pytest.fixture
def alice(workspace):
    user = UserFactory(username="alice")
    MembershipFactory(user=user, workspace=workspace, role=Role.ADMIN)
    return user


@pytest.fixture
def bob(workspace):
    """On alice's team, as a reviewer."""
    user = UserFactory(username="bob")
    MembershipFactory(user=user, workspace=workspace, role=Role.REVIEWER)
    return user


@pytest.fixture
def viewer(workspace):
    user = UserFactory(username="victor")
    MembershipFactory(user=user, workspace=workspace, role=Role.VIEWER)
    return user


@pytest.fixture
def operator(workspace):
    user = UserFactory(username="olivia")
    MembershipFactory(user=user, workspace=workspace, role=Role.OPERATOR)
    return user


@pytest.fixture
def charlie(other_workspace):
    user = UserFactory(username="charlie")
    MembershipFactory(user=user, workspace=other_workspace, role=Role.ADMIN)
    return user


@pytest.fixture
def agent_version(workspace):
    return AgentVersionFactory(agent__workspace=workspace, agent__name="invoice-extractor")


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def charlie_client(client, charlie):
    client.force_login(charlie)
    return client


@pytest.fixture(autouse=True)
def _forget_model_prices():
    """Ingestion caches the model price table per process; a test's rolled-back prices
    must not price the next test's steps."""
    from executions.ingest.prices import forget_prices

    forget_prices()
    yield
    forget_prices()


def pytest_sessionfinish(session):
    """pytest-django deletes the SQLite test database file but not its WAL sidecars."""
    from django.conf import settings

    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") and name:
        for suffix in ("-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)


def pytest_sessionstart(session):
    """In CI (CI=true) with DATABASE_URL on PostgreSQL, an unreachable server stops the
    run at once with the reason, instead of every database test erroring one by one."""
    import os

    url = os.environ.get("DATABASE_URL", "")
    if os.environ.get("CI", "").lower() != "true" or not url.startswith("postgres"):
        return
    import psycopg

    try:
        # The server, not the named database: the tests run in test_<name>, which
        # pytest-django creates from the "postgres" database.
        psycopg.connect(url, dbname="postgres", connect_timeout=10).close()
    except psycopg.OperationalError as exc:
        pytest.exit(f"CI=true and PostgreSQL at DATABASE_URL cannot be reached: {exc}", 1)
