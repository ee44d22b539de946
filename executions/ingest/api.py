"""The executions endpoints of the JSON API: create, append steps, update, list, get,
wait (long poll), stream (server-sent events), files and artifacts.

Views parse and render; writes go through services.py, reads through selectors.

Over 500 lines on purpose: one django-ninja router holds every endpoint of this door, so
the URL table of the API reads top to bottom in one file.
"""

import json
import time
from typing import Annotated
from uuid import UUID

import orjson
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, JsonResponse, StreamingHttpResponse
from django.utils.http import http_date
from ninja import File, Form, Header, Query, Router
from ninja import Status as Answer
from ninja.files import UploadedFile
from pydantic import TypeAdapter

from executions import budgets, connections, json_input, selectors
from executions.models import TERMINAL_STATUSES, Execution, Priority, Step

from . import selectors as api_selectors
from . import services
from . import stream as api_stream
from .schemas import (
    ErrorOut,
    ExecutionCreatedOut,
    ExecutionCreateIn,
    ExecutionOut,
    ExecutionPageOut,
    ExecutionUpdateIn,
    ExecutionWaitOut,
    FileOut,
    FileUploadForm,
    StepPageOut,
    StepsAppendOut,
    StepsIn,
    StreamEvent,
    Timestamp,
    ValidationErrorOut,
    limited,
)
from .steps import StepRecord

router = Router(tags=["executions"])

ERRORS = {400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 413: ErrorOut, 422: ValidationErrorOut}
WAIT_MAX_SECONDS = 60.0
POLL_SECONDS = 0.25


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


# --- rendering -----------------------------------------------------------------------


def _processing_time(execution: Execution) -> str | None:
    if execution.duration_ms is None:
        return None
    return f"{execution.duration_ms / 1000:.1f}s"


def _absolute(request, path: str) -> str:
    return request.build_absolute_uri(path)


def execution_summary(request, execution: Execution) -> dict:
    return {
        "id": execution.pk,
        "execution_id": execution.pk,
        "agent_id": execution.agent_id,
        "agent_version_id": execution.agent_version_id,
        "agent": execution.agent_label,
        "agent_name": execution.agent_name,
        "version": execution.version_name,
        "workspace_id": execution.workspace_id,
        "status": execution.status,
        "priority": Priority(execution.priority).label,
        "source": execution.source,
        "batch_id": execution.batch_id,
        "session_id": execution.session_id,
        "trace_id": execution.trace_id,
        "metadata": execution.metadata,
        "token_usage": {
            "prompt_tokens": execution.prompt_tokens,
            "completion_tokens": execution.completion_tokens,
            "total_tokens": execution.total_tokens,
        },
        "cost": float(execution.cost_usd),
        "credits": float(execution.credits) if execution.credits is not None else None,
        "step_count": execution.step_count,
        "duration_ms": execution.duration_ms,
        "processing_time": _processing_time(execution),
        "created_at": execution.created_at,
        "updated_at": execution.updated_at,
        "started_at": execution.started_at,
        "completed_at": execution.completed_at,
        "url": _absolute(request, execution.get_absolute_url()),
    }


def execution_detail(request, execution: Execution) -> dict:
    return {
        **execution_summary(request, execution),
        "user_id": execution.triggered_by_id,
        "idempotency_key": execution.idempotency_key,
        "input": execution.input,
        "output": execution.output,
        "response": execution.output,
        "summary": execution.summary,
        "error": execution.error,
        "failure_reason": execution.failure_reason,
        "budget": _budget_out(execution.budget),
    }


def _budget_out(budget: dict | None) -> dict | None:
    """The budget as runtimes read it: without the loop detector's bookkeeping."""
    if not budget:
        return None
    return {k: v for k, v in budget.items() if k != "state"}


def _step_dict(step: Step) -> dict:
    return {
        "id": step.pk,
        "sequence": step.sequence,
        "span_id": step.span_id,
        "parent_span_id": step.parent_span_id,
        "parent_id": step.parent_id,
        "kind": step.kind,
        "name": step.name,
        "status": step.status,
        "started_at": step.started_at,
        "ended_at": step.ended_at,
        "duration_ms": step.duration_ms,
        "input": step.input,
        "output": step.output,
        "error": step.error,
        "model": step.model,
        "prompt_tokens": step.prompt_tokens,
        "completion_tokens": step.completion_tokens,
        "cost": float(step.cost_usd),
        "attributes": step.attributes,
    }


def _file_dict(request, artifact) -> dict:
    if artifact.execution_id:
        path = f"/api/v1/executions/{artifact.execution_id}/artifacts/{artifact.pk}"
    else:
        path = f"/api/v1/files/{artifact.pk}"
    return {
        "id": artifact.pk,
        "file_id": artifact.pk,
        "object_id": artifact.pk,
        "name": artifact.name,
        "size": artifact.size,
        "content_type": artifact.content_type,
        "kind": artifact.kind,
        "execution_id": artifact.execution_id,
        "url": path,
        "public_url": _absolute(request, path),
        "created_at": artifact.created_at,
    }


# --- executions ----------------------------------------------------------------------


def _body_json(request):
    """The body as sent, for Execution.request (already validated by the parser)."""
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return json.loads(request.body)


@router.post(
    "/executions",
    response={200: ExecutionCreatedOut, 201: ExecutionCreatedOut, **ERRORS, 409: ErrorOut},
    summary="Create an execution",
)
def execution_create(
    request,
    payload: ExecutionCreateIn,
    idempotency_key: Annotated[limited(200) | None, Header(alias="Idempotency-Key")] = None,
):
    """Create an execution of `agent` ("name:version"). An unknown agent or version is
    created on first use. Status 201 when created; 200 with the first execution when
    the idempotency key (body or Idempotency-Key header) was used before."""
    snapshot = services.request_snapshot(
        method=request.method,
        path=request.path,
        headers=dict(request.headers),
        body=_body_json(request),
    )
    execution, created = services.execution_create(
        workspace=request.workspace,
        data=payload,
        idempotency_key=idempotency_key,
        request=snapshot,
    )
    body = {
        "execution_id": execution.pk,
        "id": execution.pk,
        "agent_id": execution.agent_id,
        "agent_version_id": execution.agent_version_id,
        "agent": execution.agent_label,
        "status": execution.status,
        "created_at": execution.created_at,
        "inputs": execution.input,
        "idempotency_key": execution.idempotency_key,
        "url": _absolute(request, execution.get_absolute_url()),
    }
    return Answer(201 if created else 200, body)


@router.get(
    "/executions",
    response={200: ExecutionPageOut, 401: ErrorOut, 422: ValidationErrorOut},
    summary="List executions",
)
def execution_list(
    request,
    agent: Annotated[
        list[limited(200)] | None, Query(description="Agent name; repeat for several.")
    ] = None,
    status: Annotated[
        list[limited(40)] | None,
        Query(description="Status (or 'active'); repeat or comma-separate for several."),
    ] = None,
    since: Annotated[Timestamp | None, Query(description="Created at or after this time.")] = None,
    until: Annotated[Timestamp | None, Query(description="Created before this time.")] = None,
    metadata: Annotated[limited(300) | None, Query(description="key=value")] = None,
    q: Annotated[limited(200) | None, Query(description="Id, error or summary text.")] = None,
    source: limited(20) | None = None,
    batch: UUID | None = None,
    page: Annotated[
        int,
        Query(ge=1, description="Page number, for the first 10,000 rows only."),
    ] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        limited(200) | None,
        Query(description="A position from a `next` or `prev` link; any depth, same cost."),
    ] = None,
):
    try:
        result = api_selectors.execution_page(
            workspace=request.workspace,
            agent=agent,
            status=status,
            since=since,
            until=until,
            metadata=metadata,
            q=q,
            source=source,
            batch=str(batch) if batch else None,
            page=page,
            limit=limit,
            cursor=cursor,
        )
    except api_selectors.FilterErrors as exc:
        raise services.Invalid(exc.errors) from None

    def link(position: str | None) -> str | None:
        if position is None:
            return None
        query = request.GET.copy()
        query.pop("page", None)
        query["cursor"] = position
        return _absolute(request, f"{request.path}?{query.urlencode()}")

    return {
        "data": [execution_summary(request, e) for e in result.rows],
        "page": page,
        "limit": limit,
        "has_more": result.has_more,
        "total": result.total,
        "next": link(result.next_cursor),
        "prev": link(result.prev_cursor),
    }


@router.get(
    "/executions/{execution_id}",
    response={200: ExecutionOut, 401: ErrorOut, 404: ErrorOut, 422: ValidationErrorOut},
    summary="Get an execution",
)
def execution_get(
    request,
    execution_id: UUID,
    corrected: Annotated[
        bool, Query(description="Also return corrected_output: reviewers' corrections applied.")
    ] = False,
):
    execution = selectors.execution_get(workspace=request.workspace, pk=execution_id)
    body = execution_detail(request, execution)
    if corrected:
        from feedback.selectors import execution_corrected

        body["corrected_output"] = execution_corrected(
            workspace=request.workspace, execution=execution
        ).output
    return body


@router.patch(
    "/executions/{execution_id}",
    response={200: ExecutionOut, **ERRORS, 409: ErrorOut},
    summary="Update an execution",
)
def execution_update(request, execution_id: UUID, payload: ExecutionUpdateIn):
    """Report status (through the lifecycle: an illegal change answers 409 and changes
    nothing), output, summary, error, usage, cost, credits. Metadata is merged."""
    execution = services.execution_update(
        workspace=request.workspace, pk=execution_id, data=payload
    )
    return execution_detail(request, execution)


# --- steps ---------------------------------------------------------------------------


def _duration_ms(step) -> int | None:
    """As reported, or from the two timestamps when only they were sent."""
    if step.duration_ms is not None or not (step.started_at and step.ended_at):
        return step.duration_ms
    return int((step.ended_at - step.started_at).total_seconds() * 1000)


def _records(payload: StepsIn) -> list[StepRecord]:
    records = []
    for index, step in enumerate(payload.steps):
        provided = set(step.model_fields_set)
        if "cost" in provided:
            provided.add("cost_usd")
        records.append(
            StepRecord(
                span_id=step.span_id,
                parent_span_id=step.parent_span_id or "",
                sequence=step.sequence,
                parent_sequence=step.parent_sequence,
                kind=step.kind,
                name=step.name,
                status=step.status,
                started_at=step.started_at,
                ended_at=step.ended_at,
                duration_ms=_duration_ms(step),
                input=step.input,
                output=step.output,
                error=step.error,
                model=step.model,
                prompt_tokens=step.prompt_tokens,
                completion_tokens=step.completion_tokens,
                cost_usd=step.cost,
                attributes=step.attributes,
                provided=provided,
                index=index,
            )
        )
    return records


@router.post(
    "/executions/{execution_id}/steps",
    response={200: StepsAppendOut, 201: StepsAppendOut, **ERRORS, 409: ErrorOut},
    summary="Append steps",
)
def steps_append(request, execution_id: UUID, payload: StepsIn):
    """One step, a list, or {"steps": [...]}. A step re-sent with the same span_id or
    sequence updates that step instead of adding one, so retries are safe."""
    execution, plan = services.steps_append(
        workspace=request.workspace, execution_id=execution_id, records=_records(payload)
    )
    outcomes = plan.outcomes[execution.pk]
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    steps = []
    for outcome in outcomes:
        counts[outcome.state] += 1
        steps.append({**outcome.summary(), "created": outcome.state == "created"})
    body = {
        "execution_id": execution.pk,
        **counts,
        "step_count": execution.step_count,
        "token_usage": {
            "prompt_tokens": execution.prompt_tokens,
            "completion_tokens": execution.completion_tokens,
            "total_tokens": execution.total_tokens,
        },
        "cost": float(execution.cost_usd),
        "steps": steps,
        "stop": budgets.stop_of(execution),
    }
    return Answer(201 if counts["created"] else 200, body)


@router.get(
    "/executions/{execution_id}/steps",
    response={200: StepPageOut, 401: ErrorOut, 404: ErrorOut, 422: ValidationErrorOut},
    summary="List steps",
)
def step_list(
    request,
    execution_id: UUID,
    after: Annotated[
        int | None, Query(ge=-1, le=2_147_483_647, description="A sequence number.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
):
    execution = selectors.execution_get(workspace=request.workspace, pk=execution_id)
    steps = api_selectors.step_page(execution=execution, after=after, limit=limit)
    more = len(steps) > limit
    steps = steps[:limit]
    return {
        "data": [_step_dict(s) for s in steps],
        "next_after": steps[-1].sequence if more else None,
    }


# --- waiting and streaming ---------------------------------------------------------

STREAM_EVENT_SCHEMA = TypeAdapter(StreamEvent).json_schema()


@router.get(
    "/executions/{execution_id}/wait",
    response={200: ExecutionWaitOut, 401: ErrorOut, 404: ErrorOut, 422: ValidationErrorOut},
    summary="Wait for an execution to end",
)
def execution_wait(
    request,
    execution_id: UUID,
    timeout: Annotated[
        float,
        Query(
            ge=0,
            le=3600,
            description=f"Seconds to wait; capped at {WAIT_MAX_SECONDS:.0f} (call again to "
            "wait longer). `wait.ended` says whether it ended.",
        ),
    ] = 30,
):
    limit = min(timeout, _setting("RUNBOARD_API_WAIT_MAX_SECONDS", WAIT_MAX_SECONDS))
    poll = _setting("RUNBOARD_API_POLL_SECONDS", POLL_SECONDS)
    started = time.monotonic()
    while True:
        status = api_selectors.execution_status(workspace=request.workspace, pk=execution_id)
        left = limit - (time.monotonic() - started)
        if status in TERMINAL_STATUSES or left <= 0:
            break
        connections.release()  # a long poll holds no connection while it waits
        time.sleep(min(poll, left))
    execution = selectors.execution_get(workspace=request.workspace, pk=execution_id)
    waited = time.monotonic() - started
    return {
        **execution_detail(request, execution),
        "wait": {
            "ended": execution.is_terminal,
            "timed_out": not execution.is_terminal,
            "waited_ms": int(waited * 1000),
            "timeout_seconds": limit,
        },
    }


@router.get(
    "/executions/{execution_id}/stream",
    response={401: ErrorOut, 404: ErrorOut, 422: ValidationErrorOut, 429: ErrorOut},
    summary="Stream an execution's events (SSE)",
    openapi_extra={
        "responses": {
            "200": {
                "description": "Server-sent events: thinking, tool_start, tool_end, content, "
                "then done or error. An execution that already ended sends only its final "
                "frame.",
                "content": {
                    "text/event-stream": {
                        "schema": {"type": "string"},
                        # OpenAPI 3.2 names this itemSchema: the JSON of each `data:`
                        # line, by its "type" (which is also the SSE event name).
                        "x-item-schema": STREAM_EVENT_SCHEMA,
                    }
                },
            }
        }
    },
)
def execution_stream(request, execution_id: UUID):
    execution = selectors.execution_get(workspace=request.workspace, pk=execution_id)
    limit = connections.max_streams_per_key()
    slot = connections.stream_slot("key", request.api_key.pk, limit)
    if slot is None:
        return JsonResponse(
            {
                "detail": f"Too many open streams: at most {limit} per API key "
                "(MAX_STREAMS_PER_KEY). Close one, or retry after a while."
            },
            status=429,
            headers={"Retry-After": "10"},
        )
    last = request.headers.get("Last-Event-ID", "")
    after_id = int(last) if last.isdigit() and len(last) < 19 else None
    stream = api_stream.ApiStream(
        workspace=request.workspace, execution=execution, after_id=after_id
    )
    # Under ASGI an async iterator: Django would read a sync one to its end before
    # sending anything, which is no stream at all.
    content = (
        api_stream.aevents(stream)
        if isinstance(request, ASGIRequest)
        else api_stream.events(stream)
    )
    response = StreamingHttpResponse(
        connections.held(content, slot), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


# --- files ---------------------------------------------------------------------------


FILE_RESPONSE = {
    "200": {
        "description": "The file, with its stored content type.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _upload(request, file, form: FileUploadForm, execution_id=None):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if file.size is not None and file.size > limit:
        raise services.TooLarge(
            f"The file is larger than the {limit}-byte limit (MAX_REQUEST_BYTES)."
        )
    boxes = None
    if form.bounding_boxes:
        try:
            boxes = json_input.loads(form.bounding_boxes)
        except json_input.JsonInputError as exc:
            raise services.Invalid([("bounding_boxes", f"is not JSON: {exc}")]) from None
    artifact = services.artifact_create(
        workspace=request.workspace,
        upload=file,
        execution_id=execution_id or form.execution_id,
        step_span_id=form.step_span_id,
        step_sequence=form.step_sequence,
        kind=form.kind,
        bounding_boxes=boxes,
    )
    return Answer(201, _file_dict(request, artifact))


@router.post("/files", response={201: FileOut, **ERRORS}, summary="Upload a file", tags=["files"])
def file_upload(request, file: File[UploadedFile], form: Form[FileUploadForm] = None):
    """multipart/form-data with `file`; optionally `execution_id` (and `step_span_id` or
    `step_sequence`) to attach it. Answers the file id and its URL."""
    return _upload(request, file, form or FileUploadForm())


@router.get(
    "/files/{file_id}",
    response={401: ErrorOut, 404: ErrorOut, 422: ValidationErrorOut},
    openapi_extra={"responses": FILE_RESPONSE},
    summary="Download a file",
    tags=["files"],
)
def file_download(request, file_id: UUID):
    artifact = selectors.artifact_get(workspace=request.workspace, pk=file_id)
    return _file_response(artifact)


@router.post(
    "/executions/{execution_id}/artifacts",
    response={201: FileOut, **ERRORS},
    summary="Upload an artifact of an execution",
    tags=["files"],
)
def artifact_upload(
    request, execution_id: UUID, file: File[UploadedFile], form: Form[FileUploadForm] = None
):
    return _upload(request, file, form or FileUploadForm(), execution_id=execution_id)


@router.get(
    "/executions/{execution_id}/artifacts/{object_id}",
    response={401: ErrorOut, 404: ErrorOut, 422: ValidationErrorOut},
    openapi_extra={"responses": FILE_RESPONSE},
    summary="Download an artifact of an execution",
    tags=["files"],
)
def artifact_download(request, execution_id: UUID, object_id: UUID):
    artifact = api_selectors.artifact_of_execution(
        workspace=request.workspace, execution_id=execution_id, pk=object_id
    )
    return _file_response(artifact)


INLINE_TYPES = ("image/", "video/", "audio/", "application/pdf", "text/plain")


def _file_response(artifact) -> FileResponse:
    inline = artifact.content_type.startswith(INLINE_TYPES) and artifact.content_type != (
        "image/svg+xml"
    )
    response = FileResponse(
        artifact.file.open("rb"),
        content_type=artifact.content_type or "application/octet-stream",
        as_attachment=not inline,
        filename=artifact.name,
    )
    # Uploaded content is never trusted to run as a page of this origin.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Last-Modified"] = http_date(artifact.created_at.timestamp())
    return response
