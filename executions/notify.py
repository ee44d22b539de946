"""Live updates without polling: one PostgreSQL LISTEN per web process (per event loop)
fanned out to every open stream of that process.

Owns the listener and the subscriptions. The triggers of migration 0021 NOTIFY
channel `runboard` with "<workspace id>:<execution id>:<what>" in the writing
transaction. A stream subscribes to its execution's id and sleeps on an asyncio.Event
until told (or until its keepalive), holding no database connection meanwhile; each
notification sets the events of the streams watching that execution (and of the
workspace's watchers, for views over many runs).

Only PostgreSQL under ASGI has it (RUNBOARD_NOTIFY, on by default there). With SQLite,
under WSGI, or while the listener is reconnecting, `Hub.connected` is false and streams
poll as before, so a lost listener costs latency, never a missed update.

What a woken stream costs (bench/bench_streams.py measured 580 ms p95 at 1,000 streams
before this): every stream of a run used to look at the database on its own, from a
thread of its own (Django's per-request executor, alive as long as the response), so
one step meant a query set, a template render and a pool checkout per watching stream,
and 1,000 open streams were 1,000 threads. Now:
- `free_request_thread()` hands the request's thread (and its connection) back once the
  response starts streaming: an open stream is a coroutine, not a thread;
- `run()` does a stream's database work on a small shared pool of threads
  (RUNBOARD_STREAM_THREADS, 4), so a burst of woken streams queues for a few threads
  and a few connections instead of contending for all of them;
- `SharedReads`: each notification moves its execution's generation on, and what the
  streams of that execution read and render for one generation is done once and shared
  (one query per notify per execution, not per stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.conf import settings
from django.db import connections

from executions import connections as stream_connections

logger = logging.getLogger(__name__)

CHANNEL = "runboard"
RECONNECT_SECONDS = 1.0


def enabled() -> bool:
    return connections["default"].vendor == "postgresql" and bool(
        getattr(settings, "RUNBOARD_NOTIFY", True)
    )


def conninfo() -> str:
    """The primary's connection string, for a connection of the listener's own (outside
    Django's pool: it lives as long as the process)."""
    from psycopg.conninfo import make_conninfo

    db = settings.DATABASES["default"]
    params = {
        "dbname": db.get("NAME"),
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "application_name": "runboard-listener",
    }
    for key, value in (db.get("OPTIONS") or {}).items():
        if isinstance(value, str | int) and key not in {"isolation_level", "server_side_binding"}:
            params[key] = value
    return make_conninfo(**{k: v for k, v in params.items() if v is not None})


class SharedReads:
    """Reads and renders shared by the streams of one execution for one generation.

    A generation is a number the hub moves on at every notification of the execution
    (and at every listener (re)connect). Everything read after generation g was set is
    at least as new as the write that caused it, so streams woken by g may all use the
    first one's result; a write after that is notification g+1, which wakes them again.
    Single flight: a stream asking for what another is computing waits for it, it does
    not compute it again. Thread-safe (the streams' threads call it); results are shared
    objects, read only by their users."""

    def __init__(self):
        self._lock = threading.Lock()
        self._by_execution: dict[str, tuple[int, dict[Hashable, Future]]] = {}
        self.computed = 0
        self.shared = 0

    def get(self, execution: str, generation: int | None, name: Hashable, compute: Callable):
        if generation is None:
            return compute()
        with self._lock:
            current = self._by_execution.get(execution)
            if current is None or current[0] < generation:
                current = self._by_execution[execution] = (generation, {})
            if current[0] != generation:
                slot, owner = None, True  # a stream behind the newest generation reads alone
            else:
                slot = current[1].get(name)
                owner = slot is None
                if owner:
                    slot = current[1][name] = Future()
                    self.computed += 1
                else:
                    self.shared += 1
        if not owner:
            return slot.result()
        try:
            value = compute()
        except BaseException as exc:
            if slot is not None:
                slot.set_exception(exc)
            raise
        if slot is not None:
            slot.set_result(value)
        return value

    def forget(self, execution: str) -> None:
        with self._lock:
            self._by_execution.pop(execution, None)


class Subscription:
    def __init__(self, hub: Hub, key: str):
        self.hub, self.key = hub, key
        self.event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """True when told something changed (and ready for the next), False on timeout."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return False
        self.event.clear()
        return True

    def close(self) -> None:
        self.hub._unsubscribe(self)


class Hub:
    """The listener of one event loop and the streams subscribed to it."""

    def __init__(self):
        self.subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self.generations: dict[str, int] = {}
        self.sequence = 0
        self.reads = SharedReads()
        # Names this hub in the tokens of long polls (token()): a token from another
        # process, or from before a restart, never matches.
        self.ident = uuid.uuid4().hex[:12]
        self.connected = False
        self.received = 0
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    def subscribe(self, key: str) -> Subscription:
        """`key`: an execution id, or "ws:<id>" for every run of a workspace."""
        subscription = Subscription(self, str(key))
        if subscription.key not in self.generations:
            self._advance(subscription.key)
        self.subscribers[subscription.key].add(subscription)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen())
        return subscription

    async def ready(self, timeout: float = 5.0) -> bool:
        """Waits (bounded) for the listener to be connected; its state then."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.connected

    def _unsubscribe(self, subscription: Subscription) -> None:
        watchers = self.subscribers.get(subscription.key)
        if watchers is not None:
            watchers.discard(subscription)
            if not watchers:
                del self.subscribers[subscription.key]
                self.reads.forget(subscription.key)
                if not subscription.key.startswith("ws:"):
                    # A workspace's generation outlives its watchers (see dispatch).
                    self.generations.pop(subscription.key, None)

    def _advance(self, key: str) -> None:
        # One counter for all keys: a generation number is never reused, even for a
        # key watched again after its last stream closed.
        self.sequence += 1
        self.generations[key] = self.sequence

    def generation(self, key: str) -> int | None:
        """The key's generation while the listener is connected; None (nothing shared)
        while it is not, when notifications may be missed."""
        if not self.connected:
            return None
        return self.generations.get(str(key))

    def token(self, key: str) -> str:
        """What a long poll of `key` has seen: it waits next time only if nothing
        changed since (same hub, same generation); "" while not connected."""
        generation = self.generation(key)
        return "" if generation is None else f"{self.ident}.{generation}"

    def dispatch(self, payload: str) -> None:
        self.received += 1
        workspace, _, rest = payload.partition(":")
        execution = rest.partition(":")[0]
        for key in (execution, f"ws:{workspace}" if workspace else None):
            watchers = self.subscribers.get(key)
            # A workspace moves on even unwatched: the table's long poll is between two
            # requests most of the time, and its next one must learn it missed a change.
            # (One number per workspace; runs are counted only while watched.)
            if watchers or (key is not None and key.startswith("ws:")):
                self._advance(key)
            for subscription in watchers or ():
                subscription.event.set()

    def _wake_everyone(self) -> None:
        # Connected or lost, every stream looks once: nothing sent meanwhile is missed.
        for key in list(self.generations):
            self._advance(key)
        for watchers in self.subscribers.values():
            for subscription in watchers:
                subscription.event.set()

    async def _listen(self) -> None:
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo(), autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected = True
                    self._ready.set()
                    self._wake_everyone()
                    async for notification in conn.notifies():
                        self.dispatch(notification.payload)
            except asyncio.CancelledError:
                self.connected = False
                raise
            except Exception as exc:
                if self.connected:
                    logger.warning("live updates: the listener lost PostgreSQL (%s)", exc)
                self.connected = False
                self._ready.set()  # callers waiting on ready() learn it is not connected
                self._wake_everyone()
                await asyncio.sleep(RECONNECT_SECONDS)
                self._ready.clear()


_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}


def hub() -> Hub:
    """This event loop's hub (uvicorn runs one loop per worker process)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        for old in [other for other in _hubs if other.is_closed()]:
            del _hubs[old]
        found = _hubs[loop] = Hub()
    return found


# --- where a stream's work runs ------------------------------------------------------

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=int(getattr(settings, "RUNBOARD_STREAM_THREADS", 4)),
                thread_name_prefix="runboard-stream",
            )
        return _executor


async def run(func: Callable[[], Any]) -> Any:
    """`func` (one look of a live stream) on the streams' shared threads, its connection
    handed back to the pool when done."""
    return await sync_to_async(
        stream_connections.released(func), thread_sensitive=False, executor=executor()
    )()


async def free_request_thread() -> bool:
    """Give back the thread Django's ASGI handler keeps for this request; True when the
    stream's looks may then go to the shared threads (run()).

    Django runs a request's sync code (middleware, the view) on an executor of one
    thread made for the request (asgiref's ThreadSensitiveContext), and shuts it down
    only when the response is over: for a stream, minutes. Once the stream has started
    nothing needs that thread any more (its work goes through run()), so its connection
    goes back to the pool and the thread ends now. A later sync call of the same request
    (Django closing the response) gets a new thread, ended by the context as usual.
    Outside a request (scripts) there is no such thread: nothing to do.

    False, and nothing done, when the request's sync code runs on the thread of an
    outer synchronous caller (async_to_sync: Django's test client), whose open
    transaction the shared threads could not see."""
    if getattr(AsyncToSync.executors, "current", None) is not None:
        # A sync caller is blocked on us (Django's test client; or a sync-only
        # middleware calling an async view through async_to_sync, as the table's long
        # poll is): its thread stays, but its connection goes back to the pool.
        await sync_to_async(stream_connections.release)()
        return False
    context = SyncToAsync.thread_sensitive_context.get(None)
    if context is None or context not in SyncToAsync.context_to_thread_executor:
        return True
    await sync_to_async(stream_connections.release)()  # on that thread: its connection
    request_executor = SyncToAsync.context_to_thread_executor.pop(context, None)
    if request_executor is not None:
        request_executor.shutdown(wait=False)
    return True
