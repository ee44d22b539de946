"""What the detail page knows about one execution, shared by the page, its panes and
the live stream: the header, the outcome box, timeline cards, the step inspector."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone

from executions.models import (
    STOPPED_STATUSES,
    ArtifactKind,
    Execution,
    Status,
    Step,
    StepKind,
    StepStatus,
)
from executions.templatetags.runboard import compact, duration, usd
from feedback.selectors import execution_corrected

from . import conversation, rendering, selectors

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

# Ends that went wrong get the failure box; stops on purpose (STOPPED_STATUSES) a neutral one.
BAD_OUTCOMES = {Status.FAILED, Status.TIMED_OUT}
STOP_TITLES = {
    Status.CANCELLED: "Cancelled",
    Status.REJECTED: "Rejected",
    Status.TERMINATED: "Terminated by the system",
}


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
    return execution.status in BAD_OUTCOMES


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
    context: dict[str, Any] = {
        "failure": None,
        "stopped": None,
        "output_preview": None,
        "output_large": False,
        "output_corrected": 0,
    }
    if execution.status in STOPPED_STATUSES:
        context["stopped"] = stopped_context(execution)
    if execution.correction_count and (
        getattr(execution, "output_head", None) is not None
        if hasattr(execution, "output_stored")
        else execution.output is not None
    ):
        # Reviewed: the preview is the corrected output, and says so.
        corrected = execution_corrected(workspace=execution.workspace_id, execution=execution)
        context["output_preview"] = rendering.json_html(
            corrected.output, max_lines=OUTPUT_PREVIEW_LINES, max_string=300
        )
        context["output_corrected"] = execution.correction_count
    elif hasattr(execution, "output_stored"):
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


def stopped_context(execution: Execution) -> dict:
    """Who stopped a run on purpose, when, and why: the neutral box's facts."""
    by = execution.stopped_by
    if not by and execution.status == Status.REJECTED and execution.decided_by_id:
        by = execution.decided_by.get_username()
    return {
        "title": STOP_TITLES.get(execution.status, execution.get_status_display()),
        "by": by,
        "at": execution.completed_at or execution.decided_at,
        "reason": execution.failure_reason,
        "note": execution.approval_note if execution.status == Status.REJECTED else "",
        "error": execution.error,
    }


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
    StepKind.EMBEDDING: "E",
    StepKind.RERANKER: "R",
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


def budget_marks(execution: Execution) -> dict[int, tuple[str, str]]:
    """The steps where the run passed a budget limit (executions/budgets), read from the
    run's own budget rather than each step's deferred attributes."""
    budget = execution.budget or {}
    marks = {}
    for flag in budget.get("flags") or []:
        if flag.get("sequence") is not None:
            marks[flag["sequence"]] = ("chip chip-budget-soft", f"Soft limit: {flag['message']}")
    stop = budget.get("stop")
    if stop and stop.get("sequence") is not None:
        marks[stop["sequence"]] = ("chip chip-budget-stop", f"Stopped here: {stop['reason']}")
    return marks


def decorate_steps(steps: list[Step], execution: Execution) -> None:
    """Attach everything a card shows, worked out here rather than in the template.

    A page of cards is the hot path of the first paint: Python builds each label
    once, and the card template only prints them.
    """
    start, total = run_window(execution)
    budget_notes = budget_marks(execution)
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
        if step.sequence in budget_notes:
            meta.append(budget_notes[step.sequence])
        step.meta = meta
        head_in = getattr(step, "input_head", None)
        head_out = getattr(step, "output_head", None)
        step.in_label, step.out_label = IO_LABELS.get(kind, ("in", "out"))
        step.reply_first = kind == StepKind.MODEL_CALL
        if head_in is None and getattr(step, "input_stored", None):
            head_in = LARGE_PAYLOAD
        if head_out is None and getattr(step, "output_stored", None):
            head_out = LARGE_PAYLOAD
        if kind == StepKind.THOUGHT:
            step.preview_main = rendering.preview_from_head(head_out or head_in, 400)
            step.preview_in = step.preview_out = ""
        elif kind == StepKind.MODEL_CALL:
            # Whatever shape the messages came in (OpenAI, Anthropic, the stored one):
            # the reply's words and calls, and the prompt's last message.
            step.preview_main = ""
            step.preview_in = conversation.preview_line(
                head_in, selectors.STEP_HEAD_CHARS, "input", 200
            ) or rendering.preview_from_head(head_in, 200)
            step.preview_out = conversation.preview_line(
                head_out, selectors.STEP_HEAD_CHARS, "output", 200
            ) or rendering.preview_from_head(head_out, 200)
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


def step_conversation(
    step: Step, chars: int | None, *, max_string: int | None = rendering.DEFAULT_MAX_STRING
) -> conversation.Conversation | None:
    """A model call's messages to read (None for other steps, or a payload that is no
    conversation). chars: the head budget the step was read with (None: read whole)."""
    if step.kind != StepKind.MODEL_CALL:
        return None
    if chars is None:
        return conversation.conversation_view(step.input, step.output, max_string=max_string)
    prompt, prompt_whole = conversation.loads_head(step.input_head, chars)
    reply, reply_whole = conversation.loads_head(step.output_head, chars)
    return conversation.conversation_view(
        prompt,
        reply,
        input_whole=prompt_whole,
        output_whole=reply_whole,
        max_string=max_string,
    )


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
        "convo": step_conversation(step, INSPECTOR_HEAD_CHARS, max_string=800),
    }
