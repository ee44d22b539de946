"""What a queue's rubric asks of one run: the output fields to check and the
questions, and the checks on a reviewer's answers (each error names its field)."""

from __future__ import annotations

import math
from typing import Any

from feedback import pointer

QUESTION_KINDS = ("choice", "number", "text")
MAX_TEXT_ANSWER = 2_000
MAX_FIELDS = 200


def leaves(value: Any, ptr: str = "") -> list[str]:
    """Every leaf of a JSON value (scalars, empty containers), as JSON Pointers."""
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in leaves(v, pointer.join(ptr, k))]
    if isinstance(value, list) and value:
        return [p for i, v in enumerate(value) for p in leaves(v, pointer.join(ptr, i))]
    return [ptr]


def review_fields(fields: list[str], output: Any) -> list[str]:
    """The queue's fields, or every leaf of the output when it names none."""
    if fields:
        return list(fields)
    if output is None:
        return []
    return leaves(output)[:MAX_FIELDS]


def check_fields(fields: Any) -> list[str]:
    errors = []
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        return ["A list of JSON Pointers, such as /total."]
    if len(fields) > MAX_FIELDS:
        errors.append(f"At most {MAX_FIELDS} fields.")
    for f in fields:
        try:
            pointer.parse(f)
        except pointer.PointerError as exc:
            errors.append(f"{f!r}: {exc}")
    return errors


def check_questions(questions: Any) -> list[str]:
    if not isinstance(questions, list):
        return ["A list of questions: {key, label, kind: choice|number|text, choices}."]
    errors, keys = [], set()
    for i, q in enumerate(questions):
        where = f"question {i + 1}"
        if not isinstance(q, dict):
            errors.append(f"{where}: an object with key, label and kind.")
            continue
        key = q.get("key")
        if not isinstance(key, str) or not key.strip() or len(key) > 100:
            errors.append(f"{where}: key must be a short text.")
        elif key in keys:
            errors.append(f"{where}: key {key!r} is used twice.")
        keys.add(key)
        if q.get("kind") not in QUESTION_KINDS:
            errors.append(f"{where}: kind must be one of {', '.join(QUESTION_KINDS)}.")
        if q.get("kind") == "choice":
            choices = q.get("choices")
            if (
                not isinstance(choices, list)
                or not choices
                or not all(isinstance(c, str) for c in choices)
            ):
                errors.append(f"{where}: a choice question needs a list of choices (texts).")
    return errors


def clean_answers(questions: list[dict], raw: dict[str, Any]) -> tuple[dict, dict[str, str]]:
    """Answers by question key, typed; errors by question key. Blank means unanswered."""
    answers, errors = {}, {}
    known = {q["key"] for q in questions}
    for key in raw:
        if key not in known:
            errors[key] = "This queue asks no such question."
    for q in questions:
        value = raw.get(q["key"])
        if value is None or value == "":
            if q.get("required"):
                errors[q["key"]] = "This question needs an answer."
            continue
        kind = q["kind"]
        if kind == "choice":
            if value not in q["choices"]:
                errors[q["key"]] = f"Pick one of: {', '.join(q['choices'])}."
            else:
                answers[q["key"]] = value
        elif kind == "number":
            try:
                number = float(value) if not isinstance(value, bool) else math.nan
            except (TypeError, ValueError):
                number = math.nan
            if not math.isfinite(number):
                errors[q["key"]] = "Enter a finite number."
            else:
                answers[q["key"]] = int(number) if number.is_integer() else number
        else:
            if not isinstance(value, str):
                errors[q["key"]] = "Enter text."
            elif len(value) > MAX_TEXT_ANSWER:
                errors[q["key"]] = f"Keep it under {MAX_TEXT_ANSWER} characters."
            else:
                answers[q["key"]] = value.strip()
    return answers, errors


def clean_verdicts(fields: list[str], raw: dict[str, Any]) -> tuple[dict, dict[str, str]]:
    """{pointer: {"verdict", "value"?}} for the rubric's fields; errors by pointer."""
    verdicts, errors = {}, {}
    allowed = set(fields)
    for ptr, entry in raw.items():
        if ptr not in allowed:
            errors[ptr] = "Not a field this queue checks."
            continue
        if not isinstance(entry, dict) or entry.get("verdict") not in ("ok", "corrected"):
            errors[ptr] = 'verdict must be "ok" or "corrected".'
            continue
        if entry["verdict"] == "corrected":
            if "value" not in entry:
                errors[ptr] = "A corrected field needs its value."
                continue
            verdicts[ptr] = {"verdict": "corrected", "value": entry["value"]}
        else:
            verdicts[ptr] = {"verdict": "ok"}
    return verdicts, errors


def field_label(ptr: str) -> str:
    """Array indexes folded to "*", so agreement per field adds up over list items."""
    return "/".join("*" if t.isdigit() else t for t in ptr.split("/")) or "(root)"


def schema_fields(schema: Any, ptr: str = "", depth: int = 0) -> list[str]:
    """The fields an output schema declares, as JSON Pointers a rubric can name: each
    property of an object, down to its scalars; a list is one field (its rows are not
    known before the run)."""
    if not isinstance(schema, dict) or depth > 8:
        return [ptr] if ptr else []
    props = schema.get("properties")
    if schema.get("type") == "object" or isinstance(props, dict):
        out = []
        for key, sub in (props or {}).items():
            out.extend(schema_fields(sub, pointer.join(ptr, key), depth + 1))
        return out[:MAX_FIELDS] if out or not ptr else [ptr]
    return [ptr] if ptr else []
