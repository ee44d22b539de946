"""The execution detail page: header, failure box, panes in tabs, step timeline, artifacts.

One URL serves the page and every region htmx swaps in it, picked by HX-Target
(the pane, the step inspector, the next page of the timeline, the API panel),
so every state is a plain link that also works with JavaScript off. A
history-restore request always gets the whole page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from agents.decorators import with_workspace
from feedback import views as feedback_views

from .. import rendering, selectors
from ..models import ArtifactKind, Execution, Status, Step, StepKind, StepStatus
from ..reproduce import redact_headers, reproduce_request
from ..templatetags.runboard import compact, duration, usd

# Budgets of the regions that show payloads: lines of pretty JSON, and how many
# characters of the JSON text the database sends for them (a line is rarely > 100).
INSPECTOR_LINES = 80
INSPECTOR_HEAD_CHARS = 16_000
CARD_LINES = 400
CARD_HEAD_CHARS = 64_000
FAILURE_INPUT_LINES = 40
OUTPUT_PREVIEW_LINES = 14
OUTPUT_HEAD_CHARS = 256_000
CODE_MAX_BYTES = 512 * 1024

BAD_OUTCOMES = {Status.FAILED, Status.TIMED_OUT, Status.REJECTED, Status.CANCELLED}


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
# What the page knows about one execution, shared by the header and every pane


@dataclass
class Detail:
    execution: Execution
    stats: dict
    artifact_counts: dict[str, int]
    failing: Step | None = None

    @property
    def has_code(self) -> bool:
        if self.artifact_counts.get(ArtifactKind.CODE):
            return True
        if hasattr(self.execution, "output_has_code"):  # execution_get_detail asked the database
            return bool(self.execution.output_has_code)
        output = self.execution.output
        return isinstance(output, dict) and isinstance(output.get("code"), str)

    @property
    def has_output(self) -> bool:
        """Whether there is an output, without loading it (it may be megabytes)."""
        if hasattr(self.execution, "output_stored"):  # execution_get_detail asked the database
            return self.execution.output_stored is not None
        return self.execution.output is not None

    @property
    def artifact_total(self) -> int:
        return sum(self.artifact_counts.values())


def _failed_badly(execution: Execution) -> bool:
    # A cancel is news only when something went wrong with it; the other bad ends always are.
    return execution.status in BAD_OUTCOMES and bool(
        execution.error or execution.failure_reason or execution.status != Status.CANCELLED
    )


def detail_for(execution: Execution) -> Detail:
    detail = Detail(
        execution=execution,
        stats=selectors.step_stats(execution=execution),
        artifact_counts=selectors.artifact_kind_counts(execution=execution),
    )
    if _failed_badly(execution) and detail.stats["failed"]:
        detail.failing = selectors.step_failing(execution=execution)
    return detail


def outcome_context(detail: Detail) -> dict:
    """The summary, the output preview and, when it went wrong, the Failure Reason box."""
    execution = detail.execution
    context: dict[str, Any] = {"failure": None, "output_preview": None, "output_large": False}
    if hasattr(execution, "output_stored"):
        # A big output gets no preview here (see selectors.PREVIEW_MAX_STORED).
        context["output_large"] = execution.output_stored is not None and (
            execution.output_head is None
        )
        context["output_preview"] = rendering.payload_view(
            execution.output_head,
            selectors.OUTPUT_PREVIEW_CHARS,
            max_lines=OUTPUT_PREVIEW_LINES,
            max_string=300,
        )
    elif execution.output is not None:
        context["output_preview"] = rendering.json_html(
            execution.output, max_lines=OUTPUT_PREVIEW_LINES, max_string=300
        )
    if _failed_badly(execution):
        failing = detail.failing
        failure: dict[str, Any] = {"step": failing, "before": [], "input": None}
        if failing is not None:
            failure["before"] = selectors.steps_before(
                execution=execution, sequence=failing.sequence
            )
            failure["input"] = rendering.payload_view(
                failing.input_head,
                selectors.FAILING_INPUT_CHARS,
                max_lines=FAILURE_INPUT_LINES,
                max_string=600,
            )
            failure["input_source"] = f"step #{failing.sequence}"
        elif execution.input is not None:
            failure["input"] = rendering.json_html(
                execution.input, max_lines=FAILURE_INPUT_LINES, max_string=600
            )
            failure["input_source"] = "the execution"
        context["failure"] = failure
    return context


def header_context(execution: Execution) -> dict:
    reruns = list(execution.reruns.order_by("-created_at").only("id", "status", "created_at")[:5])
    return {"reruns": reruns}


def live_context(detail: Detail) -> dict:
    """Everything the regions that update live need (see stream.py)."""
    return {
        "execution": detail.execution,
        "detail": detail,
        "stats": detail.stats,
        "detail_url": detail.execution.get_absolute_url(),
        **header_context(detail.execution),
        **outcome_context(detail),
    }


# ---------------------------------------------------------------------------
# Timeline cards


KIND_GLYPHS = {
    StepKind.THOUGHT: "T",
    StepKind.MODEL_CALL: "M",
    StepKind.TOOL_CALL: "ƒ",
    StepKind.ACTION: "A",
    StepKind.BLOCK: "B",
    StepKind.GUARDRAIL: "G",
    StepKind.APPROVAL: "?",  # a checkpoint asks a person; emoji glyphs are missing from many fonts
    StepKind.OTHER: "•",
}


def artifact_url(pk) -> str:
    return reverse("executions:artifact", args=[pk])


def _pct(value: float) -> str:
    return f"{min(max(value, 0.0), 100.0):.2f}%"


def run_window(execution: Execution) -> tuple[datetime | None, float]:
    """Start of the run and its length in ms, the scale of the duration waterfall."""
    start = execution.started_at or execution.created_at
    end = execution.completed_at or timezone.now()
    total = (end - start).total_seconds() * 1000 if start else 0
    if execution.duration_ms:
        total = max(total, float(execution.duration_ms))
    return start, max(total, 1.0)


# The preview of a payload too big to preview (a JSON string, as heads are JSON text).
LARGE_PAYLOAD = '"(a large payload: expand the card to read it)"'

KIND_LABELS = dict(StepKind.choices)
STATUS_LABELS = dict(StepStatus.choices)
IO_LABELS = {
    StepKind.TOOL_CALL: ("args", "result"),
    StepKind.MODEL_CALL: ("prompt", "reply"),
}


def decorate_steps(steps: list[Step], execution: Execution) -> None:
    """Attach everything a card shows, worked out here rather than in the template.

    A page of cards is the hot path of the first paint: Python builds each label
    once, and the card template only prints them.
    """
    start, total = run_window(execution)
    base = f"{execution.get_absolute_url()}?tab=overview&step="
    body = f"{execution.get_absolute_url()}steps/"
    for step in steps:
        kind = step.kind
        step.glyph = KIND_GLYPHS.get(kind, "•")
        step.css = f"step kind-{kind} st-{step.status} d{min(getattr(step, 'depth', 0), 8)}"
        step.href = f"{base}{step.sequence}"
        step.body_url = f"{body}{step.sequence}/"
        step.kind_label = KIND_LABELS.get(kind, kind)
        step.status_label = STATUS_LABELS.get(step.status, step.status)
        step.title = step.name or "(unnamed)"
        if step.duration_ms is not None:
            step.dur_label = duration(step.duration_ms)
        else:
            step.dur_label = "running…" if step.status == StepStatus.RUNNING else ""
        meta = []
        if step.model:
            meta.append(("chip chip-model", step.model))
        if step.prompt_tokens or step.completion_tokens:
            meta.append(
                ("", f"{compact(step.prompt_tokens)} → {compact(step.completion_tokens)} tok")
            )
        if step.cost_usd:
            meta.append(("", usd(step.cost_usd)))
        child_count = getattr(step, "child_count", 0)
        if child_count:
            meta.append(("", f"{child_count} step{'s' if child_count != 1 else ''} inside"))
        step.meta = meta
        head_in = getattr(step, "input_head", None)
        head_out = getattr(step, "output_head", None)
        step.in_label, step.out_label = IO_LABELS.get(kind, ("in", "out"))
        if head_in is None and getattr(step, "input_stored", None):
            head_in = LARGE_PAYLOAD
        if head_out is None and getattr(step, "output_stored", None):
            head_out = LARGE_PAYLOAD
        if kind == StepKind.THOUGHT:
            step.preview_main = rendering.preview_from_head(head_out or head_in, 400)
            step.preview_in = step.preview_out = ""
        else:
            step.preview_main = ""
            step.preview_in = rendering.preview_from_head(head_in, 200)
            step.preview_out = rendering.preview_from_head(head_out, 200)
        step.error_preview = rendering.truncate(step.error, 300) if step.error else ""
        step.bar = None
        if start and step.started_at:
            offset = (step.started_at - start).total_seconds() * 1000
            length = step.duration_ms or (
                ((step.ended_at - step.started_at).total_seconds() * 1000) if step.ended_at else 0
            )
            step.bar = {"x": _pct(offset / total * 100), "w": _pct(max(length / total * 100, 0.4))}
        images = [a for a in step.artifacts.all() if a.is_image]
        step.thumb_url = artifact_url(images[0].pk) if images else ""


def card_context(execution: Execution, *, selected: int | None, failing: int | None) -> dict:
    return {
        "execution": execution,
        "detail_url": execution.get_absolute_url(),
        "artifact_base": reverse("executions:artifact", args=[execution.pk]).rsplit("/", 2)[0]
        + "/",
        "selected_seq": selected,
        "failing_seq": failing,
    }


def artifact_view(artifact) -> dict:
    """An artifact ready for the page: URLs, and boxes as SVG percentages."""
    boxes = []
    for box in artifact.bounding_boxes or []:
        if not isinstance(box, dict):
            continue
        try:
            x, y = float(box.get("x", 0)), float(box.get("y", 0))
            w, h = float(box.get("width", 0)), float(box.get("height", 0))
        except (TypeError, ValueError):
            continue
        score = box.get("confidence", box.get("accuracy"))
        try:
            score = float(score) if score is not None else None
        except (TypeError, ValueError):
            score = None
        level = (
            "none"
            if score is None
            else "high"
            if score >= 0.9
            else "mid"
            if score >= 0.7
            else "low"
        )
        boxes.append(
            {
                "label": str(box.get("label", ""))[:80],
                "x": _pct(x * 100),
                "y": _pct(y * 100),
                "w": _pct(w * 100),
                "h": _pct(h * 100),
                "score": score,
                "score_name": "accuracy"
                if "accuracy" in box and "confidence" not in box
                else "confidence",
                "level": level,
            }
        )
    url = artifact_url(artifact.pk)
    return {
        "obj": artifact,
        "url": url,
        "download_url": f"{url}?download=1",
        "boxes": boxes,
        "is_image": artifact.is_image,
        "is_video": artifact.is_video,
    }


def inspector_context(execution: Execution, sequence: int | None, *, pinned: bool) -> dict:
    if sequence is None:
        return {"inspected": None, "pinned": pinned}
    step = selectors.step_get(
        execution=execution, sequence=sequence, head_chars=INSPECTOR_HEAD_CHARS
    )
    media = [artifact_view(a) for a in step.artifacts.all()]
    return {
        "inspected": step,
        "inspected_glyph": KIND_GLYPHS.get(step.kind, "•"),
        "pinned": pinned,
        "media": media,
        "step_input": rendering.payload_view(
            step.input_head, INSPECTOR_HEAD_CHARS, max_lines=INSPECTOR_LINES, max_string=800
        ),
        "step_output": rendering.payload_view(
            step.output_head, INSPECTOR_HEAD_CHARS, max_lines=INSPECTOR_LINES, max_string=800
        ),
        "step_url": reverse("executions:step", args=[execution.pk, step.sequence]),
    }


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
    if has_output:
        if view == "json" and full:
            context["json"] = rendering.json_html(execution.output, max_lines=None, max_string=None)
        elif view == "json":
            head = selectors.execution_output_head(execution=execution, chars=OUTPUT_HEAD_CHARS)
            context["json"] = rendering.payload_view(head, OUTPUT_HEAD_CHARS)
        else:
            source, origin = rendering.markdown_source(execution.output)
            context["raw"] = request.GET.get("raw") == "1"
            context["markdown_source"] = source
            context["markdown_origin"] = origin
            context["markdown_html"] = rendering.render_markdown(source)
    context["files"] = [artifact_view(a) for a in selectors.artifact_list(execution=execution)]
    # Grounded extraction: the image with its boxes beside the JSON, so each field's
    # confidence or accuracy is read next to its value (seed 000).
    context["grounded"] = [f for f in context["files"] if f["is_image"] and f["boxes"]][:2]
    return context


def artifacts_context(request: HttpRequest, detail: Detail) -> dict:
    return {
        "artifacts": [artifact_view(a) for a in selectors.artifact_list(execution=detail.execution)]
    }


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
    }
    if request.htmx and not request.htmx.history_restore_request:
        return _finish(render(request, "executions/detail/step_body.html", context))
    return _finish(render(request, "executions/detail/step_page.html", context))


@require_GET
@with_workspace
def output_download(request, pk):
    """The whole output as a JSON file (the page shows a budget of it)."""
    execution = selectors.execution_get(workspace=request.workspace, pk=pk)
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
    artifact = selectors.artifact_get(workspace=request.workspace, pk=pk)
    try:
        handle = artifact.file.open("rb")
    except (OSError, ValueError):
        raise Http404("The file of this artifact is missing from storage.") from None
    content_type = (artifact.content_type or "").split(";")[0].strip().lower()
    inline = content_type in INLINE_TYPES and request.GET.get("download") != "1"
    response = FileResponse(
        handle,
        as_attachment=not inline,
        filename=artifact.name or "artifact",
        content_type=content_type if content_type in INLINE_TYPES else "application/octet-stream",
    )
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
