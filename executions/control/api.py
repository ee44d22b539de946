"""The control plane's JSON API: execute (by name:version or inline config), batches,
rerun, cancel, approve and reject. Mounted on the NinjaAPI in config/api.py, so the
same API keys, error shapes and OpenAPI document apply.

Execute is asynchronous by default: it answers 202 with the execution id at once.
With `"sync": true` it waits up to `timeout` seconds (at most 60) for the execution to
end and answers 200 with the result, or 202 with the current status if it has not.
An action the execution's status does not allow answers 409 with the reason.
"""

import time
from typing import Annotated, Any, Literal
from uuid import UUID

from django.conf import settings
from django.db import transaction
from ninja import Router
from ninja import Status as Answer
from pydantic import AfterValidator, Field, model_validator

from agents.validation import url_problem
from executions import connections, selectors
from executions.ingest import selectors as api_selectors
from executions.ingest import services
from executions.ingest.api import execution_detail
from executions.ingest.schemas import (
    ErrorOut,
    ExecutionOut,
    Strict,
    ValidationErrorOut,
    WaitInfo,
    limited,
)
from executions.models import TERMINAL_STATUSES, Batch, Execution, Source

from . import services as control

router = Router(tags=["control"])

ERRORS = {401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 413: ErrorOut, 422: ValidationErrorOut}
SYNC_MAX_SECONDS = 60.0
POLL_SECONDS = 0.25

Priority = Literal["low", "normal", "high"]


def _webhook_url(value: str) -> str:
    # Only http(s): where it may point is checked again at send time, after DNS.
    if value and (problem := url_problem(value)):
        raise ValueError(problem)
    return value


WebhookUrl = Annotated[limited(500), AfterValidator(_webhook_url)]


# --- schemas -------------------------------------------------------------------------


class ExecuteIn(Strict):
    inputs: dict[str, Any] | None = Field(
        None, description="Validated against the version's input_schema when it has one."
    )
    input: dict[str, Any] | None = Field(None, description="The same as `inputs`.")
    priority: Priority = Field("normal", description="Higher priority is dispatched first.")
    metadata: dict[str, Any] | None = None
    batch: UUID | None = Field(None, description="Add the execution to this existing batch.")
    idempotency_key: limited(200) | None = Field(
        None, description="A retried execute with the same key returns the first execution."
    )
    budget: dict[str, Any] | None = Field(
        None,
        description="Limits for this run (cost, tokens, steps, seconds, soft, loop); see "
        "POST /executions. Overrides the version's config budget key by key.",
    )
    sync: bool = Field(False, description="Wait for the execution to end (up to `timeout`).")
    timeout: float = Field(30, ge=0, le=3600, description="Seconds to wait when sync; max 60.")

    @model_validator(mode="after")
    def _one_input(self):
        if self.input is not None and self.inputs is not None:
            raise ValueError("give the input as `inputs` or as `input`, not both")
        return self

    @property
    def input_value(self) -> dict:
        return self.inputs if self.inputs is not None else (self.input or {})


class InlineExecuteIn(ExecuteIn):
    name: limited(301) | None = Field(
        None,
        description="A saved agent as 'name:version' (seed 002's `name`). Give this or `config`.",
        examples=["invoice-extractor:v1"],
    )
    config: dict[str, Any] | None = Field(
        None,
        description="An inline agent config (prompt, model, ...) for a one-off execution "
        "without a saved agent: it runs as a version of an ad-hoc agent.",
        examples=[{"prompt": "Extract the store name, date and total.", "model": "gpt-4o"}],
    )
    agent_name: limited(200) | None = Field(
        None, description="Name of the ad-hoc agent for an inline config (default 'inline')."
    )
    webhook_url: WebhookUrl | None = Field(
        None, description="Where the inline config's runtime receives its webhooks."
    )
    webhook_secret: limited(200) | None = Field(
        None, description="The secret that signs those webhooks (HMAC-SHA256)."
    )

    @model_validator(mode="after")
    def _name_or_config(self):
        if bool(self.name) == (self.config is not None):
            raise ValueError("give either `name` ('name:version') or an inline `config`")
        return self


class BatchIn(Strict):
    inputs: list[dict[str, Any]] = Field(
        description="One input object per execution.", min_length=1, max_length=1000
    )
    name: limited(200) | None = None
    priority: Priority = "normal"
    metadata: dict[str, Any] | None = None


class CancelIn(Strict):
    reason: limited(2000) | None = None


class ApprovalRequestIn(Strict):
    request: dict[str, Any] = Field(
        description="What needs approving, shown to reviewers.",
        examples=[{"action": "issue_refund", "order_id": "NW-1", "amount": 129.9}],
    )


class DecisionIn(Strict):
    note: limited(5000) | None = None


class ControlOut(ExecutionOut):
    rerun_of: UUID | None = None
    approval_request: Any = None
    approval_note: str = ""
    decided_by: str | None = None
    decided_at: Any = None
    wait: WaitInfo | None = None


class BatchOut(Strict):
    batch_id: UUID
    name: str
    agent: str
    count: int
    execution_ids: list[UUID]
    url: str


# --- helpers -------------------------------------------------------------------------


def _control_error(exc: control.ControlError):
    """As the ingestion API says it: 404 for what is not there, 422 naming each field."""
    if isinstance(exc, control.NotFound):
        return services.NotFound(" ".join(exc.messages))
    errors = []
    for message in exc.messages:
        field, sep, text = message.partition(": ")
        errors.append((field, text) if sep and " " not in field else ("body", message))
    return services.Invalid(errors)


def _out(request, execution: Execution, wait: dict | None = None) -> dict:
    return {
        **execution_detail(request, execution),
        "rerun_of": execution.rerun_of_id,
        "approval_request": execution.approval_request,
        "approval_note": execution.approval_note,
        "decided_by": execution.decided_by.get_username() if execution.decided_by else None,
        "decided_at": execution.decided_at,
        "wait": wait,
    }


def _get(request, execution_id) -> Execution:
    return selectors.execution_get(workspace=request.workspace, pk=execution_id)


def _answer(request, execution: Execution, payload: ExecuteIn, created_status: int = 202):
    """202 with the queued execution, or (sync) wait for it to end."""
    if not payload.sync:
        return Answer(created_status, _out(request, _get(request, execution.pk)))
    limit = min(payload.timeout, getattr(settings, "RUNBOARD_SYNC_MAX_SECONDS", SYNC_MAX_SECONDS))
    poll = getattr(settings, "RUNBOARD_API_POLL_SECONDS", POLL_SECONDS)
    started = time.monotonic()
    while True:
        status = api_selectors.execution_status(workspace=request.workspace, pk=execution.pk)
        left = limit - (time.monotonic() - started)
        if status in TERMINAL_STATUSES or left <= 0:
            break
        connections.release()  # a sync execute holds no connection while it waits
        time.sleep(min(poll, left))
    execution = _get(request, execution.pk)
    wait = {
        "ended": execution.is_terminal,
        "timed_out": not execution.is_terminal,
        "waited_ms": int((time.monotonic() - started) * 1000),
        "timeout_seconds": limit,
    }
    return Answer(200 if execution.is_terminal else created_status, _out(request, execution, wait))


def _execute(request, payload: ExecuteIn, **target):
    batch = None
    if payload.batch is not None:
        batch = Batch.objects.filter(workspace=request.workspace, pk=payload.batch).first()
        if batch is None:
            raise services.NotFound(f"batch: no batch {payload.batch} in this workspace.")
    snapshot = services.request_snapshot(
        method=request.method,
        path=request.path,
        headers=dict(request.headers),
        body=payload.model_dump(mode="json", exclude_unset=True),
    )
    try:
        with transaction.atomic():
            execution = control.execution_execute(
                workspace=request.workspace,
                inputs=payload.input_value,
                priority=payload.priority,
                metadata=payload.metadata,
                source=Source.API,
                request=snapshot,
                idempotency_key=payload.idempotency_key,
                budget=payload.budget,
                **target,
            )
            if batch is not None and execution.batch_id is None:
                Execution.objects.filter(pk=execution.pk).update(batch=batch)
    except control.ControlError as exc:
        raise _control_error(exc) from None
    return _answer(request, execution, payload)


# --- endpoints -----------------------------------------------------------------------


@router.post(
    "/agents/{name}:{version}/execute",
    response={200: ControlOut, 202: ControlOut, **ERRORS},
    summary="Execute an agent version",
)
def agent_execute(request, name: str, version: str, payload: ExecuteIn):
    """Queue an execution of the saved agent version `name:version`; its runtime gets a
    signed webhook. 202 with the execution at once, or with `"sync": true` wait up to
    `timeout` seconds: 200 once it has ended, else 202 with its current status."""
    try:
        agent_version = control.agent_version_resolve(
            workspace=request.workspace, ref=f"{name}:{version}"
        )
    except control.ControlError as exc:
        raise _control_error(exc) from None
    return _execute(request, payload, agent_version=agent_version)


@router.post(
    "/execute",
    response={200: ControlOut, 202: ControlOut, **ERRORS},
    summary="Execute by name or inline config",
)
def execute(request, payload: InlineExecuteIn):
    """Execute `name` ('name:version'), or an inline `config` as a one-off ad-hoc agent
    (one version per distinct config and webhook). Same answers as the agent execute."""
    if payload.name:
        try:
            agent_version = control.agent_version_resolve(
                workspace=request.workspace, ref=payload.name
            )
        except control.ControlError as exc:
            raise _control_error(exc) from None
        return _execute(request, payload, agent_version=agent_version)
    return _execute(
        request,
        payload,
        config=payload.config,
        agent_name=payload.agent_name or "",
        webhook_url=payload.webhook_url or "",
        webhook_secret=payload.webhook_secret or "",
    )


@router.post(
    "/agents/{name}:{version}/batches",
    response={201: BatchOut, **ERRORS},
    summary="Execute an agent version over many inputs as one batch",
)
def agent_batch(request, name: str, version: str, payload: BatchIn):
    """Every input is checked first: one bad item starts nothing (422 names its index)."""
    try:
        agent_version = control.agent_version_resolve(
            workspace=request.workspace, ref=f"{name}:{version}"
        )
        batch = control.batch_execute(
            workspace=request.workspace,
            agent_version=agent_version,
            inputs=payload.inputs,
            name=payload.name or "",
            priority=payload.priority,
            metadata=payload.metadata,
        )
    except control.ControlError as exc:
        raise _control_error(exc) from None
    ids = list(batch.executions.order_by("created_at", "id").values_list("pk", flat=True))
    return Answer(
        201,
        {
            "batch_id": batch.pk,
            "name": batch.name,
            "agent": agent_version.full_name,
            "count": len(ids),
            "execution_ids": ids,
            "url": request.build_absolute_uri(batch.get_absolute_url()),
        },
    )


@router.post(
    "/executions/{execution_id}/rerun",
    response={201: ControlOut, **ERRORS},
    summary="Rerun a finished execution",
)
def execution_rerun(request, execution_id: UUID):
    """A new execution with the same version, inputs, priority and metadata, linked to
    the original (`rerun_of`). 409 while the original has not ended."""
    rerun = control.execution_rerun(execution=_get(request, execution_id))
    return Answer(201, _out(request, _get(request, rerun.pk)))


@router.post(
    "/executions/{execution_id}/cancel",
    response={200: ControlOut, **ERRORS},
    summary="Cancel an execution",
)
def execution_cancel(request, execution_id: UUID, payload: CancelIn | None = None):
    """Pending, queued, running or awaiting approval becomes cancelled and the runtime is
    told by webhook. Cancelling a cancelled execution answers 200 and changes nothing;
    a finished one answers 409."""
    reason = (payload.reason if payload else None) or ""
    control.execution_cancel(execution=_get(request, execution_id), reason=reason)
    return _out(request, _get(request, execution_id))


@router.post(
    "/executions/{execution_id}/approval-request",
    response={200: ControlOut, **ERRORS},
    summary="Pause a running execution for approval",
)
def execution_request_approval(request, execution_id: UUID, payload: ApprovalRequestIn):
    """For runtimes: running -> awaiting_approval with what needs approving, which
    reviewers see in the review queue. The decision comes back as an `approved` or
    `rejected` webhook. 409 unless the execution is running (or already waiting)."""
    try:
        control.execution_request_approval(
            execution=_get(request, execution_id), request=payload.request
        )
    except control.ControlError as exc:
        raise _control_error(exc) from None
    return _out(request, _get(request, execution_id))


@router.post(
    "/executions/{execution_id}/approve",
    response={200: ControlOut, **ERRORS},
    summary="Approve an execution awaiting approval",
)
def execution_approve(request, execution_id: UUID, payload: DecisionIn | None = None):
    """awaiting_approval -> running; the runtime is told to carry on. 409 otherwise."""
    note = (payload.note if payload else None) or ""
    control.execution_approve(execution=_get(request, execution_id), note=note)
    return _out(request, _get(request, execution_id))


@router.post(
    "/executions/{execution_id}/reject",
    response={200: ControlOut, **ERRORS},
    summary="Reject an execution awaiting approval",
)
def execution_reject(request, execution_id: UUID, payload: DecisionIn | None = None):
    """awaiting_approval -> rejected with the note; the runtime is told to stop."""
    note = (payload.note if payload else None) or ""
    control.execution_reject(execution=_get(request, execution_id), note=note)
    return _out(request, _get(request, execution_id))
