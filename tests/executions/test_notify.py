"""LISTEN/NOTIFY live updates: the triggers notify in the writing transaction, the
process's listener fans out to the streams watching, and an idle stream runs no tick
(so no query) until told."""

import asyncio
import threading

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, transaction

from executions import notify
from executions.detail import stream as detail_stream
from executions.models import Execution, Status

from ..factories import ExecutionFactory, StepFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite streams poll")


def run_async(scenario) -> None:
    """asyncio.run in a thread of its own: a browser test may have left a loop running
    in this one (Playwright's sync API)."""
    failure = []

    def target():
        try:
            asyncio.run(scenario())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the scenario did not finish in 60 s"
    if failure:
        raise failure[0]


def received(listener) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=1, stop_after=10)]


def test_writes_notify_at_commit_and_rolled_back_ones_never(agent_version):
    with psycopg.connect(notify.conninfo(), autocommit=True) as listener:
        listener.execute(f"LISTEN {notify.CHANNEL}")
        run = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
        StepFactory.create_batch(3, execution=run)
        ws = agent_version.agent.workspace_id
        payloads = received(listener)
        assert f"{ws}:{run.pk}:created" in payloads
        # Three steps in three transactions: three notifications, no workspace id.
        assert payloads.count(f":{run.pk}:step") == 3

        with transaction.atomic():
            Execution.objects.filter(pk=run.pk).update(status=Status.COMPLETED)
            StepFactory.create_batch(5, execution=run)
        # One transaction: identical payloads are delivered once.
        assert sorted(received(listener)) == sorted([f":{run.pk}:step", f"{ws}:{run.pk}:changed"])

        with pytest.raises(RuntimeError), transaction.atomic():
            Execution.objects.filter(pk=run.pk).update(error="never")
            raise RuntimeError
        assert received(listener) == []


def test_the_hub_wakes_only_the_streams_of_the_changed_run(agent_version):
    watched = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    other = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    ws = agent_version.agent.workspace_id

    async def scenario():
        hub = notify.Hub()
        mine = [hub.subscribe(str(watched.pk)) for _ in range(3)]
        theirs = hub.subscribe(str(other.pk))
        workspace = hub.subscribe(f"ws:{ws}")
        assert await hub.ready()
        for subscription in [*mine, theirs, workspace]:
            subscription.event.clear()  # the wake-up every stream gets on connecting
        await sync_to_async(StepFactory, thread_sensitive=False)(execution=watched)
        assert all([await s.wait(10) for s in mine])
        assert theirs.event.is_set() is False
        # A step's notification names no workspace; the run's own change does.
        assert workspace.event.is_set() is False
        await sync_to_async(Execution.objects.filter(pk=watched.pk).update, thread_sensitive=False)(
            credits=2
        )
        assert await workspace.wait(10)
        for subscription in [*mine, theirs, workspace]:
            subscription.close()
        assert hub.subscribers == {}
        hub._task.cancel()

    run_async(scenario)


def test_an_idle_stream_does_not_look_until_told(agent_version, alice, monkeypatch, rf):
    monkeypatch.setattr(detail_stream, "KEEPALIVE_SECONDS", 0.2)
    run = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    request = rf.get("/")
    request.user = alice
    watcher = detail_stream.ExecutionStream(run, after=None, tz=None, request=request)
    ticks = []
    real_tick = watcher.tick

    def counted_tick(**kwargs):
        ticks.append(1)
        return real_tick(**kwargs)

    watcher.tick = counted_tick

    async def scenario():
        events = detail_stream._aevents(watcher, once=False)
        first = await anext(events)
        assert first.startswith("retry:")
        assert await notify.hub().ready()
        # Drain what start() sent and the wake-up of the listener connecting.
        seen = []
        while not seen or seen[-1] != ": keepalive\n\n":
            seen.append(await asyncio.wait_for(anext(events), 10))
        ticks.clear()
        # Idle: keepalives only, and no look at the database.
        for _ in range(3):
            assert await asyncio.wait_for(anext(events), 10) == ": keepalive\n\n"
        assert ticks == []
        await sync_to_async(StepFactory, thread_sensitive=False)(execution=run, name="heard-step")
        event = await asyncio.wait_for(anext(events), 10)
        assert event.startswith("event: step") and "heard-step" in event
        assert len(ticks) == 1
        await events.aclose()
        assert notify.hub().subscribers == {}
        notify.hub()._task.cancel()

    run_async(scenario)
