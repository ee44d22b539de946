"""Database connections held by long-lived responses (server-sent event streams and
long polls) and how many such responses may be open: owns `released`, `release` and
the per-user / per-API-key stream caps.

Why: Django keeps one connection per thread and hands it back only when the request
ends. A stream lasts minutes and, under ASGI, polls from a thread of its own, so each
open stream used to hold a connection for its whole life; a hundred streams exhausted
PostgreSQL's max_connections and every other request failed. Now each poll gives its
connection back to the pool (config/settings.py) the moment it is done, and the number
of streams one user or one key may hold open at once is capped (429 beyond it).

The caps are counted per web process (a lock and a dict): N processes allow N times the
cap, which docs/scaling.md's connection budget accounts for.

Imports only Django.
"""

import threading
from collections import Counter
from functools import wraps

from django.conf import settings
from django.db import connection


def release() -> None:
    """Hand this thread's connection back (to the pool, or closed without one).

    Inside a transaction (a test's, or a caller's atomic block) the connection is
    still needed, and closing it would break the transaction: it is left alone."""
    if not connection.in_atomic_block:
        connection.close()


def released(func):
    """`func` (one poll's database work), then its connection handed back."""

    @wraps(func)
    def inner(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        finally:
            release()

    return inner


# --- stream caps ---------------------------------------------------------------------


def max_streams_per_user() -> int:
    return int(getattr(settings, "MAX_STREAMS_PER_USER", 10))


def max_streams_per_key() -> int:
    return int(getattr(settings, "MAX_STREAMS_PER_KEY", 20))


_lock = threading.Lock()
_open: Counter = Counter()


class Slot:
    """One open stream's place under its cap; release() is idempotent."""

    def __init__(self, holder: tuple):
        self.holder = holder
        self._released = False

    def release(self) -> None:
        with _lock:
            if not self._released:
                self._released = True
                _open[self.holder] -= 1
                if _open[self.holder] <= 0:
                    del _open[self.holder]


def stream_slot(kind: str, holder_id, limit: int) -> Slot | None:
    """A slot for one more stream of this user or key, or None at the cap."""
    holder = (kind, holder_id)
    with _lock:
        if _open[holder] >= limit:
            return None
        _open[holder] += 1
    return Slot(holder)


def open_streams(kind: str, holder_id) -> int:
    with _lock:
        return _open.get((kind, holder_id), 0)


class _SyncHeld:
    def __init__(self, iterator, slot: Slot):
        self._iterator = iterator
        self._slot = slot

    def __iter__(self):
        try:
            yield from self._iterator
        finally:
            self._slot.release()

    def close(self):
        # StreamingHttpResponse calls this when the response is done or the client left,
        # including for a stream that never started (then the generator's own
        # `finally` never runs).
        self._slot.release()
        if hasattr(self._iterator, "close"):
            self._iterator.close()


class _AsyncHeld:
    def __init__(self, iterator, slot: Slot):
        self._iterator = iterator
        self._slot = slot

    async def __aiter__(self):
        try:
            async for chunk in self._iterator:
                yield chunk
        finally:
            self._slot.release()

    def close(self):
        self._slot.release()


def held(iterator, slot: Slot):
    """The stream's content, giving its slot back when it ends or is closed.

    Called by the view as it returns: the request's connection (its session, user and
    scope were read) goes back to the pool now, not when the stream first runs. Under
    load that gap lasted seconds, and a thousand streams opening at once left every
    other request waiting for the pool (503s)."""
    release()
    if hasattr(iterator, "__aiter__"):
        return _AsyncHeld(iterator, slot)
    return _SyncHeld(iterator, slot)
