"""Writes of executions, steps and artifacts: the one service layer behind both doors,
the JSON API (api.py) and OTLP (otlp.py, whose traces are assembled in traces.py).

Every request is one transaction: a failure part-way leaves nothing written. Every
execution created here is counted (counters.count_created) and every status change
goes through lifecycle.transition. Retries are harmless: an execution is identified by
its idempotency key or its trace id, a step by its span id or sequence.
"""

import mimetypes
import os
import re
from collections import deque
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import AgentVersion, Workspace
from agents.services import AgentNameError, agent_resolve, parse_agent_ref
from agents.validation import SchemaError, schema_errors
from executions import budgets, counters, lifecycle
from executions.models import (
    TERMINAL_STATUSES,
    Artifact,
    ArtifactKind,
    Batch,
    Execution,
    Priority,
    Source,
    Status,
    Step,
)

from .prices import fill_costs
from .steps import (
    Plan,
    StepConflict,
    StepInvalid,
    StepRecord,
    Totals,
    money,
    note_children_waiting,
    plan_steps,
)
from .steps_insert import apply_plan

PRIORITIES = {"low": Priority.LOW, "normal": Priority.NORMAL, "high": Priority.HIGH}


class IngestError(Exception):
    status = 400

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class NotFound(IngestError):
    status = 404


class Conflict(IngestError):
    status = 409


class TooLarge(IngestError):
    status = 413


class Invalid(IngestError):
    """Values that are well-formed but wrong; `errors` names each field."""

    status = 422

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))


# --- redaction -----------------------------------------------------------------------

SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)|secret|api[_-]?key|access[_-]?key|private[_-]?key|"
    r"authori[sz]ation|credential|cookie|signature|(^|[_-])token$",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy with the values of secret-looking keys replaced, for display and reruns."""
    if _depth > 64:
        return REDACTED
    if isinstance(value, dict):
        return {
            k: (REDACTED if SECRET_NAME.search(str(k)) and v not in (None, "") else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, _depth + 1) for v in value]
    return value


def request_snapshot(*, method: str, path: str, headers: dict, body: Any) -> dict:
    return {
        "method": method,
        "path": path,
        "headers": redact(dict(headers)),
        "body": redact(body),
    }


# --- executions ----------------------------------------------------------------------


def _status_path(target: str) -> list[str]:
    """The legal statuses from pending to `target`, shortest first (BFS over the lifecycle)."""
    if target == Status.PENDING:
        return []
    queue = deque([[Status.PENDING]])
    seen = {Status.PENDING}
    while queue:
        path = queue.popleft()
        for following in sorted(lifecycle.allowed_targets(path[-1])):
            if following == target:
                return [*path[1:], following]
            if following not in seen:
                seen.add(following)
                queue.append([*path, following])
    raise Invalid([("status", f"an execution cannot be created as {target}.")])


def _validate_input(version: AgentVersion | None, data: dict) -> None:
    schema = version.input_schema if version is not None else None
    if not schema:
        return
    try:
        problems = schema_errors(schema, data, root="input")
    except SchemaError as exc:
        raise Invalid(
            [("agent", f"{version.full_name} has an invalid input_schema: {exc.message}")]
        ) from None
    if problems:
        raise Invalid(problems[:20])


def _batch(*, workspace: Workspace, pk, name: str | None, version) -> Batch:
    batch = Batch.objects.filter(pk=pk).first()
    if batch is not None:
        if batch.workspace_id != workspace.pk:
            raise NotFound(f"No batch {pk} in this workspace.")
        return batch
    try:
        with transaction.atomic():
            return Batch.objects.create(
                id=pk, workspace=workspace, agent_version=version, name=name or ""
            )
    except IntegrityError:
        return _batch(workspace=workspace, pk=pk, name=name, version=version)


def _field_changes(execution: Execution, data, provided: set[str]) -> dict[str, Any]:
    """Columns to write for the reported fields other than status."""
    changes: dict[str, Any] = {}
    for name in ("output", "summary", "error", "failure_reason", "session_id"):
        if name in provided:
            value = getattr(data, name)
            changes[name] = value if (value is not None or name == "output") else ""
    if "usage" in provided and data.usage is not None:
        usage = data.usage
        prompt = usage.prompt_tokens
        completion = usage.completion_tokens
        prompt = execution.prompt_tokens if prompt is None else prompt
        completion = execution.completion_tokens if completion is None else completion
        changes["prompt_tokens"] = prompt
        changes["completion_tokens"] = completion
        changes["total_tokens"] = (
            usage.total_tokens if usage.total_tokens is not None else prompt + completion
        )
    if "cost" in provided and data.cost is not None:
        changes["cost_usd"] = money(data.cost)
    if "credits" in provided and data.credits is not None:
        changes["credits"] = Decimal(data.credits).quantize(
            Decimal("0.0001"), rounding=ROUND_HALF_UP
        )
    if "metadata" in provided and data.metadata is not None:
        # Merged, so a runtime can add keys as it learns them; null removes a key.
        merged = {**(execution.metadata or {}), **data.metadata}
        changes["metadata"] = {k: v for k, v in merged.items() if v is not None}
    if "started_at" in provided and data.started_at is not None:
        changes["started_at"] = data.started_at
    return changes


def _check_times(data, target_terminal: bool) -> None:
    if data.completed_at is not None and not target_terminal:
        raise Invalid([("completed_at", "only a finished execution has a completion time.")])
    if data.started_at and data.completed_at and data.completed_at < data.started_at:
        raise Invalid([("completed_at", "is before started_at.")])


def execution_create(
    *,
    workspace: Workspace,
    data,
    idempotency_key: str | None = None,
    request: dict | None = None,
) -> tuple[Execution, bool]:
    """Create an execution from a validated ExecutionCreateIn; (execution, created).

    A retry with the same idempotency key returns the first execution unchanged. The
    agent and version are created on first use. A status other than pending is
    reached through the lifecycle (pending -> running -> completed for a run
    reported after the fact), each step counted.
    """
    key = idempotency_key or data.idempotency_key
    provided = set(data.model_fields_set)
    with transaction.atomic():
        if key:
            existing = Execution.objects.filter(workspace=workspace, idempotency_key=key).first()
            if existing is not None:
                return existing, False
        try:
            name, version_name = parse_agent_ref(data.agent_ref, data.version)
        except AgentNameError as exc:
            raise Invalid([("agent", str(exc))]) from None
        agent, version = agent_resolve(workspace=workspace, name=name, version=version_name)
        _validate_input(version, data.input_value)
        try:
            budget = budgets.effective(version, data.budget)
        except budgets.BudgetInvalid as exc:
            raise Invalid([(exc.field, exc.message)]) from None
        target = data.status or Status.PENDING
        path = _status_path(target)
        _check_times(data, target in TERMINAL_STATUSES)
        now = timezone.now()
        execution = Execution(
            workspace=workspace,
            agent=agent,
            agent_version=version,
            agent_name=agent.name,
            version_name=version.version if version else "",
            status=Status.PENDING,
            priority=PRIORITIES[data.priority],
            source=Source.API,
            input=data.input_value,
            idempotency_key=key or None,
            request=request or {},
            budget=budget,
            created_at=now,
            updated_at=now,
        )
        if data.batch is not None:
            execution.batch = _batch(
                workspace=workspace, pk=data.batch, name=data.batch_name, version=version
            )
        for column, value in _field_changes(execution, data, provided).items():
            setattr(execution, column, value)
        try:
            with transaction.atomic():
                execution.save(force_insert=True)
        except IntegrityError:
            # A concurrent retry with the same key won the race: answer with its execution.
            winner = None
            if key:
                winner = Execution.objects.filter(workspace=workspace, idempotency_key=key).first()
            if winner is None:
                raise
            return winner, False
        counters.count_created([execution])
        for status in path:
            at = None
            if status == Status.RUNNING:
                at = data.started_at
            elif status in TERMINAL_STATUSES:
                at = data.completed_at
            lifecycle.transition(execution, status, at=at)
    return execution, True


def execution_update(*, workspace: Workspace, pk, data) -> Execution:
    """Apply a validated ExecutionUpdateIn. An illegal status change raises
    lifecycle.IllegalTransition and, the transaction being rolled back, changes nothing."""
    provided = set(data.model_fields_set)
    with transaction.atomic():
        execution = Execution.objects.select_for_update().filter(workspace=workspace, pk=pk).first()
        if execution is None:
            raise NotFound(f"No execution {pk} in this workspace.")
        target = data.status or execution.status
        _check_times(data, target in TERMINAL_STATUSES)
        changes = _field_changes(execution, data, provided)
        for column, value in changes.items():
            setattr(execution, column, value)
        if data.status and data.status != execution.status:
            at = data.completed_at if data.status in TERMINAL_STATUSES else None
            if data.status == Status.RUNNING:
                at = data.started_at
            lifecycle.transition(execution, data.status, at=at)
        elif data.completed_at is not None and execution.is_terminal:
            changes["completed_at"] = execution.completed_at = data.completed_at
        if execution.is_terminal and execution.started_at and execution.completed_at:
            duration = int((execution.completed_at - execution.started_at).total_seconds() * 1000)
            changes["duration_ms"] = execution.duration_ms = max(0, duration)
        if changes:
            changes["updated_at"] = execution.updated_at = timezone.now()
            Execution.objects.filter(pk=execution.pk).update(**changes)
    return execution


# --- steps -----------------------------------------------------------------------------


def _add_totals(execution: Execution, totals: Totals, now: datetime) -> None:
    """Add a request's steps to the denormalised totals. The caller holds the row lock."""
    if not (totals.steps or totals.prompt_tokens or totals.completion_tokens or totals.cost_usd):
        return
    execution.step_count += totals.steps
    execution.prompt_tokens = max(0, execution.prompt_tokens + totals.prompt_tokens)
    execution.completion_tokens = max(0, execution.completion_tokens + totals.completion_tokens)
    execution.total_tokens = max(
        0, execution.total_tokens + totals.prompt_tokens + totals.completion_tokens
    )
    execution.cost_usd = max(Decimal(0), money(execution.cost_usd + totals.cost_usd))
    execution.updated_at = now
    Execution.objects.filter(pk=execution.pk).update(
        step_count=execution.step_count,
        prompt_tokens=execution.prompt_tokens,
        completion_tokens=execution.completion_tokens,
        total_tokens=execution.total_tokens,
        cost_usd=execution.cost_usd,
        updated_at=now,
    )


def _plan(batches) -> Plan:
    try:
        return plan_steps(batches)
    except StepConflict as exc:
        raise Conflict(str(exc)) from None
    except StepInvalid as exc:
        raise Invalid([(exc.field, exc.message)]) from None


def steps_append(
    *, workspace: Workspace, execution_id, records: list[StepRecord]
) -> tuple[Execution, Plan]:
    """Append (or update, by span id or sequence) steps of one execution.

    An execution still pending or queued that reports steps is running, so it moves
    to running through the lifecycle. A run with a budget is checked against it here,
    under the row lock and with the totals (budgets.check): a hard limit stops it.
    """
    with transaction.atomic():
        execution = (
            Execution.objects.select_for_update()
            .filter(workspace=workspace, pk=execution_id)
            .first()
        )
        if execution is None:
            raise NotFound(f"No execution {execution_id} in this workspace.")
        fill_costs(records, workspace_id=workspace.pk)
        plan = _plan([(execution, records, False)])
        apply_plan(plan)
        note_children_waiting(execution, plan)
        _add_totals(execution, plan.totals[execution.pk], timezone.now())
        if plan.new and execution.status in (Status.PENDING, Status.QUEUED):
            starts = [n.record.started_at for n in plan.new if n.record.started_at]
            lifecycle.transition(execution, Status.RUNNING, at=min(starts) if starts else None)
        if execution.budget:
            budgets.check(execution, plan.outcomes[execution.pk], plan.totals[execution.pk])
    return execution, plan


# --- files -----------------------------------------------------------------------------

KIND_BY_TYPE = (
    ("image/", ArtifactKind.IMAGE),
    ("video/", ArtifactKind.VIDEO),
    ("application/pdf", ArtifactKind.DOCUMENT),
    ("text/x-", ArtifactKind.CODE),
    ("text/", ArtifactKind.DOCUMENT),
)


def _kind_for(content_type: str) -> str:
    for prefix, kind in KIND_BY_TYPE:
        if content_type.startswith(prefix):
            return kind
    return ArtifactKind.FILE


def _bounding_boxes(value: Any) -> list:
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise Invalid([("bounding_boxes", "must be a JSON list of boxes.")])
    for i, box in enumerate(value):
        where = f"bounding_boxes[{i}]"
        if not isinstance(box, dict):
            raise Invalid([(where, "must be an object with x, y, width and height.")])
        for key in ("x", "y", "width", "height"):
            number = box.get(key)
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise Invalid([(f"{where}.{key}", "must be a number (a fraction of the image).")])
            if not 0 <= number <= 1:
                raise Invalid([(f"{where}.{key}", "must be between 0 and 1.")])
    return value


DISK_NAME_BYTES = 150


def _disk_name(name: str) -> str:
    """The file's name on disk: file systems allow 255 bytes per name, and 200
    characters of CJK are 600. The artifact keeps its full name for people."""
    if len(name.encode()) <= DISK_NAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension.encode()) > 16:
        stem, extension = name, ""
    room = DISK_NAME_BYTES - len(extension.encode()) - len(dot if extension else "")
    short = stem.encode()[:room].decode(errors="ignore")
    return f"{short}.{extension}" if extension else short


def artifact_create(
    *,
    workspace: Workspace,
    upload,
    execution_id=None,
    step_span_id: str | None = None,
    step_sequence: int | None = None,
    kind: str | None = None,
    bounding_boxes: Any = None,
) -> Artifact:
    """Store an uploaded file as an artifact, of an execution (and step) or on its own.

    The file is written before the row; if the row cannot be written the file is
    removed again, so a failed upload leaves neither behind.
    """
    boxes = _bounding_boxes(bounding_boxes)
    name = os.path.basename(upload.name or "") or "upload"
    name = name.replace("\x00", "")[-200:]
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if not content_type or content_type == "application/octet-stream":
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    artifact = Artifact(
        workspace=workspace,
        kind=kind or _kind_for(content_type),
        name=name,
        content_type=content_type[:200],
        size=upload.size or 0,
        bounding_boxes=boxes,
    )
    try:
        with transaction.atomic():
            if execution_id is not None:
                artifact.execution = Execution.objects.filter(
                    workspace=workspace, pk=execution_id
                ).first()
                if artifact.execution is None:
                    raise NotFound(f"No execution {execution_id} in this workspace.")
            if step_span_id or step_sequence is not None:
                if artifact.execution is None:
                    raise Invalid([("execution_id", "is needed to attach the file to a step.")])
                steps = Step.objects.filter(execution=artifact.execution)
                if step_span_id:
                    artifact.step = steps.filter(span_id=step_span_id).first()
                else:
                    artifact.step = steps.filter(sequence=step_sequence).first()
                if artifact.step is None:
                    field_name = "step_span_id" if step_span_id else "step_sequence"
                    raise Invalid([(field_name, "no such step in this execution.")])
            artifact.file.save(_disk_name(name), upload, save=False)
            artifact.save(force_insert=True)
    except Exception:
        if artifact.file.name:
            artifact.file.delete(save=False)
        raise
    return artifact
