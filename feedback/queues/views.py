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
from feedback import formhtml, jsonform, pointer
from feedback.formhtml import Annotations, conflict_notes
from feedback.selectors import correction_marks
from feedback.services import FieldErrors, StaleBase

from . import formreview, rubric, selectors, services
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


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _shown(doc, ptr: str) -> tuple[str, bool]:
    value = pointer.get(doc, ptr, pointer.MISSING) if doc is not None else pointer.MISSING
    return ("", True) if value is pointer.MISSING else (_text(value), False)


def _field_rows(review, output, record, tree, posted=None, errors=None):
    """One row per rubric field: what the agent said, what the record says now (when a
    correction changed it), the verdict, and a text box only for a field the Form
    cannot show (missing from the output)."""
    posted, errors = posted or {}, errors or {}
    saved = review.fields or {}
    rows = []
    for i, ptr in enumerate(rubric.review_fields(review.item.queue.fields, output)):
        shown, missing = _shown(output, ptr)
        now, _ = _shown(record, ptr)
        entry = saved.get(ptr, {})
        rows.append(
            {
                "i": i,
                "ptr": ptr,
                "label": ptr or "(whole output)",
                "value": shown,
                "missing": missing,
                "record": now if now != shown else None,
                "in_form": tree is not None and jsonform.find(tree, ptr) is not None,
                "verdict": posted.get(f"v-{i}", entry.get("verdict", "ok")),
                "typed": posted.get(f"x-{i}", ""),
                "error": errors.get(f"field:{ptr}", ""),
            }
        )
    return rows


def _typed(review, output, data, errors: dict) -> dict:
    """Values typed in the rubric for fields the Form does not show: text where the
    agent gave text, else JSON (so 12 stays a number and "12" can be typed as a
    string)."""
    typed = {}
    for i, ptr in enumerate(rubric.review_fields(review.item.queue.fields, output)):
        raw = (data.get(f"x-{i}") or "").strip()
        if not raw:
            continue
        was = pointer.get(output, ptr, pointer.MISSING) if output is not None else None
        if isinstance(was, str):
            typed[ptr] = raw
            continue
        try:
            typed[ptr] = json.loads(raw)
        except ValueError:
            errors[f"field:{ptr}"] = 'Enter a JSON value (a number, true, null, "text"...).'
    return typed


def _answers(queue, data) -> dict:
    return {q["key"]: data.get(f"q-{q['key']}", "") for q in queue.questions}


def _form_notes(errors: dict) -> Annotations:
    """Rubric errors shown on the Form's fields too, where the value is edited."""
    return Annotations(
        errors={k.removeprefix("field:"): [v] for k, v in errors.items() if k.startswith("field:")}
    )


def _submit(request: HttpRequest, review, output) -> tuple[HttpResponse | None, dict]:
    """Submit the review page's one form: the Form tab's fields and the rubric. Returns
    (a redirect, {}) when saved, else (None, what to show again)."""
    queue = review.item.queue
    field_list = rubric.review_fields(queue.fields, output)
    parsed = None
    if output is not None:
        try:
            parsed = jsonform.parse_form(request.POST)
        except jsonform.FormError as exc:
            return None, {"errors": {"": f"Not saved: {exc}"}}
        if parsed.errors:
            return None, {
                "errors": {"": "Not saved: fix the fields marked in the Form."},
                "tree": parsed.root,
                "notes": Annotations(errors=parsed.errors),
            }
    errors: dict = {}
    typed = _typed(review, output, request.POST, errors)
    tree = parsed.root if parsed else None
    if errors:
        return None, {"errors": errors, "tree": tree, "notes": _form_notes(errors)}
    changes = jsonform.changes(parsed.root) if parsed else []

    def locate(path: str) -> str:
        while parsed and path not in parsed.located and path:
            path = pointer.parent(path)[0]
        return parsed.located.get(path, "") if parsed else path

    try:
        formreview.review_submit_form(
            review=review,
            membership=request.membership,
            root=tree,
            changes=changes,
            marks={ptr: request.POST.get(f"v-{i}", "ok") for i, ptr in enumerate(field_list)},
            typed=typed,
            answers=_answers(queue, request.POST),
            comment=request.POST.get("_comment", ""),
            locate=locate,
        )
    except StaleBase as exc:
        return None, {
            "errors": {
                "": "Not saved: another reviewer changed some of these fields after you "
                "opened the run. Their values are shown beside yours; submit again to "
                "replace them with yours."
            },
            "tree": tree,
            "notes": conflict_notes(tree, exc),
        }
    except FieldErrors as exc:
        errors = {"": "Not saved: fix the fields marked in the Form."}
        return None, {"errors": errors, "tree": tree, "notes": Annotations(errors=exc.errors)}
    except services.QueueError as exc:
        errors = {"": "Not saved: fix the fields marked below.", **exc.errors}
        return None, {"errors": errors, "tree": tree, "notes": _form_notes(exc.errors)}
    if request.POST.get("action") == "done":
        messages.success(request, "Review saved.")
        return redirect("queues:mine"), {}
    return _claim_and_go(request, queue), {}


@require_http_methods(["GET", "POST"])
@with_workspace
def review_page(request: HttpRequest, pk: int) -> HttpResponse:
    """The run's Form tab (the feedback app's JSON form, so what the reviewer changes
    there is an ordinary correction) beside the rubric, in one plain form: Submit and
    next, Skip and every verdict work without JavaScript."""
    review = selectors.review_get(membership=request.membership, pk=pk)
    item, queue = review.item, review.item.queue
    execution = item.execution
    output = execution.output
    shown: dict = {}
    if request.method == "POST":
        try:
            if request.POST.get("action") == "skip":
                services.review_skip(review=review, membership=request.membership)
                return _claim_and_go(request, queue)
            done, shown = _submit(request, review, output)
            if done is not None:
                return done
        except PermissionDenied as exc:
            return _forbidden(request, exc)
        except services.QueueError as exc:
            shown = {"errors": exc.errors}
    errors = shown.get("errors", {})
    posted = request.POST if request.method == "POST" else None
    corrected = selectors.review_record(review=review)
    schema = execution.agent_version.output_schema if execution.agent_version else None
    tree = shown.get("tree")
    if tree is None and output is not None:
        tree = jsonform.build_tree(corrected.output, output_schema=schema)
    form_html = None
    if tree is not None:
        notes = shown.get("notes") or Annotations()
        notes.corrected = correction_marks(corrected)
        form_html = formhtml.render(tree, notes=notes, editable=True)
    context = {
        "review": review,
        "queue": queue,
        "execution": execution,
        "form_html": form_html,
        "has_schema": bool(schema),
        "correction_total": len(corrected.corrections),
        "tab": request.GET.get("tab") if request.GET.get("tab") in RUN_TABS else "form",
        "rows": _field_rows(review, output, corrected.output, tree, posted, errors),
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
        "input_json": json.dumps(execution.input, indent=2, ensure_ascii=False),
        "renew_every": max(queue.lock_seconds // 3, 20),
        "held": queue.reviewers_per_item > 1,
    }
    status = 400 if errors else 200
    return render(request, "queues/review.html", context, status=status)


# The run's panes on the review page; with JavaScript they switch in place.
RUN_TABS = ("form", "output", "input")


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
