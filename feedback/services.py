"""Writes of reviewer feedback: field corrections, undo, execution notes.

Corrections are history: each save adds rows and never edits one. A save is all
or nothing: a stale base, an unknown path or a schema violation refuses the whole
save and stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from agents.models import ApiKey, Membership
from executions.models import Execution

from . import pointer
from .jsonform import ABSENT, Change, same_value, value_hash
from .models import ExecutionNote, FieldCorrection
from .schema import validation_errors
from .selectors import Corrected, corrected_output

MAX_NOTE_LENGTH = 10_000
MAX_COMMENT_LENGTH = 2_000
MAX_CHANGES = 5_000


class WrongType(pointer.PointerError):
    """A value whose JSON type is not the one the field has (when there is no schema)."""


class FeedbackError(Exception):
    """A save that was refused; nothing was stored."""


class FieldErrors(FeedbackError):
    """Bad values or paths, by the form field (or API item) they belong to."""

    def __init__(self, errors: dict[str, list[str]], *, kinds: dict[str, str] | None = None):
        self.errors = errors
        # Per field: "path" (no such place), "value" (wrong type, schema violation) or
        # "save" (the request as a whole), so the API can name the part at fault.
        self.kinds = kinds or {}
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
            when = f" on {timezone.localtime(self.by.created_at):%Y-%m-%d at %H:%M}"
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
    """A value for a message: a string in quotes as people write them, anything else as JSON."""
    import json

    if isinstance(value, str):
        text = value if len(value) <= limit else value[: limit - 1] + "…"
        return f"“{text}”"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def require_reviewer(membership: Membership | None) -> None:
    if membership is None or not membership.can_review:
        raise PermissionDenied(
            "Only reviewers and admins of this workspace can correct outputs or leave notes."
        )


def _author(membership: Membership | None, api_key: ApiKey | None):
    """Who writes: a reviewer or admin in the dashboard, or a workspace API key.

    A key is the workspace's own credential (admins create it), so it may submit
    feedback; what it writes is credited to the person who created the key.
    """
    if api_key is not None and membership is None:
        if not api_key.is_active:
            raise PermissionDenied("This API key has been revoked.")
        return api_key.created_by
    require_reviewer(membership)
    return membership.user


def _locked(execution: Execution) -> Execution:
    # One save at a time per execution, so two reviewers' bases are checked in turn.
    return (
        Execution.objects.select_for_update(of=("self",))
        .select_related("agent_version")
        .only("id", "workspace_id", "output", "agent_version__output_schema")
        .get(pk=execution.pk)
    )


def field_corrections_create(
    *,
    execution: Execution,
    membership: Membership | None = None,
    api_key: ApiKey | None = None,
    changes: list[Change],
    comment: str = "",
    locate: Callable[[str], str] | None = None,
) -> list[FieldCorrection]:
    """Store one FieldCorrection per change that changes something.

    Raises StaleBase when a change's base is no longer the current value, FieldErrors
    for paths that do not exist and for schema violations the changes introduce
    (`locate` maps a path of the corrected output to the field to report it on).
    """
    author = _author(membership, api_key)
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
            FieldCorrection.objects.filter(workspace_id=locked.workspace_id, execution=locked)
            .select_related("author")
            .order_by("created_at", "id")
        )
        state = corrected_output(locked.output, history)
        _check_bases(state, changes)
        schema = locked.agent_version.output_schema if locked.agent_version else None
        errors_before = validation_errors(state.output, schema) if schema else {}
        doc, rows, errors, kinds = _apply(
            state.output, changes, locked, author, comment, typed=not schema
        )
        if errors:
            raise FieldErrors(errors, kinds=kinds)
        if schema:
            introduced = _introduced(errors_before, validation_errors(doc, schema), locate)
            if introduced:
                raise FieldErrors(introduced, kinds=dict.fromkeys(introduced, "value"))
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


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _apply(doc, changes, execution, author, comment, *, typed: bool):
    """Apply the changes in order; `typed` keeps each replaced value's JSON type, which
    is what stands in for a schema when the version has none (null goes either way)."""
    rows: list[FieldCorrection] = []
    errors: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
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
                    pointer.get(doc, ch.path)  # raises, saying which step of the path fails
                if same_value(before, ch.value):
                    continue
                was_type, new_type = _json_type(before), _json_type(ch.value)
                if typed and was_type != new_type and "null" not in (was_type, new_type):
                    raise WrongType(
                        f"Expected {_a(was_type)} like the value there now, got {_a(new_type)}."
                    )
                doc = pointer.replace(doc, ch.path, _copy(ch.value))
            elif op == "add":
                if ch.path == "":
                    raise pointer.PointerError("The whole output can only be replaced.")
                doc = pointer.add(doc, ch.path, _copy(ch.value))
            elif op == "remove":
                if before is pointer.MISSING:
                    pointer.get(doc, ch.path)
                doc = pointer.remove(doc, ch.path)
            else:
                raise pointer.PointerError(f"Unknown operation {op!r}: use replace, add or remove.")
        except pointer.PointerError as exc:
            where = ch.field or ch.path
            errors.setdefault(where, []).append(str(exc))
            kinds[where] = "value" if isinstance(exc, WrongType) else "path"
            continue
        rows.append(
            FieldCorrection(
                workspace_id=execution.workspace_id,
                execution_id=execution.pk,
                path=ch.path,
                op=op,
                value_before=None if op == "add" else before,
                value_after=None if op == "remove" else _copy(ch.value),
                author=author,
                comment=ch.comment or comment,
                created_at=now,
            )
        )
    return doc, rows, errors, kinds


def _a(json_type: str) -> str:
    return f"an {json_type}" if json_type[0] in "aeiou" else f"a {json_type}"


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
    *,
    execution: Execution,
    correction: FieldCorrection,
    membership: Membership | None = None,
    api_key: ApiKey | None = None,
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
        api_key=api_key,
        changes=[change],
        comment=f"Undo of the correction made on {correction.created_at:%Y-%m-%d %H:%M:%S}",
    )


def execution_note_create(
    *,
    execution: Execution,
    membership: Membership | None = None,
    api_key: ApiKey | None = None,
    rating: str = "",
    text: str = "",
) -> ExecutionNote:
    author = _author(membership, api_key)
    errors: dict[str, list[str]] = {}
    rating = (rating or "").strip()
    try:
        # The form field's validators refuse a NUL, which PostgreSQL text cannot hold.
        text = forms.CharField(required=False).clean(text or "")
    except ValidationError as exc:
        errors["text"] = exc.messages
        text = ""
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
            author=author,
            rating=rating,
            text=text,
        )
        Execution.objects.filter(pk=execution.pk).update(note_count=F("note_count") + 1)
    return note
