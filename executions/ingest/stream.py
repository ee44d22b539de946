"""GET /api/v1/executions/{id}/stream: an execution's steps as seed 004's server-sent
events, for runtimes and scripts (the dashboard's page stream is stream.py).

    thought                      -> thinking   {"content"}
    tool_call / action, started  -> tool_start {"name", "tool_call_id", "input"}
    tool_call / action, ended    -> tool_end   {"name", "tool_call_id", "output", "status"}
    model_call with output       -> content    {"content", "model"}
    completed, cancelled, ...    -> done       {"status", "output", "token_usage", "cost"}
    failed, timed_out, terminated -> error     {"status", "error"}

Every data line is JSON with a "type" equal to the event name. Step frames carry
`id: <step id>`, so a client that reconnects with Last-Event-ID resumes after the
last step it saw. An execution that has already ended sends its single final frame.

Changes are found on PostgreSQL by the process's LISTEN (executions/notify.py: the
stream sleeps until its execution changes, with no thread and no connection), elsewhere
by polling the database (the one thing every web process shares) every
RUNBOARD_API_POLL_SECONDS; a stream lasts at most RUNBOARD_API_STREAM_MAX_SECONDS
and then closes, and the client reconnects. Under ASGI the loop is async, so an open
stream holds no thread between polls, and each poll hands its database connection back
(executions/connections.py), so it holds no connection either.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.conf import settings

from executions import connections, notify, selectors
from executions.models import TERMINAL_STATUSES, Execution, Status, Step, StepKind, StepStatus

from . import selectors as api_selectors

STEP_BATCH = 500
KEEPALIVE_SECONDS = 15


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def _text(value) -> str:
    """What a person would read of a step's output: the text, not the JSON around it."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("content", "text", "output", "response", "message"):
            if isinstance(value.get(key), str):
                return value[key]
    if isinstance(value, list):
        parts = [_text(item) for item in value]
        if parts and all(isinstance(p, str) for p in parts):
            return "".join(parts)
    return json.dumps(value, default=str)


def frame(event: str, data: dict, event_id: int | None = None) -> str:
    lines = f"event: {event}\n"
    if event_id is not None:
        lines += f"id: {event_id}\n"
    return lines + f"data: {json.dumps({'type': event, **data}, default=str)}\n\n"


def _tool(step: Step) -> dict:
    return {"name": step.name, "tool_call_id": step.span_id or str(step.sequence), "step": step.id}


def _tool_end(step: Step) -> str:
    data = {**_tool(step), "output": step.output, "status": step.status}
    if step.error:
        data["error"] = step.error
    return frame("tool_end", data, step.id)


def step_frames(step: Step, running_tools: set[int]) -> list[str]:
    if step.kind == StepKind.THOUGHT:
        text = _text(step.output) or _text(step.input) or step.name
        return [frame("thinking", {"content": text, "step": step.id}, step.id)]
    if step.kind in (StepKind.TOOL_CALL, StepKind.ACTION):
        frames = [frame("tool_start", {**_tool(step), "input": step.input}, step.id)]
        if step.status == StepStatus.RUNNING:
            running_tools.add(step.id)
        else:
            frames.append(_tool_end(step))
        return frames
    if step.kind == StepKind.MODEL_CALL and step.output is not None:
        data = {"content": _text(step.output), "model": step.model, "step": step.id}
        return [frame("content", data, step.id)]
    return []


def final_frame(execution: Execution) -> str:
    if execution.status in (Status.FAILED, Status.TIMED_OUT, Status.TERMINATED):
        return frame(
            "error",
            {
                "execution_id": str(execution.pk),
                "status": execution.status,
                "error": execution.error or execution.failure_reason or execution.status,
            },
        )
    return frame(
        "done",
        {
            "execution_id": str(execution.pk),
            "status": execution.status,
            "output": execution.output,
            "token_usage": {
                "prompt_tokens": execution.prompt_tokens,
                "completion_tokens": execution.completion_tokens,
                "total_tokens": execution.total_tokens,
            },
            "cost": float(execution.cost_usd),
            "duration_ms": execution.duration_ms,
        },
    )


class ApiStream:
    """The state of one stream; start() and tick() do the database work of one poll."""

    def __init__(self, *, workspace, execution: Execution, after_id: int | None):
        self.workspace = workspace
        self.execution = execution
        self.cursor = after_id or 0
        self.running_tools: set[int] = set()
        self.finished = False

    def start(self) -> list[str]:
        if self.execution.is_terminal:
            self.finished = True
            return [final_frame(self.execution)]
        if self.cursor:
            # Resuming: tools whose start was sent before may still end.
            self.running_tools = api_selectors.tools_running(
                execution_id=self.execution.pk, up_to_id=self.cursor
            )
        return ["retry: 2000\n\n", *self.tick()]

    def tick(self) -> list[str]:
        # The status is read before the steps, so a run that ended in between still
        # has all its steps sent before its final frame.
        status = api_selectors.execution_status(workspace=self.workspace, pk=self.execution.pk)
        out = []
        if self.running_tools:
            for step in api_selectors.steps_finished(ids=self.running_tools):
                self.running_tools.discard(step.id)
                out.append(_tool_end(step))
        steps = api_selectors.steps_since(
            execution_id=self.execution.pk, after_id=self.cursor, limit=STEP_BATCH
        )
        for step in steps:
            out.extend(step_frames(step, self.running_tools))
            self.cursor = step.id
        if status in TERMINAL_STATUSES and len(steps) < STEP_BATCH:
            ended = selectors.execution_get(workspace=self.workspace, pk=self.execution.pk)
            out.append(final_frame(ended))
            self.finished = True
        return out


TIME_LIMIT = ": time limit of this stream reached; reconnect with Last-Event-ID\n\n"


def events(stream: ApiStream) -> Iterator[str]:
    """For WSGI: a worker thread is held for the stream's lifetime."""
    first = stream.start()
    if first:
        yield "".join(first)
    deadline = time.monotonic() + _setting("RUNBOARD_API_STREAM_MAX_SECONDS", 600)
    last_sent = time.monotonic()
    while not stream.finished:
        if time.monotonic() > deadline:
            yield TIME_LIMIT
            return
        connections.release()  # no connection held while waiting
        time.sleep(_setting("RUNBOARD_API_POLL_SECONDS", 0.5))
        out = stream.tick()
        if out:
            last_sent = time.monotonic()
            yield "".join(out)
        elif time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"


async def aevents(stream: ApiStream) -> AsyncIterator[str]:
    """For ASGI: the event loop is free between polls; each poll runs in a thread. On
    PostgreSQL it sleeps until the listener hears the execution change (notify.py)."""
    live = notify.enabled()
    subscription = notify.hub().subscribe(str(stream.execution.pk)) if live else None

    def look(func):
        return sync_to_async(connections.released(func))()

    try:
        if live and await notify.free_request_thread():
            # An open stream holds no thread of its own; its looks share a few (notify.py).
            look = notify.run
        first = await look(stream.start)
        if first:
            yield "".join(first)
        deadline = time.monotonic() + _setting("RUNBOARD_API_STREAM_MAX_SECONDS", 600)
        last_sent = time.monotonic()
        while not stream.finished:
            if time.monotonic() > deadline:
                yield TIME_LIMIT
                return
            if subscription is not None and subscription.hub.connected:
                if not await subscription.wait(KEEPALIVE_SECONDS):
                    last_sent = time.monotonic()
                    yield ": keep-alive\n\n"
                    continue
            else:
                await asyncio.sleep(_setting("RUNBOARD_API_POLL_SECONDS", 0.5))
            out = await look(stream.tick)
            if out:
                last_sent = time.monotonic()
                yield "".join(out)
            elif time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"
    finally:
        if subscription is not None:
            subscription.close()
