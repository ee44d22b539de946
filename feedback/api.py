"""Feedback in the JSON API: field corrections by JSON Pointer and execution notes.

    POST /api/v1/executions/{id}/feedback   corrections and/or notes, all or nothing
    GET  /api/v1/executions/{id}/feedback   every correction, every note, the corrected output

The same rules as the dashboard's form: an unknown path or a value of the wrong
type is a 422 naming the correction, a `base` that is no longer the current value
is a 409 showing the newer value and who set it, and nothing is saved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.db import transaction
from ninja import Field, Router, Schema
from ninja import Status as Answer
from pydantic import StringConstraints

from . import pointer, selectors, services
from .jsonform import Change, value_hash
from .models import ExecutionNote, FieldCorrection

router = Router(tags=["feedback"])

Pointer = Annotated[str, StringConstraints(max_length=1000)]


class CorrectionIn(Schema):
    path: Pointer = Field(description='JSON Pointer (RFC 6901) into the output, e.g. "/total".')
    op: Literal["replace", "add", "remove"] = Field(
        "replace",
        description="replace a value, add an object key or insert a list item, remove one.",
    )
    value: Any = Field(None, description="The new value (not for remove).")
    base: Any = Field(
        None,
        description=(
            "Optional: the value you corrected from. When given and the field now holds "
            "something else (another reviewer got there first), nothing is saved: 409."
        ),
    )
    comment: Annotated[str, StringConstraints(max_length=2000)] = ""


class NoteIn(Schema):
    rating: Literal["up", "down", ""] = ""
    text: Annotated[str, StringConstraints(max_length=10_000)] = ""


class FeedbackIn(Schema):
    corrections: list[CorrectionIn] = Field(default_factory=list, max_length=5000)
    comment: Annotated[str, StringConstraints(max_length=2000)] = Field(
        "", description="Applies to every correction that has no comment of its own."
    )
    notes: list[NoteIn] = Field(default_factory=list, max_length=100)
    note: NoteIn | None = Field(None, description="One note; the same as a one-item `notes`.")


class CorrectionOut(Schema):
    id: int
    path: str
    op: str
    value_before: Any
    value_after: Any
    author: str | None
    comment: str
    created_at: datetime


class NoteOut(Schema):
    id: int
    rating: str
    text: str
    author: str | None
    created_at: datetime


class FeedbackOut(Schema):
    execution_id: UUID
    correction_count: int
    note_count: int
    corrections: list[CorrectionOut]
    notes: list[NoteOut]
    corrected_output: Any
    skipped_corrections: list[int] = Field(
        description="Corrections that no longer fit the output and are not applied."
    )


class FeedbackCreatedOut(Schema):
    execution_id: UUID
    corrections: list[CorrectionOut]
    notes: list[NoteOut]
    corrected_output: Any


class ErrorOut(Schema):
    detail: str


class FieldErrorOut(Schema):
    field: str
    message: str


class ValidationErrorOut(Schema):
    detail: str
    errors: list[FieldErrorOut]


class ConflictOut(Schema):
    field: str
    path: str
    current: Any
    current_exists: bool
    changed_by: str | None
    changed_at: datetime | None


class StaleOut(Schema):
    detail: str
    conflicts: list[ConflictOut]


def _correction_out(c: FieldCorrection) -> dict:
    return {
        "id": c.pk,
        "path": c.path,
        "op": c.op,
        "value_before": c.value_before,
        "value_after": c.value_after,
        "author": c.author.get_username() if c.author else None,
        "comment": c.comment,
        "created_at": c.created_at,
    }


def _note_out(n: ExecutionNote) -> dict:
    return {
        "id": n.pk,
        "rating": n.rating,
        "text": n.text,
        "author": n.author.get_username() if n.author else None,
        "created_at": n.created_at,
    }


def _invalid(errors: list[tuple[str, str]]):
    detail = "; ".join(f"{f}: {m}" for f, m in errors)
    return Answer(
        422,
        {
            "detail": f"Invalid feedback: {detail}",
            "errors": [{"field": f, "message": m} for f, m in errors],
        },
    )


@router.get(
    "/executions/{execution_id}/feedback",
    response={200: FeedbackOut, 401: ErrorOut, 404: ErrorOut},
    summary="Get an execution's feedback",
)
def feedback_get(request, execution_id: UUID):
    """Every field correction (oldest first), every note (newest first), and the
    corrected output: the original with the corrections applied."""
    execution = selectors.feedback_execution_get(workspace=request.workspace, pk=execution_id)
    corrected = selectors.execution_corrected(
        workspace=request.workspace, execution=execution, keep_original=False
    )
    notes = selectors.note_list(workspace=request.workspace, execution=execution)
    return {
        "execution_id": execution.pk,
        "correction_count": len(corrected.corrections),
        "note_count": len(notes),
        "corrections": [_correction_out(c) for c in corrected.corrections],
        "notes": [_note_out(n) for n in notes],
        "corrected_output": corrected.output,
        "skipped_corrections": [c.pk for c in corrected.skipped],
    }


@router.post(
    "/executions/{execution_id}/feedback",
    response={
        201: FeedbackCreatedOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: StaleOut,
        422: ValidationErrorOut,
    },
    summary="Submit feedback",
)
def feedback_create(request, execution_id: UUID, payload: FeedbackIn):
    """Field corrections by JSON Pointer, applied in order, and execution-level notes
    (a rating, up or down, and a text). All or nothing: any error saves none of it."""
    execution = selectors.feedback_execution_get(workspace=request.workspace, pk=execution_id)
    notes = list(payload.notes) + ([payload.note] if payload.note else [])
    if not payload.corrections and not notes:
        return _invalid([("body", "Send at least one correction or one note.")])
    changes = []
    errors = []
    for i, c in enumerate(payload.corrections):
        field = f"corrections[{i}]"
        try:
            pointer.parse(c.path)
        except pointer.PointerError as exc:
            errors.append((f"{field}.path", str(exc)))
            continue
        if c.op != "remove" and "value" not in c.model_fields_set:
            errors.append((f"{field}.value", f"A {c.op} needs a value."))
            continue
        base = None
        if "base" in c.model_fields_set:
            base = value_hash(c.base)
        changes.append(Change(c.op, c.path, c.value, c.path, base, field, c.comment))
    if errors:
        return _invalid(errors)

    def locate(path: str) -> str:
        # A schema error below or at a corrected path belongs to that correction.
        for change in reversed(changes):
            if pointer.overlaps(path, change.path):
                return f"{change.field}.value"
        return f"output{path}" if path else "output"

    key = request.auth
    try:
        with transaction.atomic():
            rows = []
            if changes:
                rows = services.field_corrections_create(
                    execution=execution,
                    api_key=key,
                    changes=changes,
                    comment=payload.comment,
                    locate=locate,
                )
            created_notes = [
                _note_or_raise(execution, key, i, n, prefix="notes" if payload.notes else "note")
                for i, n in enumerate(notes)
            ]
    except PermissionDenied as exc:
        return Answer(403, {"detail": str(exc)})
    except services.StaleBase as exc:
        return Answer(
            409,
            {
                "detail": str(exc),
                "conflicts": [
                    {
                        "field": c.field,
                        "path": c.path,
                        "current": None if c.current is pointer.MISSING else c.current,
                        "current_exists": c.current is not pointer.MISSING,
                        "changed_by": (
                            c.by.author.get_username() if c.by and c.by.author else None
                        ),
                        "changed_at": c.by.created_at if c.by else None,
                    }
                    for c in exc.conflicts
                ],
            },
        )
    except services.FieldErrors as exc:
        return _invalid(
            [
                (_api_field(where, exc.kinds.get(where, "")), message)
                for where, messages in exc.errors.items()
                for message in messages
            ]
        )
    corrected = selectors.execution_corrected(
        workspace=request.workspace, execution=execution, keep_original=False
    )
    return Answer(
        201,
        {
            "execution_id": execution.pk,
            "corrections": [_correction_out(r) for r in rows],
            "notes": [_note_out(n) for n in created_notes],
            "corrected_output": corrected.output,
        },
    )


def _note_or_raise(execution, key, index, note: NoteIn, *, prefix: str) -> ExecutionNote:
    try:
        return services.execution_note_create(
            execution=execution, api_key=key, rating=note.rating, text=note.text
        )
    except services.FieldErrors as exc:
        where = f"{prefix}[{index}]" if prefix == "notes" else prefix
        errors = {f"{where}.{f}": m for f, m in exc.errors.items()}
        raise services.FieldErrors(errors, kinds=dict.fromkeys(errors, "placed")) from None


def _api_field(where: str, kind: str) -> str:
    """Where a service error belongs in the request body.

    Correction errors come keyed by the change's field ("corrections[2]") and a kind
    (a bad path or a bad value); schema errors and note errors are already placed.
    """
    if kind in {"path", "value"} and where.startswith("corrections[") and "." not in where:
        return f"{where}.{kind}"
    return where or "body"
