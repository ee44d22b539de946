"""Reviewer feedback pages: the JSON form, the diff, original/corrected JSON, notes,
undo, and the JSONL export of corrected outputs.

Each pane view answers an htmx request with its partial and anything else with a
whole page, so every pane is a plain link that works with JavaScript off. Writes
answer htmx with the re-rendered pane (and a `feedback-changed` event so the
other panes refresh themselves), and plain POSTs with a redirect.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from agents.decorators import with_workspace
from agents.selectors import agent_get

from . import diffhtml, jsonform, pointer, selectors, services
from .diff import execution_diff
from .formhtml import Annotations, conflict_notes, render_counted
from .models import FieldCorrection

CHANGED_EVENT = "feedback-changed"


# ---------------------------------------------------------------------------- helpers


def _is_fragment(request: HttpRequest) -> bool:
    return bool(request.htmx) and not request.htmx.history_restore_request


def _respond(request: HttpRequest, pane: str, context: dict, status: int = 200) -> HttpResponse:
    context.setdefault("pane", pane)
    if _is_fragment(request):
        response = render(request, f"feedback/panes.html#{pane}", context, status=status)
    else:
        response = render(request, "feedback/page.html", context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


def _can_review(request: HttpRequest) -> bool:
    return bool(getattr(request, "membership", None) and request.membership.can_review)


def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    response = render(
        request, "feedback/forbidden.html", {"message": str(exc) or "Not allowed."}, status=403
    )
    patch_vary_headers(response, ("HX-Request",))
    return response


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("_next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _current_url(request: HttpRequest) -> str:
    htmx = getattr(request, "htmx", None)
    return (htmx.current_url_abs_path if htmx else None) or request.get_full_path()


def _execution(request: HttpRequest, pk):
    return selectors.feedback_execution_get(workspace=request.workspace, pk=pk)


# ---------------------------------------------------------------------------- form


def form_context(
    request: HttpRequest,
    execution,
    *,
    tree: jsonform.Node | None = None,
    notes: Annotations | None = None,
    corrected: selectors.Corrected | None = None,
    message: tuple[str, str] | None = None,
) -> dict:
    """What the form partial needs; the detail page's Form tab uses it too."""
    can_review = _can_review(request)
    context = {
        "execution": execution,
        "can_review": can_review,
        "form_message": message,
        "form_html": None,
        # Where a plain (no-JS) save returns to: the page the form is on, which after an
        # htmx swap is the browser's URL rather than this request's.
        "next_url": _current_url(request),
    }
    if execution.output is None:
        return context
    if corrected is None:
        corrected = selectors.execution_corrected(workspace=request.workspace, execution=execution)
    schema = execution.agent_version.output_schema if execution.agent_version else None
    if tree is None:
        tree = jsonform.build_tree(corrected.output, output_schema=schema)
    notes = notes or Annotations()
    notes.corrected = selectors.correction_marks(corrected)
    form_html, field_count = render_counted(tree, notes=notes, editable=can_review)
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    if can_review and limit and field_count + 10 > limit and message is None:
        # Django refuses a POST with more fields than this before any view runs.
        context["form_message"] = (
            "warning",
            f"This output has {field_count:,} form fields and the server accepts at most "
            f"{limit:,} in one request (DATA_UPLOAD_MAX_NUMBER_FIELDS), so saving this form "
            "would be refused. Ask an admin to raise that limit, or correct the fields "
            "through the API.",
        )
    context.update(
        form_html=form_html,
        correction_total=len(corrected.corrections),
        skipped=corrected.skipped,
        has_schema=bool(schema),
    )
    return context


@require_http_methods(["GET", "POST"])
@with_workspace
def feedback_form(request: HttpRequest, pk) -> HttpResponse:
    execution = _execution(request, pk)
    if request.method == "POST":
        return _form_post(request, execution)
    return _respond(request, "form", form_context(request, execution))


def _form_post(request: HttpRequest, execution) -> HttpResponse:
    try:
        services.require_reviewer(request.membership)
    except PermissionDenied as exc:
        return _forbidden(request, exc)
    fragment = _is_fragment(request)
    # htmx swaps only 2xx answers, so a refused save is a 200 for htmx and a 4xx otherwise.
    refused = 200 if fragment else 422
    try:
        parsed = jsonform.parse_form(request.POST)
    except jsonform.FormError as exc:
        context = form_context(request, execution, message=("error", f"Not saved: {exc}"))
        return _respond(request, "form", context, status=200 if fragment else 400)
    if parsed.errors:
        context = form_context(
            request,
            execution,
            tree=parsed.root,
            notes=Annotations(errors=parsed.errors),
            message=("error", "Not saved: fix the fields marked below."),
        )
        return _respond(request, "form", context, status=refused)
    changes = jsonform.changes(parsed.root)
    done_url = _next_url(request, reverse("feedback:form", args=[execution.pk]))
    if not changes:
        if not fragment:
            messages.info(request, "Nothing changed, so nothing was saved.")
            return redirect(done_url)
        context = form_context(request, execution, message=("info", "Nothing changed."))
        return _respond(request, "form", context)

    def locate(path: str) -> str:
        while path not in parsed.located and path:
            path = pointer.parent(path)[0]
        return parsed.located.get(path, "")

    try:
        rows = services.field_corrections_create(
            execution=execution,
            membership=request.membership,
            changes=changes,
            comment=request.POST.get("_comment", ""),
            locate=locate,
        )
    except services.StaleBase as exc:
        notes = conflict_notes(parsed.root, exc)
        context = form_context(
            request,
            execution,
            tree=parsed.root,
            notes=notes,
            message=(
                "error",
                "Not saved: another reviewer changed some of these fields after you opened "
                "the form. Their values are shown beside yours; save again to replace them "
                "with yours, or reload the form.",
            ),
        )
        return _respond(request, "form", context, status=200 if fragment else 409)
    except services.FieldErrors as exc:
        errors: dict[str, list[str]] = {}
        for where, msgs in exc.errors.items():
            errors.setdefault(where, []).extend(msgs)
        context = form_context(
            request,
            execution,
            tree=parsed.root,
            notes=Annotations(errors=errors),
            message=("error", "Not saved: fix the fields marked below."),
        )
        return _respond(request, "form", context, status=refused)
    text = f"Saved {len(rows)} correction{'' if len(rows) == 1 else 's'}."
    if not fragment:
        messages.success(request, text)
        return redirect(done_url)
    execution.refresh_from_db(fields=["correction_count"])
    response = _respond(
        request, "form", form_context(request, execution, message=("success", text))
    )
    return trigger_client_event(response, CHANGED_EVENT, {"corrections": len(rows)})


# ---------------------------------------------------------------------------- diff and JSON

# The diff pane's layouts; the last two are the original and corrected output as JSON.
DIFF_MODES = (
    ("inline", "Inline"),
    ("split", "Side by side"),
    ("original", "Original JSON"),
    ("corrected", "Corrected JSON"),
)
DIFF_MODE_SLUGS = tuple(slug for slug, _ in DIFF_MODES)


def diff_context(
    request: HttpRequest, execution, *, mode: str = "inline", href_base: str | None = None
) -> dict:
    """What the diff pane needs. Its links (and the URLs htmx pushes) stay on the run's
    own page, "?tab=diff&mode=...", even when the pane was fetched from its own URL,
    so a reload after "Side by side" opens the same page; htmx fetches the pane itself."""
    corrected = selectors.execution_corrected(workspace=request.workspace, execution=execution)
    pane_url = reverse("feedback:diff", args=[execution.pk])
    href_base = href_base or f"{execution.get_absolute_url()}?tab=diff&"
    context = {
        "execution": execution,
        "can_review": _can_review(request),
        "mode": mode,
        "modes": [
            {
                "slug": slug,
                "label": label,
                "href": f"{href_base}mode={slug}",
                "hx": f"{pane_url}?mode={slug}",
                "current": slug == mode,
            }
            for slug, label in DIFF_MODES
        ],
        "history": list(reversed(corrected.corrections)),
        "skipped": corrected.skipped,
        "next_url": _current_url(request),
    }
    if mode in {"original", "corrected"}:
        value = corrected.original if mode == "original" else corrected.output
        context["json_text"] = json.dumps(value, indent=2, ensure_ascii=False)
    else:
        diffs = execution_diff(corrected) if execution.output is not None else []
        context["diffs"] = diffs
        context["diff_rows"] = (diffhtml.split if mode == "split" else diffhtml.inline)(diffs)
        context["history_rows"] = diffhtml.history(
            context["history"],
            undoable=_undoable(corrected),
            can_review=context["can_review"],
            execution_pk=execution.pk,
            csrf_token=get_token(request),
            next_url=context["next_url"],
            mode=mode,
        )
    return context


def _undoable(corrected: selectors.Corrected) -> set[int]:
    """Corrections whose field still holds what they set: those an undo can revert."""
    out = set()
    for c in corrected.corrections:
        now = pointer.get(corrected.output, c.path, pointer.MISSING)
        if c.op == FieldCorrection.Op.REMOVE:
            in_list = pointer.parse(c.path)[-1].isdigit() if c.path else False
            if in_list or now is pointer.MISSING:
                out.add(c.pk)
        elif now is not pointer.MISSING and jsonform.same_value(now, c.value_after):
            out.add(c.pk)
    return out


def _diff_mode(request: HttpRequest) -> tuple[str, str | None]:
    mode = request.GET.get("mode", "") or "inline"
    if mode not in DIFF_MODE_SLUGS:
        return "inline", (f"Unknown diff layout “{mode[:40]}”: use {', '.join(DIFF_MODE_SLUGS)}.")
    return mode, None


@require_GET
@with_workspace
def feedback_diff(request: HttpRequest, pk) -> HttpResponse:
    execution = _execution(request, pk)
    mode, problem = _diff_mode(request)
    context = diff_context(request, execution, mode=mode)
    context["diff_message"] = problem
    return _respond(request, "diff", context, status=400 if problem else 200)


@require_POST
@with_workspace
def feedback_undo(request: HttpRequest, pk, correction_id: int) -> HttpResponse:
    execution = _execution(request, pk)
    correction = (
        selectors.correction_list(workspace=request.workspace, execution=execution)
        .filter(pk=correction_id)
        .first()
    )
    if correction is None:
        from django.http import Http404

        raise Http404("No such correction on this execution.")
    fragment = _is_fragment(request)
    done_url = _next_url(request, reverse("feedback:diff", args=[execution.pk]))
    try:
        services.field_correction_undo(
            execution=execution, membership=request.membership, correction=correction
        )
    except PermissionDenied as exc:
        return _forbidden(request, exc)
    except (services.StaleBase, services.FieldErrors) as exc:
        text = (
            f"Not undone: {correction.path} has changed since that correction. "
            "Undo the later correction first, or correct the field in the form."
            if isinstance(exc, services.StaleBase)
            else f"Not undone: {exc}"
        )
        if not fragment:
            messages.error(request, text)
            return redirect(done_url)
        context = diff_context(request, execution, mode=_posted_mode(request))
        context["diff_message"] = text
        return _respond(request, "diff", context)
    text = f"Undone: {correction.path or '(root)'} is back to its earlier value."
    if not fragment:
        messages.success(request, text)
        return redirect(done_url)
    context = diff_context(request, execution, mode=_posted_mode(request))
    context["diff_notice"] = text
    return trigger_client_event(_respond(request, "diff", context), CHANGED_EVENT, {})


def _posted_mode(request: HttpRequest) -> str:
    mode = request.POST.get("mode", "inline")
    return mode if mode in DIFF_MODE_SLUGS else "inline"


# ---------------------------------------------------------------------------- notes


def notes_context(request: HttpRequest, execution, **extra) -> dict:
    return {
        "execution": execution,
        "can_review": _can_review(request),
        "notes": list(selectors.note_list(workspace=request.workspace, execution=execution)),
        "note_errors": {},
        "note_values": {},
        **extra,
    }


@require_http_methods(["GET", "POST"])
@with_workspace
def feedback_notes(request: HttpRequest, pk) -> HttpResponse:
    execution = _execution(request, pk)
    if request.method == "GET":
        return _respond(request, "notes", notes_context(request, execution))
    fragment = _is_fragment(request)
    # The header's note button posts with target=note_form; the notes pane's form does not.
    pane = "note_form" if request.POST.get("_from") == "header" else "notes"
    try:
        services.execution_note_create(
            execution=execution,
            membership=request.membership,
            rating=request.POST.get("rating", ""),
            text=request.POST.get("text", ""),
        )
    except PermissionDenied as exc:
        return _forbidden(request, exc)
    except services.FieldErrors as exc:
        context = notes_context(
            request,
            execution,
            note_errors=exc.errors,
            note_values={
                "rating": request.POST.get("rating", ""),
                "text": request.POST.get("text", ""),
            },
            note_open=True,
        )
        return _respond(
            request, pane if fragment else "notes", context, status=200 if fragment else 422
        )
    if not fragment:
        messages.success(request, "Note saved.")
        return redirect(_next_url(request, reverse("feedback:notes", args=[execution.pk])))
    context = notes_context(request, execution, note_saved=True)
    return trigger_client_event(_respond(request, pane, context), CHANGED_EVENT, {})


# ---------------------------------------------------------------------------- export


@require_GET
@with_workspace
def corrected_export(request: HttpRequest, slug: str, version_id: int) -> HttpResponse:
    agent = agent_get(workspace=request.workspace, slug=slug)
    version = selectors.agent_version_get(workspace=request.workspace, agent=agent, pk=version_id)
    include = request.GET.get("include", "corrected")
    if include not in {"corrected", "reviewed"}:
        return HttpResponse(
            f"Unknown include “{include[:40]}”: use corrected or reviewed.\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    rows = selectors.corrected_export_rows(
        workspace=request.workspace, version=version, include_reviewed=include == "reviewed"
    )
    lines = (json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson; charset=utf-8")
    filename = f"{agent.slug}-{version.version}-corrected.jsonl".replace('"', "")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# ---------------------------------------------------------------------- the detail page's tabs
# Context builders for executions/detail/views.py's tab list: (request, detail) -> context.


def detail_form_pane(request: HttpRequest, detail) -> dict:
    return form_context(request, detail.execution)


def detail_diff_pane(request: HttpRequest, detail) -> dict:
    mode, problem = _diff_mode(request)
    context = diff_context(request, detail.execution, mode=mode)
    context["diff_message"] = problem
    return context


def detail_notes_pane(request: HttpRequest, detail) -> dict:
    return notes_context(request, detail.execution)
