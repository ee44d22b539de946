"""Server-sent events for one execution's detail page, at /executions/<id>/stream.

Events (all carry `id: <last step sequence sent>`, so a reconnecting EventSource
resumes where it stopped through Last-Event-ID):

- `step`: the HTML of one timeline card, new or changed (static/js/detail.js
  appends it, or replaces the card with the same id);
- `regions`: HTML elements with ids (badge, facts, counters, and on a status
  change the outcome and actions regions) that replace the elements of the same
  ids on the page;
- `done`: the final status. The stream closes after it, and the page stops
  listening, so updates stop when the run ends. An execution that has already
  ended sends its remaining steps and a single `done` (seed 004's behaviour).

How changes are noticed: on PostgreSQL under ASGI, triggers NOTIFY every write of
the execution or its steps and the process's one listener (executions/notify.py)
wakes the streams watching it; a stream then looks (one indexed query for steps
after the cursor, one for the execution row, one for steps it saw running) and
otherwise sleeps without a connection or a thread. The streams of one execution woken
by the same notification share those reads and the rendered cards and regions
(notify.SharedReads, keyed by what each depends on: the stream's cursor, time zone,
viewer), so a step watched by 20 tabs costs one query set and one render, not 20.
With SQLite, under WSGI, or while the listener reconnects, it looks every
RUNBOARD_STREAM_POLL_SECONDS (0.5 s) instead, alone.

Where the server cannot hold a connection open (a sync worker, a buffering
proxy), RUNBOARD_STREAM_MAX_SECONDS=0 makes each request answer with what is new
and close with `retry: 1000`, so EventSource itself polls once a second; the
page's script falls back to the same `?once=1` request with fetch when
EventSource keeps failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import OperationalError
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET

from agents.decorators import with_workspace
from executions import connections, notify
from executions.models import Execution, Step, StepKind, StepStatus

from . import selectors
from .context import card_context, decorate_steps, detail_for, header_context, live_context

logger = logging.getLogger(__name__)

STEP_BATCH = 200
RETRY_MS = 1000
KEEPALIVE_SECONDS = 15


def _poll_seconds() -> float:
    return float(getattr(settings, "RUNBOARD_STREAM_POLL_SECONDS", 0.5))


def _max_seconds() -> float:
    return float(getattr(settings, "RUNBOARD_STREAM_MAX_SECONDS", 300))


def format_event(event: str, data: str, event_id: int | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return "\n".join(lines) + "\n\n"


class ExecutionStream:
    """What one open page has been sent, and what to send it next."""

    def __init__(self, execution: Execution, *, after: int | None, tz, request=None):
        self.execution = execution
        # The actions region shows buttons by the viewer's role and carries CSRF tokens,
        # so it is rendered with the request that opened the stream.
        self.request = request
        self.cursor = after
        self.tz = tz
        self.running: dict[int, str] = {}
        self.fingerprint: tuple | None = None
        self.status = execution.status
        self.stats: dict | None = None
        self.failing_seq: int | None = None
        # Set by _aevents while the listener is connected: what this stream reads is
        # shared with the other streams of the execution woken by the same notification.
        self.reads: notify.SharedReads | None = None
        self.generation: int | None = None
        user = getattr(request, "user", None)
        # The regions render with the request (the actions carry a CSRF token and depend
        # on the viewer's role): shared only between tabs of the same person and session.
        self.viewer = (
            getattr(user, "pk", None),
            request.META.get("CSRF_COOKIE") if request is not None else None,
        )

    def _shared(self, name: tuple, compute):
        if self.reads is None:
            return compute()
        # No connection held while waiting for another stream's read, and each read
        # hands its own back: a crowd of woken streams queues for the pool's
        # connections, it does not sit on them.
        connections.release()
        return self.reads.get(
            str(self.execution.pk), self.generation, name, connections.released(compute)
        )

    # -- one look at the database -------------------------------------------

    def start(self) -> list[str]:
        events = [f"retry: {RETRY_MS}\n\n"]
        if self.cursor is not None:
            self.running = dict(
                Step.objects.filter(
                    execution=self.execution,
                    sequence__lte=self.cursor,
                    status=StepStatus.RUNNING,
                ).values_list("sequence", "status")
            )
        # The page was rendered a moment ago; anything that changed since is sent now.
        events += self.tick(force_regions=True)
        return events

    def tick(self, *, force_regions: bool = False) -> list[str]:
        with timezone.override(self.tz):
            return self._tick(force_regions)

    def _tick(self, force_regions: bool) -> list[str]:
        try:
            # Without the output: a running agent may report a big one, and the
            # regions need only its head.
            execution = self._shared(
                ("execution",),
                lambda: selectors.execution_get_detail(
                    workspace=self.execution.workspace_id, pk=self.execution.pk
                ),
            )
        except Http404:
            execution = None
        if execution is None:  # deleted while watched: nothing more will happen
            self.status = "deleted"
            return [format_event("done", "deleted", self.cursor)]
        self.execution = execution
        events = self._changed_steps() + self._new_steps()
        status_changed = execution.status != self.status
        full = None
        if force_regions or status_changed:
            # Counted afresh from the database (detail_for), so it runs before the
            # fingerprint reads the counters; the first tick has no counters before it.
            full = self._regions(full=True)
        fingerprint = (
            execution.status,
            execution.step_count,
            execution.total_tokens,
            execution.cost_usd,
            execution.credits,
            execution.updated_at,
            execution.completed_at,
            self.stats["total"],
            self.stats["failed"],
            self.stats["running"],
        )
        if full is not None or fingerprint != self.fingerprint:
            events.append(full or self._regions(full=False))
            self.fingerprint = fingerprint
        self.status = execution.status
        if execution.is_terminal:
            # Steps that landed with the final status are sent before the end.
            events += self._new_steps(drain=True)
            events.append(format_event("done", execution.status, self.cursor))
        return events

    def _render_cards(self, steps: list[Step], *, new: bool) -> list[str]:
        key = (
            "cards",
            str(self.tz),
            self.failing_seq,
            new,
            None if new else self.cursor,
            tuple(step.pk for step in steps),
        )
        return self._shared(key, lambda: self._render_cards_now(steps, new=new))

    def _render_cards_now(self, steps: list[Step], *, new: bool) -> list[str]:
        # The steps may be shared with other streams: decorated copies, never theirs.
        steps = [copy.copy(step) for step in steps]
        decorate_steps(steps, self.execution)
        context = card_context(self.execution, selected=None, failing=self.failing_seq)
        events = []
        for step in steps:
            html = render_to_string("executions/detail/timeline.html#card", {**context, "s": step})
            # A new card moves the cursor to itself; a changed older card must not move it back.
            events.append(format_event("step", html, step.sequence if new else self.cursor))
        return events

    def _new_steps(self, *, drain: bool = False) -> list[str]:
        events = []
        while True:
            page = self._shared(
                ("page", self.cursor),
                lambda: selectors.step_page(
                    execution=self.execution, after=self.cursor, limit=STEP_BATCH
                ),
            )
            if not page.steps:
                break
            for step in page.steps:
                if step.status == StepStatus.RUNNING:
                    self.running[step.sequence] = step.status
                if self.stats is None:  # counted afresh by the regions of this tick
                    continue
                self.stats["total"] += 1
                self.stats["kinds"][step.kind] = self.stats["kinds"].get(step.kind, 0) + 1
                if step.status == StepStatus.FAILED:
                    self.stats["failed"] += 1
                elif step.status == StepStatus.RUNNING:
                    self.stats["running"] += 1
            if self.stats is not None:
                self.stats["actions"] = self.stats["kinds"].get(StepKind.ACTION, 0)
            self.cursor = page.steps[-1].sequence
            events += self._render_cards(page.steps, new=True)
            if not drain or page.next_after is None:
                break
        return events

    def _changed_steps(self) -> list[str]:
        if not self.running:
            return []
        done = self._shared(
            ("done", frozenset(self.running)),
            lambda: dict(
                Step.objects.filter(execution=self.execution, sequence__in=list(self.running))
                .exclude(status=StepStatus.RUNNING)
                .values_list("sequence", "status")
            ),
        )
        if not done:
            return []
        for sequence, status in done.items():
            del self.running[sequence]
            if self.stats is not None:
                self.stats["running"] -= 1
                if status == StepStatus.FAILED:
                    self.stats["failed"] += 1
        steps = self._shared(
            ("by_sequence", tuple(sorted(done))),
            lambda: selectors.steps_by_sequence(execution=self.execution, sequences=done),
        )
        return self._render_cards(steps, new=False)

    def _regions(self, *, full: bool) -> str:
        if full:
            detail = self._shared(("detail",), lambda: detail_for(self.execution))
            # This stream counts on from these (_new_steps): its own copy.
            self.stats = copy.deepcopy(detail.stats)
            self.failing_seq = detail.failing.sequence if detail.failing else None
            key = ("regions", True, str(self.tz), self.viewer, self.cursor)
            return self._shared(key, lambda: self._render_regions(detail))
        stats = tuple(
            (name, tuple(sorted(value.items())) if isinstance(value, dict) else value)
            for name, value in sorted(self.stats.items())
        )
        key = ("regions", False, str(self.tz), self.viewer, self.cursor, stats)
        return self._shared(key, lambda: self._render_regions(None))

    def _render_regions(self, detail) -> str:
        execution = self.execution
        context = {
            "execution": execution,
            "stats": self.stats,
            "detail_url": execution.get_absolute_url(),
            **header_context(execution),
        }
        names = [
            "header.html#badge",
            "header.html#facts",
            "timeline.html#counters",
            "overview.html#tabcount",
        ]
        if detail is not None:
            context.update(live_context(detail))
            names += ["header.html#actions", "outcome.html"]
        html = "".join(
            render_to_string(f"executions/detail/{name}", context, request=self.request)
            for name in names
        )
        return format_event("regions", html, self.cursor)

    @property
    def finished(self) -> bool:
        return self.status == "deleted" or self.execution.is_terminal


def _events(stream: ExecutionStream, *, once: bool) -> Iterator[str]:
    yield from stream.start()
    if stream.finished or once or _max_seconds() <= 0:
        return
    began = last_sent = time.monotonic()
    while time.monotonic() - began < _max_seconds():
        connections.release()  # no connection held while waiting
        time.sleep(_poll_seconds())
        events = stream.tick()
        if events:
            last_sent = time.monotonic()
            yield from events
        elif time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            # A comment line: keeps proxies from timing out, and finds closed tabs.
            last_sent = time.monotonic()
            yield ": keepalive\n\n"
        if stream.finished:
            return
    # Lifetime reached: the client reconnects with Last-Event-ID and carries on.


async def _aevents(stream: ExecutionStream, *, once: bool) -> AsyncIterator[str]:
    # Under ASGI an async iterator keeps the event loop free between ticks; the
    # database work of each tick runs in a worker thread. On PostgreSQL the stream
    # sleeps until the process's listener hears its execution change (executions/
    # notify.py): an idle stream runs no query, holds no connection and no thread.
    live = notify.enabled() and not once and _max_seconds() > 0
    key = str(stream.execution.pk)
    hub = notify.hub() if live else None
    # Subscribed before the first look, so a change right after it is not missed.
    subscription = hub.subscribe(key) if hub is not None else None
    if hub is not None:
        stream.reads = hub.reads

    def look(func):
        # SQLite (its test databases live in one thread's transaction) and the
        # one-shot answers keep Django's own per-request thread.
        return sync_to_async(connections.released(func))()

    try:
        if hub is not None and await notify.free_request_thread():
            look = notify.run
        async with contextlib.aclosing(
            _alooks(stream, look, hub, subscription, key, once=once)
        ) as looks:
            async for event in looks:
                yield event
    except OperationalError as exc:
        # The pool stayed empty past its wait, or the database went away: this stream
        # ends, and EventSource reconnects (after `retry`) from the last event id it
        # got, so nothing is skipped; a failed look sent nothing.
        logger.warning("live stream of %s ended: %s", key, exc)
    finally:
        if subscription is not None:
            subscription.close()


async def _alooks(stream, look, hub, subscription, key, *, once) -> AsyncIterator[str]:
    """The stream's looks: the first one, then one per notification (or poll)."""
    if hub is not None:
        stream.generation = hub.generation(key)
    for event in await look(stream.start):
        yield event
    if stream.finished or once or _max_seconds() <= 0:
        return
    began = last_sent = time.monotonic()
    while time.monotonic() - began < _max_seconds():
        if subscription is not None and subscription.hub.connected:
            if not await subscription.wait(KEEPALIVE_SECONDS):
                last_sent = time.monotonic()
                yield ": keepalive\n\n"
                continue
        else:
            # SQLite, or the listener is (re)connecting: look every poll interval.
            await asyncio.sleep(_poll_seconds())
        if hub is not None:
            stream.generation = hub.generation(key)
        events = await look(stream.tick)
        if events:
            last_sent = time.monotonic()
            for event in events:
                yield event
        elif time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            last_sent = time.monotonic()
            yield ": keepalive\n\n"
        if stream.finished:
            return


def _cursor(request) -> int | None:
    for raw in (request.headers.get("Last-Event-ID", ""), request.GET.get("after", "")):
        raw = raw.strip()
        if raw.isdigit():
            return int(raw)
    return None


@require_GET
@with_workspace
def execution_stream(request, pk):
    execution = selectors.execution_get_detail(workspace=request.workspace, pk=pk)
    limit = connections.max_streams_per_user()
    slot = connections.stream_slot("user", request.user.pk, limit)
    if slot is None:
        response = HttpResponse(
            f"Too many live views open: at most {limit} per person. Close some tabs of "
            "running executions and reload.",
            status=429,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = "10"
        return response
    stream = ExecutionStream(
        execution, after=_cursor(request), tz=timezone.get_current_timezone(), request=request
    )
    once = request.GET.get("once") == "1"
    if isinstance(request, ASGIRequest):
        content = _aevents(stream, once=once)
    else:
        content = _events(stream, once=once)
    response = StreamingHttpResponse(
        connections.held(content, slot), content_type="text/event-stream; charset=utf-8"
    )
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events through as they come
    return response
