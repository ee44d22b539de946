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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from django.conf import settings
from django.db import connections

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
        self.connected = False
        self.received = 0
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    def subscribe(self, key: str) -> Subscription:
        """`key`: an execution id, or "ws:<id>" for every run of a workspace."""
        subscription = Subscription(self, str(key))
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

    def dispatch(self, payload: str) -> None:
        self.received += 1
        workspace, _, rest = payload.partition(":")
        execution = rest.partition(":")[0]
        for key in (execution, f"ws:{workspace}" if workspace else None):
            for subscription in self.subscribers.get(key, ()):
                subscription.event.set()

    def _wake_everyone(self) -> None:
        # Connected or lost, every stream looks once: nothing sent meanwhile is missed.
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
