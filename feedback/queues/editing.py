"""Admins create and edit a review queue in the dashboard: name, instructions,
reviewers per item, lock, the rubric (fields picked from the versions' output schemas,
or typed, or none for every field; questions row by row) and the assignees.

A plain form: JavaScript adds nothing here. Every error names its field and is shown
beside it.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_http_methods

from agents.decorators import with_workspace

from . import rubric, selectors, services

# Blank question rows offered below the queue's own; more after a save.
BLANK_QUESTIONS = 2


def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return render(
        request, "feedback/forbidden.html", {"message": str(exc) or "Not allowed."}, status=403
    )


def _question_rows(data) -> tuple[list[dict], list[dict], dict[str, str]]:
    """(rows as typed, the questions they make, errors by row) from the posted rows
    qn-<i>-key/label/kind/choices/required. A blank row is no question; a row without
    a key takes one from its label."""
    try:
        count = min(int(data.get("qn-count", 0)), 50)
    except ValueError:
        count = 0
    rows, questions, errors, keys = [], [], {}, set()
    for i in range(count):
        row = {
            "i": i,
            "key": data.get(f"qn-{i}-key", "").strip(),
            "label": data.get(f"qn-{i}-label", "").strip(),
            "kind": data.get(f"qn-{i}-kind", "text"),
            "choices": data.get(f"qn-{i}-choices", "").strip(),
            "required": data.get(f"qn-{i}-required") == "on",
        }
        rows.append(row)
        if not (row["key"] or row["label"] or row["choices"]):
            continue
        key = row["key"] or slugify(row["label"]).replace("-", "_")[:100]
        question = {"key": key, "label": row["label"] or key, "kind": row["kind"]}
        if row["kind"] == "choice":
            question["choices"] = [c.strip() for c in row["choices"].split(",") if c.strip()]
        if row["required"]:
            question["required"] = True
        problems = [p.partition(": ")[2] for p in rubric.check_questions([question])]
        if key in keys:
            problems.append(f"key {key!r} is used twice.")
        keys.add(key)
        if problems:
            errors[f"question-{i}"] = " ".join(problems)
        questions.append(question)
    return rows, questions, errors


def _rows_of(questions: list[dict]) -> list[dict]:
    return [
        {
            "i": i,
            "key": q.get("key", ""),
            "label": q.get("label", ""),
            "kind": q.get("kind", "text"),
            "choices": ", ".join(q.get("choices", [])),
            "required": bool(q.get("required")),
        }
        for i, q in enumerate(questions)
    ]


def _blank_rows(rows: list[dict]) -> list[dict]:
    start = len(rows)
    blank = {"key": "", "label": "", "kind": "text", "choices": "", "required": False}
    return rows + [{"i": start + k, **blank} for k in range(BLANK_QUESTIONS)]


@require_http_methods(["GET", "POST"])
@with_workspace
def queue_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    try:
        services.require_queue_admin(request.membership)
    except PermissionDenied as exc:
        return _forbidden(request, exc)
    queue = selectors.queue_get(workspace=request.workspace, pk=pk) if pk else None
    reviewers = selectors.reviewer_memberships(workspace=request.workspace)
    offered = selectors.schema_field_choices(workspace=request.workspace)
    offered_set = {f for group in offered for f in group.fields}
    errors: dict[str, str] = {}
    if request.method == "POST":
        data = request.POST
        picked = data.getlist("field")
        typed = [line.strip() for line in data.get("fields_other", "").splitlines()]
        fields = list(dict.fromkeys([*picked, *(t for t in typed if t)]))
        rows, questions, errors = _question_rows(data)
        chosen = set(data.getlist("assignees"))
        values = {
            "name": data.get("name", ""),
            "instructions": data.get("instructions", ""),
            "reviewers_per_item": data.get("reviewers_per_item", "1"),
            "lock_seconds": data.get("lock_seconds") or None,
            "fields": fields,
            "questions": questions,
            "assignees": [m for m in reviewers if str(m.pk) in chosen],
        }
        if errors:
            # Every other field is checked too, so one save shows every mistake.
            try:
                services.queue_check(
                    workspace=request.workspace, queue=queue, **{**values, "questions": []}
                )
            except services.QueueError as exc:
                errors.update(exc.errors)
            errors["questions"] = "Fix the questions marked below."
        else:
            values["membership"] = request.membership
            try:
                if queue is None:
                    saved = services.queue_create(**values)
                else:
                    saved = services.queue_update(queue=queue, **values)
            except services.QueueError as exc:
                errors = exc.errors
            else:
                verb = "created" if queue is None else "saved"
                messages.success(request, f"Queue {saved.name} {verb}.")
                return redirect("queues:detail", pk=saved.pk)
        form = {
            "name": data.get("name", ""),
            "instructions": data.get("instructions", ""),
            "reviewers_per_item": data.get("reviewers_per_item", ""),
            "lock_seconds": data.get("lock_seconds", ""),
        }
    else:
        fields = list(queue.fields) if queue else []
        rows = _rows_of(queue.questions) if queue else []
        chosen = {str(m.pk) for m in queue.assignees.all()} if queue else set()
        form = {
            "name": queue.name if queue else "",
            "instructions": queue.instructions if queue else "",
            "reviewers_per_item": queue.reviewers_per_item if queue else 1,
            "lock_seconds": queue.lock_seconds if queue else 1800,
        }
    question_rows = rows if request.method == "POST" else _blank_rows(rows)
    for row in question_rows:
        row["error"] = errors.get(f"question-{row['i']}", "")
    context = {
        "queue": queue,
        # Question rows' errors show in their rows; the list at the top names them.
        "top_errors": [
            (f"Question {int(k[9:]) + 1}" if k.startswith("question-") else k, v)
            for k, v in errors.items()
        ],
        "form": form,
        "errors": errors,
        "offered": offered,
        "picked": {f for f in fields if f in offered_set},
        "fields_other": "\n".join(f for f in fields if f not in offered_set),
        "question_rows": question_rows,
        "kinds": rubric.QUESTION_KINDS,
        "reviewers": reviewers,
        "chosen": chosen,
    }
    return render(request, "queues/queue_form.html", context, status=400 if errors else 200)
