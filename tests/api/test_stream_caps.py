"""Streams hold no database connection between polls and are capped per API key and per
person (issue 11, part 3). The connection figures under load are bench/bench_connections.py's.
"""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection
from django.test import AsyncClient

from executions import connections
from executions.models import Status, StepKind
from tests.factories import ExecutionFactory, StepFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_open_streams():
    # The counts live in the process: a failed test must not leave places taken.
    connections._open.clear()
    yield
    connections._open.clear()


def gone(response) -> None:
    """The client reads the first frame, then goes away: Django closes the response."""
    # The test client wraps the content in a generator that closes the response when
    # it is closed; streaming_content would hand out a fresh map around it each time.
    content = response._iterator
    next(content)
    content.close()


@pytest.fixture
def running(agent_version):
    return ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)


def test_the_key_cap_answers_429_and_a_closed_stream_frees_its_place(api, running, settings):
    settings.MAX_STREAMS_PER_KEY = 2
    url = f"/api/v1/executions/{running.pk}/stream"
    first, second = api.get(url), api.get(url)
    assert first.status_code == second.status_code == 200
    refused = api.get(url)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "10"
    assert "at most 2 per API key" in refused.json()["detail"]
    key = first.wsgi_request.api_key.pk
    assert connections.open_streams("key", key) == 2
    gone(first)
    assert connections.open_streams("key", key) == 1
    third = api.get(url)
    assert third.status_code == 200
    gone(second)
    gone(third)
    assert connections.open_streams("key", key) == 0


def test_the_cap_is_per_key(api, other_api, running, other_workspace, settings):
    settings.MAX_STREAMS_PER_KEY = 1
    held = api.get(f"/api/v1/executions/{running.pk}/stream")
    theirs = ExecutionFactory(agent_version__agent__workspace=other_workspace)
    other = other_api.get(f"/api/v1/executions/{theirs.pk}/stream")
    assert held.status_code == 200 and other.status_code == 200
    gone(held)
    gone(other)


def test_the_person_cap_answers_429_on_the_live_page_stream(alice_client, running, settings):
    settings.MAX_STREAMS_PER_USER = 1
    url = f"/executions/{running.pk}/stream"
    held = alice_client.get(url)
    assert held.status_code == 200
    refused = alice_client.get(url)
    assert refused.status_code == 429 and refused["Retry-After"] == "10"
    assert "at most 1 per person" in refused.content.decode()
    gone(held)
    again = alice_client.get(url)
    assert again.status_code == 200
    gone(again)


def test_a_stream_read_to_its_end_frees_its_place(api, agent_version, settings):
    settings.MAX_STREAMS_PER_KEY = 1
    ended = ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
    for _ in range(3):
        response = api.get(f"/api/v1/executions/{ended.pk}/stream")
        assert response.status_code == 200
        b"".join(response.streaming_content)


@pytest.mark.django_db(transaction=True)
def test_released_hands_the_connection_back_after_a_poll(agent_version):
    ExecutionFactory(agent_version=agent_version)
    assert connection.connection is None or connection.is_usable()
    connections.released(lambda: list(type(agent_version).objects.all()))()
    assert connection.connection is None


def test_inside_a_transaction_the_connection_is_kept(agent_version):
    connections.release()
    assert connection.connection is not None
    assert type(agent_version).objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_under_asgi_each_poll_gives_its_connection_back(
    workspace, raw_key, agent_version, settings
):
    """The poll runs in a thread; afterwards that thread holds no connection, which is
    what keeps a hundred open streams from holding a hundred connections."""
    settings.RUNBOARD_API_POLL_SECONDS = 0.05
    running = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    StepFactory(execution=running, kind=StepKind.THOUGHT, output="first")
    seen = []

    def connection_held() -> bool:
        return connection.connection is not None

    async def listen():
        response = await AsyncClient().get(
            f"/api/v1/executions/{running.pk}/stream",
            headers={"Authorization": f"Bearer {raw_key}"},
        )
        content = aiter(response.streaming_content)
        await anext(content)
        # The next sync_to_async call runs in the same request thread as the polls did.
        seen.append(await sync_to_async(connection_held)())
        await content.aclose()

    async_to_sync(listen)()
    assert seen == [False]
