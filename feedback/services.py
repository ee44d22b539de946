"""Writes of reviewer feedback: field corrections, undo, execution notes.

Corrections are history: each save adds rows and never edits one. A save is all
or nothing: a stale base, an unknown path or a schema violation refuses the whole
save and stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from agents.models import Membership
from executions.models import Execution

from . import pointer
from .jsonform import ABSENT, Change, same_value, value_hash
from .models import ExecutionNote, FieldCorrection
from .schema import validation_errors
from .selectors import Corrected, corrected_output

MAX_NOTE_LENGTH = 10_000
MAX_COMMENT_LENGTH = 2_000
MAX_CHANGES = 5_000


class FeedbackError(Exception):
    """A save that was refused; nothing was stored."""


class FieldErrors(FeedbackError):
    """Bad values or paths, by the form field (or API item) they belong to."""

    def __init__(self, errors: dict[str, list[str]], *, unknown_path: bool = False):
        self.errors = errors
        self.unknown_path = unknown_path
        first = next(iter(errors.items()), ("", [""]))
        super().__init__(f"{first[0] or '(root)'}: {first[1][0]}")


@dataclass
class Conflict:
    field: str
    path: str
    current: Any  # pointer.MISSING when the place is gone
    by: FieldCorrection | None

    @property
    def message(self) -> str:
        where = self.path or "The output"
        if self.by is not None:
            who = self.by.author.get_username() if self.by.author else "someone"
            when = f" on {timezone.localtime(self.by.created_at):%d/%m/%Y at %H:%M}"
        else:
            who, when = "the agent run", ""
        if self.current is pointer.MISSING:
            return f"{where} was removed by {who}{when} after you opened the form."
        return f"{where} was changed to {_short(self.current)} by {who}{when} after you opened it."


class StaleBase(FeedbackError):
    def __init__(self, conflicts: list[Conflict]):
        self.conflicts = conflicts
        super().__init__(
            "Not saved: someone changed these fields after you opened them. "
            + " ".join(c.message for c in conflicts[:3])
        )


def _short(value: Any, limit: int = 60) -> str:
    import json

    text = json.dumps(value, ensure_ascii=False)
    return f"“{text if len(text) <= limit else text[: limit - 1] + '…'}”"


def require_reviewer(membership: Membership | None) -> None:
    if membership is None or not membership.can_review:
        raise PermissionDenied(
            "Only reviewers and admins of this workspace can correct outputs or leave notes."
        )


def _locked(execution: Execution) -> Execution:
    # One save at a time per execution, so two reviewers' bases are checked in turn.
    return (
        Execution.objects.select_for_update()
        .select_related("agent_version")
        .only("id", "workspace_id", "output", "agent_version__output_schema")
        .get(pk=execution.pk)
    )


def field_corrections_create(
    *,
    execution: Execution,
    membership: Membership,
    changes: list[Change],
    comment: str = "",
    locate: Callable[[str], str] | None = None,
) -> list[FieldCorrection]:
    """Store one FieldCorrection per change that changes something.

    Raises StaleBase when a change's base is no longer the current value, FieldErrors
    for paths that do not exist and for schema violations the changes introduce
    (`locate` maps a path of the corrected output to the field to report it on).
    """
    require_reviewer(membership)
    if len(changes) > MAX_CHANGES:
        raise FieldErrors({"": [f"At most {MAX_CHANGES} changes can be saved at once."]})
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT_LENGTH:
        raise FieldErrors({"comment": [f"Keep the comment under {MAX_COMMENT_LENGTH} characters."]})
    locate = locate or (lambda path: path)
    with transaction.atomic():
        locked = _locked(execution)
        if locked.output is None:
            raise FieldErrors({"": ["This execution has no output to correct."]})
        history = list(
            FieldCorrection.objects.filter(execution=locked)
            .select_related("author")
            .order_by("created_at", "id")
        )
        state = corrected_output(locked.output, history)
        _check_bases(state, changes)
        schema = locked.agent_version.output_schema if locked.agent_version else None
        errors_before = validation_errors(state.output, schema) if schema else {}
        doc, rows, errors = _apply(state.output, changes, locked, membership, comment)
        if errors:
            raise FieldErrors(errors, unknown_path=True)
        if schema:
            introduced = _introduced(errors_before, validation_errors(doc, schema), locate)
            if introduced:
                raise FieldErrors(introduced)
        if rows:
            FieldCorrection.objects.bulk_create(rows)
            Execution.objects.filter(pk=locked.pk).update(
                correction_count=F("correction_count") + len(rows)
            )
    return rows


def _check_bases(state: Corrected, changes: list[Change]) -> None:
    conflicts = []
    for ch in changes:
        if ch.base_hash is None:
            continue
        current = pointer.get(state.output, ch.base_path, pointer.MISSING)
        if value_hash(current) == ch.base_hash:
            continue
        # Both reviewers made the same fix: nothing to refuse.
        if (
            ch.op in {"replace", "add"}
            and ch.path == ch.base_path
            and (current is not pointer.MISSING and same_value(current, ch.value))
        ):
            continue
        if ch.op == "remove" and ch.path == ch.base_path and current is pointer.MISSING:
            continue
        conflicts.append(Conflict(ch.field, ch.base_path, current, state.last_touch(ch.base_path)))
    if conflicts:
        raise StaleBase(conflicts)


def _apply(doc, changes, execution, membership, comment):
    rows: list[FieldCorrection] = []
    errors: dict[str, list[str]] = {}
    now = timezone.now()
    for ch in changes:
        before = pointer.get(doc, ch.path, pointer.MISSING)
        op = ch.op
        try:
            if op == "add" and ch.path and before is not pointer.MISSING:
                container = pointer.get(doc, pointer.parent(ch.path)[0])
                if isinstance(container, dict):
                    op = "replace"  # adding a key that is there replaces it, as in JSON Patch
            if op == "replace":
                if before is pointer.MISSING:
                    raise pointer.PointerError(f"{ch.path or '(root)'} does not exist.")
                if same_value(before, ch.value):
                    continue
                doc = pointer.replace(doc, ch.path, _copy(ch.value))
            elif op == "add":
                if ch.path == "":
                    raise pointer.PointerError("The whole output can only be replaced.")
                doc = pointer.add(doc, ch.path, _copy(ch.value))
            elif op == "remove":
                if before is pointer.MISSING:
                    raise pointer.PointerError(f"{ch.path or '(root)'} does not exist.")
                doc = pointer.remove(doc, ch.path)
            else:
                raise pointer.PointerError(f"Unknown operation {op!r}: use replace, add or remove.")
        except pointer.PointerError as exc:
            errors.setdefault(ch.field or ch.path, []).append(str(exc))
            continue
        rows.append(
            FieldCorrection(
                workspace_id=execution.workspace_id,
                execution_id=execution.pk,
                path=ch.path,
                op=op,
                value_before=None if op == "add" else before,
                value_after=None if op == "remove" else _copy(ch.value),
                author=membership.user,
                comment=comment,
                created_at=now,
            )
        )
    return doc, rows, errors


def _copy(value):
    import copy

    return copy.deepcopy(value) if isinstance(value, dict | list) else value


def _introduced(before: dict, after: dict, locate) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for path, messages in after.items():
        old = set(before.get(path, ()))
        for message in messages:
            if message not in old:
                out.setdefault(locate(path), []).append(message)
    return out


def field_correction_undo(
    *, execution: Execution, membership: Membership, correction: FieldCorrection
) -> list[FieldCorrection]:
    """Undo one correction by making a new one back to its earlier value.

    Refused as stale when the field has changed since that correction.
    """
    if correction.execution_id != execution.pk:
        raise FieldErrors({"": ["That correction belongs to another execution."]})
    path = correction.path
    if correction.op == FieldCorrection.Op.REMOVE:
        # An object key must still be absent; a list row goes back where it was, however
        # the list has changed since (that is what undoing a removal means).
        in_list = pointer.parse(path)[-1].isdigit() if path else False
        change = Change(
            "add", path, correction.value_before, path, None if in_list else ABSENT, path
        )
    elif correction.op == FieldCorrection.Op.ADD:
        change = Change("remove", path, None, path, value_hash(correction.value_after), path)
    else:
        change = Change(
            "replace",
            path,
            correction.value_before,
            path,
            value_hash(correction.value_after),
            path,
        )
    return field_corrections_create(
        execution=execution,
        membership=membership,
        changes=[change],
        comment=f"Undo of the correction made on {correction.created_at:%d/%m/%Y %H:%M:%S}",
    )


def execution_note_create(
    *, execution: Execution, membership: Membership, rating: str = "", text: str = ""
) -> ExecutionNote:
    require_reviewer(membership)
    rating = (rating or "").strip()
    text = (text or "").strip()
    errors: dict[str, list[str]] = {}
    if rating not in {"", *ExecutionNote.Rating.values}:
        errors["rating"] = ["Choose thumbs up (up) or thumbs down (down)."]
    if len(text) > MAX_NOTE_LENGTH:
        errors["text"] = [f"Keep the note under {MAX_NOTE_LENGTH:,} characters."]
    if not rating and not text and not errors:
        errors["text"] = ["Give a rating or write a note."]
    if errors:
        raise FieldErrors(errors)
    with transaction.atomic():
        note = ExecutionNote.objects.create(
            workspace_id=execution.workspace_id,
            execution=execution,
            author=membership.user,
            rating=rating,
            text=text,
        )
        Execution.objects.filter(pk=execution.pk).update(note_count=F("note_count") + 1)
    return note
