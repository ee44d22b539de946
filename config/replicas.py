"""Read replicas: which database answers a query.

Owns the database router and the middleware that together send the dashboard's reads
(table, detail, overview, exports, agents, feedback pages) to a streaming replica
named by DATABASE_REPLICA_URL, and everything else to the primary ("default"):
writes, the API and OTLP (a runtime reads what it just wrote), live streams,
logins, the admin, reads inside a transaction, and every request from a client that
wrote in the last REPLICA_PIN_SECONDS (the `rb_primary` cookie), so nobody misses
their own write because the replica has not replayed it yet.

A replica lagging more than REPLICA_MAX_LAG_SECONDS, or not answering, is skipped;
its lag is asked at most every REPLICA_CHECK_SECONDS per process. With no replica
configured none of this is installed (settings.py adds it only then).
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.db import DatabaseError, connections
from django.urls import Resolver404, resolve

logger = logging.getLogger(__name__)

PIN_COOKIE = "rb_primary"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# The dashboard's pages that only read and tolerate a few seconds of lag. A whitelist:
# a new URL reads the primary until someone decides it may read a replica.
REPLICA_NAMESPACES = frozenset({"executions", "agents", "feedback"})
REPLICA_VIEWS = frozenset({"home", "overview", "overview_csv", "api_keys"})
# Inside those namespaces, the views that must see the primary: a live stream tells
# the browser the moment a step lands, so it reads where the step was written.
PRIMARY_VIEWS = frozenset({"executions:stream"})

# Set for the length of one request that may read a replica; the router reads it.
_reading_replica: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "runboard_reading_replica", default=False
)


def replica_aliases() -> list[str]:
    return [alias for alias in settings.DATABASES if alias.startswith("replica")]


class LagCheck:
    """Per process: is each replica close enough behind the primary to read from?"""

    # What a standby says about itself: no lag while it has replayed all it received,
    # else the age of the last transaction it replayed. NULL on a primary (not a standby).
    LAG_SQL = (
        "SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL "
        "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
        "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 1e9) END"
    )

    RETRY_DOWN = 10.0

    def __init__(self):
        self._lock = threading.Lock()
        self._checked: dict[str, tuple[float, str]] = {}

    def forget(self) -> None:
        with self._lock:
            self._checked.clear()

    def healthy(self, alias: str) -> bool:
        now = time.monotonic()
        with self._lock:
            checked = self._checked.get(alias)
        # A replica that failed is left alone longer: asking one that is down costs a
        # connection timeout, paid by the request that asks.
        wait = (
            self.RETRY_DOWN if checked and checked[1] == "down" else settings.REPLICA_CHECK_SECONDS
        )
        if checked and now - checked[0] < wait:
            return checked[1] == "ok"
        state = self._ask(alias)
        with self._lock:
            self._checked[alias] = (now, state)
        return state == "ok"

    def lag_seconds(self, alias: str) -> float | None:
        """The replica's lag, or None when it is not a standby (a mirror in tests, or
        SQLite): those have nothing to lag behind."""
        connection = connections[alias]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(self.LAG_SQL)
            value = cursor.fetchone()[0]
        return None if value is None else float(value)

    def _ask(self, alias: str) -> str:
        try:
            lag = self.lag_seconds(alias)
        except DatabaseError as exc:
            logger.warning("replica %s skipped: it does not answer (%s)", alias, exc)
            # A broken connection must not be reused for the next check.
            connections[alias].close()
            return "down"
        if lag is not None and lag > settings.REPLICA_MAX_LAG_SECONDS:
            logger.warning(
                "replica %s skipped: %.1f s behind (limit %s s)",
                alias,
                lag,
                settings.REPLICA_MAX_LAG_SECONDS,
            )
            return "lagging"
        return "ok"


lag_check = LagCheck()


class ReplicaRouter:
    """Reads go to a healthy replica only while a request marked them replica-safe."""

    def db_for_read(self, model, **hints):
        if not _reading_replica.get():
            return "default"
        # Inside a transaction on the primary, read what the transaction wrote.
        if connections["default"].in_atomic_block:
            return "default"
        aliases = replica_aliases()
        random.shuffle(aliases)
        for alias in aliases:
            if lag_check.healthy(alias):
                return alias
        return "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        # Replicas hold the primary's rows: an object read from one relates to any.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # A standby replays the primary's schema; it is never migrated itself.
        return db == "default"


def replica_safe(request) -> bool:
    """May this request's reads be served by a replica?"""
    if request.method not in SAFE_METHODS or PIN_COOKIE in request.COOKIES:
        return False
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    name = match.view_name
    if name in PRIMARY_VIEWS:
        return False
    return name in REPLICA_VIEWS or (match.namespace in REPLICA_NAMESPACES)


class ReplicaMiddleware:
    """Marks replica-safe requests for the router, and pins a client that just wrote
    (any non-GET request) to the primary for REPLICA_PIN_SECONDS."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        token = _reading_replica.set(replica_safe(request))
        try:
            response = self.get_response(request)
        finally:
            _reading_replica.reset(token)
        return self._pin(request, response)

    async def __acall__(self, request):
        token = _reading_replica.set(replica_safe(request))
        try:
            response = await self.get_response(request)
        finally:
            _reading_replica.reset(token)
        return self._pin(request, response)

    def _pin(self, request, response):
        if request.method not in SAFE_METHODS:
            response.set_cookie(
                PIN_COOKIE,
                "1",
                max_age=settings.REPLICA_PIN_SECONDS,
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        return response
