"""Review queue pages: My reviews, Start (claim next), the review page (the run beside
the rubric; Submit and next, Skip), lock renewal, a queue's progress and agreement,
resolution of disputes, the JSONL export.

Every write is a plain form POST answered by a redirect, so the whole flow works
with JavaScript off; static/js/queues.js only renews the lock while the page is open
and adds keyboard shortcuts.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from agents.decorators import with_workspace
from feedback import pointer

from . import rubric, selectors, services
from .models import QueueItem


def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return render(
        request, "feedback/forbidden.html", {"message": str(exc) or "Not allowed."}, status=403
    )


@require_GET
@with_workspace
def my_reviews(request: HttpRequest) -> HttpResponse:
    queues = selectors.queue_list(membership=request.membership)
    return render(request, "queues/my_reviews.html", {"queues": queues})


def _claim_and_go(request: HttpRequest, queue) -> HttpResponse:
    review = services.claim_next(queue=queue, membership=request.membership)
    if review is None:
        messages.info(request, f"Nothing left for you in {queue.name}.")
        return redirect("queues:mine")
    return redirect("queues:review", pk=review.pk)


@require_POST
@with_workspace
def queue_start(request: HttpRequest, pk: int) -> HttpResponse:
    queue = selectors.queue_get(workspace=request.workspace, pk=pk)
    try:
        return _claim_and_go(request, queue)
    except PermissionDenied as exc:
        return _forbidden(request, exc)


def _field_rows(review, output, posted=None, errors=None):
    posted, errors = posted or {}, errors or {}
    saved = review.fields or {}
    rows = []
    for i, ptr in enumerate(rubric.review_fields(review.item.queue.fields, output)):
        value = pointer.get(output, ptr, pointer.MISSING) if output is not None else None
        shown = "" if value is pointer.MISSING else _text(value)
        entry = saved.get(ptr, {})
        verdict = posted.get(f"v-{i}", entry.get("verdict", "ok"))
        corrected = posted.get(f"x-{i}", _text(entry["value"]) if "value" in entry else shown)
        rows.append(
            {
                "i": i,
                "ptr": ptr,
                "label": ptr or "(whole output)",
                "value": shown,
                "missing": value is pointer.MISSING,
                "verdict": verdict,
                "corrected": corrected,
                "error": errors.get(f"field:{ptr}", ""),
            }
        )
    return rows


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _parse_fields(review, output, data) -> tuple[dict, dict]:
    """The posted verdicts: a corrected value is text where the field held text, else
    JSON (so 12 stays a number and "12" can still be typed as a string). An edited
    value counts as a correction even if its "Corrected to" button was not pressed."""
    fields, errors = {}, {}
    for i, ptr in enumerate(rubric.review_fields(review.item.queue.fields, output)):
        verdict = data.get(f"v-{i}", "ok")
        raw = data.get(f"x-{i}")
        was = pointer.get(output, ptr, pointer.MISSING) if output is not None else None
        shown = "" if was is pointer.MISSING else _text(was)
        if verdict == "ok" and raw is not None and raw != shown:
            verdict = "corrected"
        if verdict != "corrected":
            fields[ptr] = {"verdict": verdict}
            continue
        raw = raw or ""
        if isinstance(was, str):
            fields[ptr] = {"verdict": "corrected", "value": raw}
            continue
        try:
            fields[ptr] = {"verdict": "corrected", "value": json.loads(raw)}
        except ValueError:
            errors[f"field:{ptr}"] = 'Enter a JSON value (a number, true, null, "text"...).'
    return fields, errors


def _answers(queue, data) -> dict:
    return {q["key"]: data.get(f"q-{q['key']}", "") for q in queue.questions}


@require_http_methods(["GET", "POST"])
@with_workspace
def review_page(request: HttpRequest, pk: int) -> HttpResponse:
    review = selectors.review_get(membership=request.membership, pk=pk)
    item, queue = review.item, review.item.queue
    output = item.execution.output
    errors: dict = {}
    posted = None
    if request.method == "POST":
        try:
            if request.POST.get("action") == "skip":
                services.review_skip(review=review, membership=request.membership)
                return _claim_and_go(request, queue)
            fields, errors = _parse_fields(review, output, request.POST)
            if not errors:
                services.review_submit(
                    review=review,
                    membership=request.membership,
                    fields=fields,
                    answers=_answers(queue, request.POST),
                )
                if request.POST.get("action") == "done":
                    messages.success(request, "Review saved.")
                    return redirect("queues:mine")
                return _claim_and_go(request, queue)
        except PermissionDenied as exc:
            return _forbidden(request, exc)
        except services.QueueError as exc:
            errors = exc.errors
        posted = request.POST
    context = {
        "review": review,
        "queue": queue,
        "execution": item.execution,
        "rows": _field_rows(review, output, posted, errors),
        "questions": [
            {
                **q,
                "answer": (posted or {}).get(f"q-{q['key']}", review.answers.get(q["key"], "")),
                "error": errors.get(f"answer:{q['key']}", ""),
            }
            for q in queue.questions
        ],
        "general_error": errors.get("", ""),
        "output_json": json.dumps(output, indent=2, ensure_ascii=False),
        "input_json": json.dumps(item.execution.input, indent=2, ensure_ascii=False),
        "renew_every": max(queue.lock_seconds // 3, 20),
    }
    status = 400 if errors else 200
    return render(request, "queues/review.html", context, status=status)


@require_POST
@with_workspace
def review_renew(request: HttpRequest, pk: int) -> HttpResponse:
    review = selectors.review_get(membership=request.membership, pk=pk)
    try:
        services.review_renew(review=review, membership=request.membership)
    except services.QueueError as exc:
        return JsonResponse({"error": str(exc)}, status=409)
    return JsonResponse({"expires_at": review.expires_at.isoformat()})


@require_GET
@with_workspace
def queue_detail(request: HttpRequest, pk: int) -> HttpResponse:
    queue = selectors.queue_get(workspace=request.workspace, pk=pk)
    context = {
        "queue": queue,
        "progress": selectors.queue_progress(queue=queue),
        "agreement": selectors.queue_agreement(queue=queue),
        "disputed": selectors.disputed_items(queue=queue),
        "is_admin": request.membership.role == "admin",
    }
    return render(request, "queues/queue.html", context)


@require_GET
@with_workspace
def queue_export(request: HttpRequest, pk: int) -> HttpResponse:
    queue = selectors.queue_get(workspace=request.workspace, pk=pk)
    response = StreamingHttpResponse(
        selectors.export_lines(queue=queue), content_type="application/x-ndjson"
    )
    response["Content-Disposition"] = f'attachment; filename="queue-{queue.pk}.jsonl"'
    return response


@require_http_methods(["GET", "POST"])
@with_workspace
def item_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    item = selectors.item_get(workspace=request.workspace, pk=pk)
    queue, output = item.queue, item.execution.output
    field_list = rubric.review_fields(queue.fields, output)
    reviews = list(
        item.reviews.filter(submitted_at__isnull=False, skipped=False).select_related("reviewer")
    )
    disputed = services.disputed_fields(field_list, reviews)
    errors: dict = {}
    if request.method == "POST":
        values = {}
        for i, ptr in enumerate(disputed):
            pick = request.POST.get(f"pick-{i}", "")
            if pick == "ok":
                values[ptr] = {"verdict": "ok"}
            elif pick.startswith("r"):
                chosen = next((r for r in reviews if f"r{r.pk}" == pick), None)
                entry = chosen.fields.get(ptr) if chosen else None
                values[ptr] = entry or {"verdict": "ok"}
        try:
            services.item_resolve(item=item, membership=request.membership, values=values)
            messages.success(request, "Resolved: the picked values are the corrections of record.")
            return redirect("queues:detail", pk=queue.pk)
        except PermissionDenied as exc:
            return _forbidden(request, exc)
        except services.QueueError as exc:
            errors = exc.errors
    rows = []
    for i, ptr in enumerate(disputed):
        options = [
            {
                "value": f"r{r.pk}",
                "who": r.reviewer.username,
                "text": _text(r.fields[ptr]["value"])
                if r.fields.get(ptr, {}).get("verdict") == "corrected"
                else "(left unchanged)",
            }
            for r in reviews
        ]
        original = pointer.get(output, ptr, pointer.MISSING) if output is not None else None
        rows.append(
            {
                "i": i,
                "ptr": ptr,
                "original": "(missing)" if original is pointer.MISSING else _text(original),
                "options": options,
                "error": errors.get(f"field:{ptr}", ""),
            }
        )
    return render(
        request,
        "queues/resolve.html",
        {
            "item": item,
            "queue": queue,
            "rows": rows,
            "general_error": errors.get("", ""),
            "resolvable": item.state == QueueItem.State.DISPUTED,
        },
        status=400 if errors else 200,
    )


# Params of the table that are not filters: sort, page size and cursor.
NOT_FILTERS = {"sort", "per_page", "page", "after", "before", "all", "ids", "queue", "part"}
MAX_SELECTED = 500


@require_http_methods(["GET", "POST"])
@with_workspace
def queue_add(request: HttpRequest) -> HttpResponse:
    """The table's "Add to queue": the ticked rows (`ids`), or with `all=1` every run the
    table's filters match. GET shows what would be added and the queues to pick from;
    the confirmation POSTs. Works without JavaScript."""
    data = request.POST if request.method == "POST" else request.GET
    whole = data.get("all") == "1"
    filters = {k: data.getlist(k) for k in data if k not in NOT_FILTERS | {"csrfmiddlewaretoken"}}
    errors: dict[str, str] = {}
    if whole:
        params = QueryDict(mutable=True)
        for key, values in filters.items():
            params.setlist(key, values)
        try:
            runs = selectors.filtered_runs(workspace=request.workspace, params=params)
        except selectors.BadFilters as exc:
            errors.update(exc.errors)
            runs = None
        ids = []
    else:
        ids, bad = [], []
        for raw in data.getlist("ids")[:MAX_SELECTED]:
            try:
                ids.append(uuid.UUID(raw))
            except ValueError:
                bad.append(raw)
        if bad:
            errors["ids"] = f"Not execution ids: {', '.join(map(repr, bad[:3]))}."
        elif not ids:
            errors["ids"] = "Tick the runs to add first, or add every run the filters match."
        runs = selectors.runs_by_ids(workspace=request.workspace, ids=ids)
    queues = selectors.queue_list(membership=request.membership)
    if request.method == "POST" and not errors:
        try:
            queue = selectors.queue_get(workspace=request.workspace, pk=data.get("queue"))
        except Http404:
            errors["queue"] = "Pick one of this workspace's queues."
        else:
            try:
                added = services.items_add(
                    queue=queue, membership=request.membership, executions=runs
                )
            except PermissionDenied as exc:
                return _forbidden(request, exc)
            except services.QueueError as exc:
                errors.update(exc.errors)
            else:
                messages.success(
                    request, f"Added {added} run{'s' if added != 1 else ''} to {queue.name}."
                )
                return redirect("queues:detail", pk=queue.pk)
    context = {
        "whole": whole,
        "filters": [(k, v) for k, values in filters.items() for v in values] if whole else [],
        "ids": ids,
        "count": runs.count() if runs is not None else 0,
        "queues": queues,
        "errors": errors,
        "back": reverse("executions:list")
        + (f"?{urlencode(filters, doseq=True)}" if whole else ""),
    }
    return render(request, "queues/add.html", context, status=400 if errors else 200)


def _json_list(text: str, name: str, errors: dict):
    if not text.strip():
        return []
    try:
        value = json.loads(text)
    except ValueError as exc:
        errors[name] = f"Not JSON: {exc}."
        return None
    return value


@require_http_methods(["GET", "POST"])
@with_workspace
def queue_new(request: HttpRequest) -> HttpResponse:
    """Admins create a queue: name, instructions, reviewers per item, lock, rubric
    (fields one pointer a line; questions as JSON), assignees."""
    try:
        services.require_queue_admin(request.membership)
    except PermissionDenied as exc:
        return _forbidden(request, exc)
    reviewers = selectors.reviewer_memberships(workspace=request.workspace)
    data = request.POST if request.method == "POST" else {}
    errors: dict[str, str] = {}
    if request.method == "POST":
        fields = [line.strip() for line in data.get("fields", "").splitlines() if line.strip()]
        questions = _json_list(data.get("questions", ""), "questions", errors)
        chosen = {str(v) for v in request.POST.getlist("assignees")}
        if not errors:
            try:
                queue = services.queue_create(
                    membership=request.membership,
                    name=data.get("name", ""),
                    instructions=data.get("instructions", ""),
                    reviewers_per_item=data.get("reviewers_per_item", "1"),
                    lock_seconds=data.get("lock_seconds") or None,
                    fields=fields,
                    questions=questions,
                    assignees=[m for m in reviewers if str(m.pk) in chosen],
                )
            except services.QueueError as exc:
                errors.update(exc.errors)
            else:
                messages.success(request, f"Queue {queue.name} created.")
                return redirect("queues:detail", pk=queue.pk)
    context = {
        "data": data,
        "errors": errors,
        "reviewers": reviewers,
        "chosen": set(request.POST.getlist("assignees")) if request.method == "POST" else set(),
    }
    return render(request, "queues/new.html", context, status=400 if errors else 200)
