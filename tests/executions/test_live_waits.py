"""Live updates that wait on the process's LISTEN instead of the database (issue 19):
streams of one run share each look, an open stream holds no thread and no connection,
and the table's live region is a long poll woken by its workspace's notifications.
SQLite (and WSGI) keep polling."""

import asyncio
import re
import threading

import pytest
from asgiref.sync import SyncToAsync, ThreadSensitiveContext, sync_to_async
from django.db import connection
from django.db.backends import utils as db_utils
from django.test import AsyncClient
from django.utils import timezone

from executions import connections as stream_connections
from executions import notify
from executions.detail import stream as detail_stream
from executions.models import Status, StepStatus
from executions.table import views as table_views

from ..factories import ExecutionFactory, StepFactory
from .detail_html import parse
from .test_notify import run_async


@pytest.fixture
def pg():
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite polls")


@pytest.fixture
def queries(monkeypatch):
    """Every statement any thread of this process runs (Django's per-connection
    capture sees only the calling thread's)."""
    seen: list[str] = []
    lock = threading.Lock()
    real = db_utils.CursorWrapper._execute

    def counted(self, sql, *args, **kwargs):
        with lock:
            seen.append(sql)
        return real(self, sql, *args, **kwargs)

    monkeypatch.setattr(db_utils.CursorWrapper, "_execute", counted)
    return seen


def _stream(run, alice, rf):
    request = rf.get("/")
    request.user = alice
    request.META["CSRF_COOKIE"] = "the-same-session"
    return detail_stream.ExecutionStream(run, after=None, tz=None, request=request)


async def _next_step(events, name: str) -> str:
    while True:
        event = await asyncio.wait_for(anext(events), 20)
        if event.startswith("event: step") and name in event:
            return event


@pytest.mark.django_db(transaction=True)
def test_streams_of_one_run_share_each_look(pg, agent_version, alice, rf, queries):
    run = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)

    async def scenario():
        hub = notify.hub()
        assert await hub.ready()

        async def one_step(count: int, name: str) -> int:
            streams = [
                detail_stream._aevents(_stream(run, alice, rf), once=False) for _ in range(count)
            ]
            for events in streams:
                assert (await anext(events)).startswith("retry:")
            queries.clear()
            await in_thread(StepFactory, execution=run, name=name, status=StepStatus.COMPLETED)
            heard = await asyncio.gather(*[_next_step(events, name) for events in streams])
            assert all(name in event for event in heard)
            looked = len([sql for sql in queries if "INSERT" not in sql])
            for events in streams:
                await events.aclose()
            return looked

        alone = await one_step(1, "heard-alone")
        together = await one_step(8, "heard-by-eight")
        # Eight watching tabs cost what one does (the same statements, run once; the
        # second step's card reads one more), not eight times as many.
        assert 0 < together < 2 * alone, (alone, together)
        assert hub.subscribers == {}
        hub._task.cancel()

    run_async(scenario)


@pytest.mark.django_db(transaction=True)
def test_an_open_stream_holds_no_thread_and_no_connection(pg, agent_version, alice, rf):
    run = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    dbname = connection.settings_dict["NAME"]

    def backends() -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT application_name, state, left(query, 120) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                [dbname],
            )
            return cursor.fetchall()

    connection.close()  # this thread's, so that every connection in use is counted
    # Connections other threads of this process still hold (an earlier test's server
    # thread, say) are theirs: the stream must add none to them.
    held_before = in_use(connection.pool)

    async def scenario():
        # Django's ASGI handler runs each request in such a context, with a thread
        # of its own made on the first sync call.
        async with ThreadSensitiveContext():
            context = SyncToAsync.thread_sensitive_context.get()
            request_thread = await sync_to_async(threading.current_thread)()
            assert context in SyncToAsync.context_to_thread_executor
            events = detail_stream._aevents(_stream(run, alice, rf), once=False)
            assert (await anext(events)).startswith("retry:")
            assert context not in SyncToAsync.context_to_thread_executor
            for _ in range(50):
                if not request_thread.is_alive():
                    break
                await asyncio.sleep(0.1)
            assert not request_thread.is_alive()
            # Idle: the listener's connection, and the pool's idle ones, none in use
            # (a connection handed back reaches the pool's idle ones a moment later).
            pool = connection.pool
            for _ in range(50):
                stats = pool.get_stats()
                if in_use(pool) == held_before:
                    break
                await asyncio.sleep(0.1)
            assert in_use(pool) == held_before, (
                stats,
                await in_thread(backends),
            )
            seen = await in_thread(backends)
            assert ("runboard-listener", "idle") in [row[:2] for row in seen]
            others = [row for row in seen if row[0] != "runboard-listener"]
            # Only the pool's idle connections (one of them ran that very query).
            assert len(others) <= stats["pool_available"] + held_before
            assert all(state == "idle" for _, state, _ in others)
            await in_thread(StepFactory, execution=run, name="later")
            assert "later" in await _next_step(events, "later")
            await events.aclose()
        notify.hub()._task.cancel()

    run_async(scenario)


HTMX = {"HX-Request": "true"}


def in_use(pool) -> int:
    """The pool's connections checked out now."""
    stats = pool.get_stats()
    return stats["pool_size"] - stats["pool_available"]


def in_thread(func, *args, **kwargs):
    """`func` on a thread of the loop's pool, its connection handed back after (a
    thread that ends holding one would keep it out of the pool)."""
    return sync_to_async(
        stream_connections.released(lambda: func(*args, **kwargs)), thread_sensitive=False
    )()


def _live_url(body: bytes) -> str:
    found = re.search(r'id="live"[^>]*hx-get="([^"]+)"', body.decode())
    return found[1].replace("&amp;", "&")


@pytest.mark.django_db(transaction=True)
def test_the_table_live_region_waits_for_its_workspace(
    pg, agent_version, alice, monkeypatch, queries
):
    monkeypatch.setattr(table_views, "LIVE_WAIT_SECONDS", 8)
    running = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    connection.close()  # this thread's, so that every connection in use is counted
    held_before = in_use(connection.pool)

    async def scenario():
        client = AsyncClient()
        await client.aforce_login(alice)
        page = await client.get("/executions/")
        assert page.status_code == 200, page
        assert 'hx-trigger="every 2s"' in page.content.decode()
        url = _live_url(page.content)
        assert "live=" not in url
        # The page's first live request answers at once, with the token it has seen.
        first = await client.get(url, headers=HTMX)
        assert first.status_code == 200, (first, first.content[:300])
        url = _live_url(first.content)
        assert re.search(r"live=\w+\.\d+", url)

        waiting = asyncio.ensure_future(client.get(url, headers=HTMX))
        await asyncio.sleep(1.0)  # its session, user and workspace read: then asleep
        queries.clear()
        await asyncio.sleep(1.5)
        assert not waiting.done()
        assert queries == []  # not one statement while it waits
        # and no connection taken from the pool (its thread gave it back)
        assert in_use(connection.pool) == held_before, connection.pool.get_stats()
        await in_thread(ExecutionFactory, agent_version=agent_version, created_at=timezone.now())
        answer = await asyncio.wait_for(waiting, 5)
        assert "1 new execution" in answer.content.decode()

        # A change while no request was waiting: the next one answers at once.
        url = _live_url(answer.content)
        await in_thread(type(running).objects.filter(pk=running.pk).update, credits=3)
        await asyncio.sleep(0.5)  # the notification arrives
        quick = await asyncio.wait_for(client.get(url, headers=HTMX), 3)
        assert quick.status_code == 200
        notify.hub()._task.cancel()
        # aforce_login wrote the session from asgiref's one sync thread (there is no
        # request around it): that thread's connection goes back too.
        await sync_to_async(stream_connections.release)()

    run_async(scenario)


@pytest.mark.django_db
def test_sqlite_and_wsgi_keep_polling_the_table(alice_client, agent_version):
    """Under WSGI (the test client; runserver, make run) and on SQLite the region polls
    every 3 s and each request answers at once."""
    ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    page = alice_client.get("/executions/")
    live = parse(page.content).one("div", id="live")
    assert live.attrs["hx-trigger"] == "every 3s"
    assert live.attrs["hx-sync"] == "this:drop"
    assert "{#" not in page.content.decode() and "{% comment" not in page.content.decode()
    answer = alice_client.get(live.attrs["hx-get"], HTTP_HX_REQUEST="true")
    assert answer.status_code == 200
    assert "live=" not in _live_url(answer.content)
