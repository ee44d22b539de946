"""The execution detail page: header, failure box, panes in tabs, step timeline, artifacts.

One URL serves the page and every region htmx swaps in it, picked by HX-Target
(the pane, the step inspector, the next page of the timeline, the API panel),
so every state is a plain link that also works with JavaScript off. A
history-restore request always gets the whole page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from agents.decorators import with_workspace
from executions import selectors as shared_selectors
from executions.models import ArtifactKind, Execution
from feedback import grounding
from feedback import selectors as feedback_selectors
from feedback import views as feedback_views

from . import rendering, selectors
from .context import (
    CARD_HEAD_CHARS,
    CARD_LINES,
    CODE_MAX_BYTES,
    OUTPUT_HEAD_CHARS,
    Detail,
    artifact_view,
    card_context,
    decorate_steps,
    detail_for,
    inspector_context,
    live_context,
    run_window,
    step_conversation,
)
from .ranges import ranged_response
from .reproduce import redact_headers, reproduce_request

# Budgets of the regions that show payloads: lines of pretty JSON, and how many

# ---------------------------------------------------------------------------
# Request parameters


class BadParameter(Exception):
    """A query parameter the page cannot use; the message names it and says why."""


def _int_param(request: HttpRequest, name: str) -> int | None:
    raw = request.GET.get(name, "").strip()
    if raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"“{name}” must be a whole number, got “{raw[:40]}”.") from None
    if value < 0:
        raise BadParameter(f"“{name}” must be zero or more, got {value}.")
    return value


def _choice_param(request: HttpRequest, name: str, choices: tuple[str, ...], default: str) -> str:
    value = request.GET.get(name, "").strip() or default
    if value not in choices:
        raise BadParameter(f"“{name}” must be one of {', '.join(choices)}; got “{value[:40]}”.")
    return value


def _bad_request(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "executions/detail/bad_request.html", {"message": message}, status=400)


# ---------------------------------------------------------------------------
# Panes. Each tab is one line here: slug, label, template, context builder, and
# when it shows; the feedback work adds its Diff tab by adding a line.


@dataclass(frozen=True)
class Tab:
    slug: str
    label: str
    template: str
    context: Callable[[HttpRequest, Detail], dict]
    shown: Callable[[Detail], bool] = lambda detail: True
    count: Callable[[Detail], int | None] = lambda detail: None


def overview_context(request: HttpRequest, detail: Detail) -> dict:
    execution = detail.execution
    selected = _int_param(request, "step")
    after = _int_param(request, "after")
    failing_seq = detail.failing.sequence if detail.failing else None
    if selected is not None and "after" not in request.GET:
        after = selectors.step_window_start(execution=execution, sequence=selected)
    elif (
        "after" not in request.GET
        and not execution.is_terminal
        and detail.stats["total"] > selectors.STEP_PAGE_SIZE
    ):
        # Watching a run live is watching its newest steps: open on the tail.
        after = selectors.step_tail_start(execution=execution)
    page = selectors.step_page(execution=execution, after=after)
    decorate_steps(page.steps, execution)
    inspected = selected
    if inspected is None:
        inspected = failing_seq
    if inspected is None:
        inspected = selectors.step_latest_with_media(execution=execution)
    if inspected is None:
        # Nothing failed and nothing was seen: the last step is where the run ended up.
        inspected = detail.stats["last_sequence"]
    _start, total = run_window(execution)
    return {
        "page": page,
        "run_total_ms": total,
        **card_context(execution, selected=inspected, failing=failing_seq),
        **inspector_context(execution, inspected, pinned=selected is not None),
    }


def request_context(request: HttpRequest, detail: Detail) -> dict:
    execution = detail.execution
    reproduce = reproduce_request(execution, base_url=request.build_absolute_uri("/"))
    stored = execution.request if isinstance(execution.request, dict) else {}
    version = execution.agent_version
    inputs = execution.input if isinstance(execution.input, dict) else None
    return {
        "reproduce": reproduce,
        **api_panel_context(request, execution, reproduce),
        "stored_request": stored,
        "stored_headers": redact_headers(stored.get("headers")),
        "stored_body": rendering.json_html(stored.get("body"), max_lines=200)
        if stored.get("body") is not None
        else None,
        "input_rows": [
            (key, value if isinstance(value, str) else rendering.json_pretty(value))
            for key, value in (inputs or {}).items()
        ],
        "input_json": rendering.json_html(execution.input, max_lines=300),
        "metadata_rows": [
            (key, value if isinstance(value, str) else rendering.json_pretty(value))
            for key, value in (execution.metadata or {}).items()
        ],
        "version": version,
        "config_json": rendering.json_html(version.config, max_lines=300) if version else None,
        "input_schema_json": rendering.json_html(version.input_schema, max_lines=300)
        if version and version.input_schema
        else None,
        "output_schema_json": rendering.json_html(version.output_schema, max_lines=300)
        if version and version.output_schema
        else None,
        "approval_json": rendering.json_html(execution.approval_request, max_lines=100)
        if execution.approval_request
        else None,
    }


def api_panel_context(request: HttpRequest, execution: Execution, reproduce=None) -> dict:
    reproduce = reproduce or reproduce_request(execution, base_url=request.build_absolute_uri("/"))
    body_file = f"execution-{execution.short_id}-request.json"
    return {
        "reproduce": reproduce,
        "curl_text": reproduce.curl(body_file=body_file),
        "curl_html": rendering.highlight_code(
            reproduce.curl(body_file=body_file), language="bash", linenos=False
        ),
        "python_text": reproduce.python(),
        "python_html": rendering.highlight_code(
            reproduce.python(), language="python", linenos=False
        )
        if reproduce.body_inline
        else None,
        "body_file": body_file,
    }


def output_context(request: HttpRequest, detail: Detail) -> dict:
    execution = detail.execution
    view = _choice_param(request, "view", ("json", "markdown"), "json")
    full = request.GET.get("full") == "1"
    has_output = detail.has_output
    context: dict[str, Any] = {"view": view, "full": full, "has_output": has_output}
    # After review the corrected output is shown first; the original is one link away.
    corrected = has_output and bool(execution.correction_count)
    show = _choice_param(request, "show", ("corrected", "original"), "corrected")
    context["show"] = show if corrected else "original"
    context["corrected"] = corrected
    shown_output = None
    if corrected and show == "corrected":
        shown_output = feedback_selectors.execution_corrected(
            workspace=request.workspace, execution=execution
        ).output
    if has_output:
        if view == "json" and shown_output is not None:
            lines = None if full else rendering.DEFAULT_MAX_LINES
            context["json"] = rendering.json_html(
                shown_output, max_lines=lines, max_string=None if full else 4000
            )
        elif view == "json" and full:
            context["json"] = rendering.json_html(execution.output, max_lines=None, max_string=None)
        elif view == "json":
            head = selectors.execution_output_head(execution=execution, chars=OUTPUT_HEAD_CHARS)
            context["json"] = rendering.payload_view(head, OUTPUT_HEAD_CHARS)
        else:
            source, origin = rendering.markdown_source(
                shown_output if shown_output is not None else execution.output
            )
            context["raw"] = request.GET.get("raw") == "1"
            context["markdown_source"] = source
            context["markdown_origin"] = origin
            context["markdown_html"] = rendering.render_markdown(source)
    context["files"] = [artifact_view(a) for a in selectors.artifact_list(execution=execution)]
    # Grounded extraction: the image with its boxes beside the JSON, so each field's
    # confidence or accuracy is read next to its value (seed 000).
    context["grounded"] = [f for f in context["files"] if f["is_image"] and f["boxes"]][:2]
    context["box_accuracy"] = []
    if context["grounded"] and execution.correction_count:
        # Once a reviewer has corrected it, each box's accuracy beside its confidence.
        corrected = feedback_selectors.execution_corrected(
            workspace=request.workspace, execution=execution
        )
        accuracy = grounding.box_accuracy(
            corrected.original, corrected.output, {c.path for c in corrected.corrections}
        )
        by_label = {a.label: a for a in accuracy}
        for media in context["grounded"]:
            for box in media["boxes"]:
                box["accuracy"] = by_label.get(box["label"])
        context["box_accuracy"] = accuracy
    return context


def artifacts_context(request: HttpRequest, detail: Detail) -> dict:
    return {
        "artifacts": [artifact_view(a) for a in selectors.artifact_list(execution=detail.execution)]
    }


def recording_context(request: HttpRequest, detail: Detail) -> dict:
    """The run's video (the newest, if it made several) and its other recordings."""
    videos = [
        artifact_view(a)
        for a in selectors.artifact_list(execution=detail.execution)
        if a.kind == ArtifactKind.VIDEO or (a.content_type or "").startswith("video/")
    ]
    return {"recording": videos[-1] if videos else None, "other_recordings": videos[:-1]}


def code_context(request: HttpRequest, detail: Detail) -> dict:
    execution = detail.execution
    blocks = []
    output = execution.output
    if isinstance(output, dict) and isinstance(output.get("code"), str):
        language = output.get("language") if isinstance(output.get("language"), str) else ""
        blocks.append(
            {
                "name": "output.code",
                "text": output["code"],
                "html": rendering.highlight_code(output["code"], language=language),
                "artifact": None,
            }
        )
    if detail.artifact_counts.get(ArtifactKind.CODE):
        for artifact in selectors.artifact_list(execution=execution).filter(kind=ArtifactKind.CODE):
            text, cut = _read_text(artifact)
            blocks.append(
                {
                    "name": artifact.name,
                    "text": text,
                    "html": rendering.highlight_code(text, filename=artifact.name),
                    "artifact": artifact_view(artifact),
                    "cut": cut,
                }
            )
    return {"code_blocks": blocks}


def _read_text(artifact) -> tuple[str, bool]:
    try:
        with artifact.file.open("rb") as handle:
            data = handle.read(CODE_MAX_BYTES + 1)
    except (OSError, ValueError):
        return "(The file of this artifact is missing from storage.)", False
    return data[:CODE_MAX_BYTES].decode("utf-8", errors="replace"), len(data) > CODE_MAX_BYTES


TABS: tuple[Tab, ...] = (
    Tab("overview", "Overview", "executions/detail/overview.html", overview_context,
        count=lambda d: d.stats["total"]),
    Tab("request", "Request", "executions/detail/request.html", request_context),
    Tab("output", "Output", "executions/detail/output.html", output_context),
    Tab("artifacts", "Artifacts", "executions/detail/artifacts.html", artifacts_context,
        count=lambda d: d.artifact_total),
    Tab("recording", "Recording", "executions/detail/recording.html", recording_context),
    Tab("code", "Code", "executions/detail/code.html", code_context,
        shown=lambda d: d.has_code),
    Tab("form", "Form", "executions/detail/form.html", feedback_views.detail_form_pane),
    Tab("diff", "Diff", "feedback/detail_diff.html", feedback_views.detail_diff_pane,
        shown=lambda d: d.has_output,
        count=lambda d: d.execution.correction_count or None),
    Tab("notes", "Notes", "feedback/detail_notes.html", feedback_views.detail_notes_pane,
        count=lambda d: d.execution.note_count or None),
)  # fmt: skip
TAB_SLUGS = tuple(tab.slug for tab in TABS)


def _tab_links(detail: Detail, current: str) -> list[dict]:
    base = detail.execution.get_absolute_url()
    links = []
    for tab in TABS:
        if not tab.shown(detail) and tab.slug != current:
            continue
        links.append(
            {
                "slug": tab.slug,
                "label": tab.label,
                "url": f"{base}?tab={tab.slug}",
                "count": tab.count(detail),
                "current": tab.slug == current,
            }
        )
    return links


# ---------------------------------------------------------------------------
# Views


def _finish(response: HttpResponse) -> HttpResponse:
    # Same URL, different bodies for htmx (a region) and for browsers (the page).
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


@require_GET
@with_workspace
def execution_detail(request, pk):
    execution = selectors.execution_get_detail(workspace=request.workspace, pk=pk)
    try:
        slug = _choice_param(request, "tab", TAB_SLUGS, "overview")
        tab = next(t for t in TABS if t.slug == slug)
        detail = detail_for(execution)
        target = request.htmx.target if request.htmx else None
        partial = bool(request.htmx) and not request.htmx.history_restore_request
        if partial and target == "api-panel":
            return _finish(
                render(
                    request,
                    "executions/detail/api_panel.html",
                    {"execution": execution, **api_panel_context(request, execution)},
                )
            )
        pane = tab.context(request, detail)
    except BadParameter as exc:
        return _finish(_bad_request(request, str(exc)))
    context = {
        "execution": execution,
        "detail": detail,
        "stats": detail.stats,
        "tab": tab,
        "tabs": _tab_links(detail, tab.slug),
        "pane_template": tab.template,
        "detail_url": execution.get_absolute_url(),
        "stream_url": reverse("executions:stream", args=[execution.pk]),
        **pane,
    }
    if partial and target == "inspector" and tab.slug == "overview":
        return _finish(render(request, "executions/detail/inspector.html", context))
    if partial and target == "timeline-more" and tab.slug == "overview":
        return _finish(render(request, "executions/detail/timeline.html#page", context))
    if partial and target == "pane":
        return _finish(render(request, "executions/execution_detail.html#pane", context))
    context.update(live_context(detail))
    return _finish(render(request, "executions/execution_detail.html", context))


@require_GET
@with_workspace
def step_detail(request, pk, sequence):
    """One step with its full input and output: the expanded card (htmx) or its own page."""
    # The _detail getter leaves the run's own output in the database: a step needs none of it.
    execution = selectors.execution_get_detail(workspace=request.workspace, pk=pk)
    full = request.GET.get("full") == "1"
    step = selectors.step_get(
        execution=execution, sequence=sequence, head_chars=None if full else CARD_HEAD_CHARS
    )
    if full:
        payloads = {
            name: rendering.json_html(getattr(step, name), max_lines=None, max_string=None)
            if getattr(step, name) is not None
            else None
            for name in ("input", "output", "attributes")
        }
        if not step.attributes:
            payloads["attributes"] = None
    else:
        payloads = {
            name: rendering.payload_view(
                getattr(step, f"{name}_head"), CARD_HEAD_CHARS, max_lines=CARD_LINES
            )
            for name in ("input", "output", "attributes")
        }
        if step.attributes_head in ("{}", None):
            payloads["attributes"] = None
    context = {
        "execution": execution,
        "step": step,
        "full": full,
        "media": [artifact_view(a) for a in step.artifacts.all()],
        "step_url": reverse("executions:step", args=[execution.pk, step.sequence]),
        "detail_url": execution.get_absolute_url(),
        "step_input": payloads["input"],
        "step_output": payloads["output"],
        "step_attributes": payloads["attributes"],
        "convo": step_conversation(
            step, None if full else CARD_HEAD_CHARS, max_string=None if full else 4000
        ),
    }
    if request.htmx and not request.htmx.history_restore_request:
        return _finish(render(request, "executions/detail/step_body.html", context))
    return _finish(render(request, "executions/detail/step_page.html", context))


@require_GET
@with_workspace
def output_download(request, pk):
    """The whole output as a JSON file (the page shows a budget of it)."""
    execution = shared_selectors.execution_get(workspace=request.workspace, pk=pk)
    response = JsonResponse(
        execution.output, safe=False, json_dumps_params={"indent": 2, "ensure_ascii": False}
    )
    response["Content-Disposition"] = f'attachment; filename="execution-{execution.short_id}.json"'
    return response


@require_GET
@with_workspace
def request_body_download(request, pk):
    """The reproduce request's JSON body, for curl's --data @file when it is too big to inline."""
    execution = selectors.execution_get_detail(workspace=request.workspace, pk=pk)
    reproduce = reproduce_request(execution, base_url=request.build_absolute_uri("/"))
    response = HttpResponse(reproduce.body_json, content_type="application/json")
    response["Content-Disposition"] = (
        f'attachment; filename="execution-{execution.short_id}-request.json"'
    )
    return response


# Served inline only when a browser cannot run them; anything else (SVG, HTML,
# PDF...) is a download, so a hostile artifact cannot script the dashboard's origin.
INLINE_TYPES = {
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif",
    "video/mp4", "video/webm", "video/ogg", "text/plain",
}  # fmt: skip


@require_GET
@with_workspace
def artifact_download(request, pk):
    """An artifact's file, to members of its workspace only (others get a 404)."""
    artifact = shared_selectors.artifact_get(workspace=request.workspace, pk=pk)
    try:
        handle = artifact.file.open("rb")
    except (OSError, ValueError):
        raise Http404("The file of this artifact is missing from storage.") from None
    content_type = (artifact.content_type or "").split(";")[0].strip().lower()
    inline = content_type in INLINE_TYPES and request.GET.get("download") != "1"
    try:
        size = artifact.file.size
    except (OSError, ValueError):
        size = artifact.size
    # Range requests: a recording seeks without downloading all of it first.
    response = ranged_response(
        request,
        handle,
        size=size,
        as_attachment=not inline,
        filename=artifact.name or "artifact",
        content_type=content_type if content_type in INLINE_TYPES else "application/octet-stream",
    )
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
