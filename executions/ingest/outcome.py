"""How a trace ended, worked out when its root span arrives: the failing step, whether
the run failed, why (failure_reason), and the run's input and output when the root
span carried none.

- The failing step is the innermost failed span: a failure bubbles up (tool -> agent
  -> run) and the innermost one's error explains it.
- A failed step is recovered when something started after it ended (the agent gave
  the tool's error back to the model and went on). One that nothing followed fails
  the run even if the root span ends OK, as some instrumentations end it.
- A root without input or output takes the first user message of the first model
  call and the last reply of the last one.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from executions.models import Step, StepKind, StepStatus

from .content import first_user_text, last_reply_text


@dataclass(slots=True)
class Seen:
    """What deciding needs of one step."""

    span_id: str | None
    parent_span_id: str
    kind: str
    name: str
    error: str
    status: str
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(slots=True)
class Verdict:
    failing: Seen | None = None
    unrecovered: bool = False

    @property
    def reason(self) -> str:
        if self.failing is None:
            return ""
        return f"Step “{self.failing.name or 'unnamed'}” failed: {self.failing.error}"[:2000]


def verdict(steps: list[Seen]) -> Verdict:
    failed = [s for s in steps if s.status == StepStatus.FAILED]
    if not failed:
        return Verdict()
    # Innermost: no failed step below it, at any depth (a chain that ended OK may
    # stand between a failed tool and the failed agent around it).
    parent_of = {s.span_id: s.parent_span_id for s in steps if s.span_id}
    kind_of = {s.span_id: s.kind for s in steps if s.span_id}
    above: set[str] = set()
    for s in failed:
        parent, seen = s.parent_span_id, 0
        while parent and seen < 1000:
            above.add(parent)
            parent, seen = parent_of.get(parent, ""), seen + 1
    innermost = [
        s
        for s in failed
        if (not s.span_id or s.span_id not in above)
        # A model call inside a model call is the same call told twice (an SDK that
        # traces itself under an instrumentation's span): the outer one explains it.
        and not (s.kind == StepKind.MODEL_CALL and kind_of.get(s.parent_span_id) == s.kind)
    ] or failed
    starts = [s.started_at for s in steps if s.started_at]
    last_start = max(starts) if starts else None

    def unrecovered(s: Seen) -> bool:
        return s.ended_at is None or last_start is None or last_start <= s.ended_at

    lasting = [s for s in innermost if unrecovered(s)]
    chosen = sorted(
        lasting or innermost, key=lambda s: (s.started_at is None, s.started_at, s.span_id or "")
    )
    return Verdict(failing=chosen[0], unrecovered=bool(lasting))


def seen_records(records) -> list[Seen]:
    return [
        Seen(
            r.span_id, r.parent_span_id, r.kind, r.name, r.error, r.status, r.started_at, r.ended_at
        )
        for r in records
    ]


def seen_stored(execution) -> list[Seen]:
    rows = Step.objects.filter(execution=execution).values_list(
        "span_id", "parent_span_id", "kind", "name", "error", "status", "started_at", "ended_at"
    )
    return [Seen(*row) for row in rows]


def run_io_from_records(records) -> tuple[Any, Any]:
    """(first user message, last reply) of a trace's model calls, from its records."""
    calls = sorted(
        (r for r in records if r.kind == StepKind.MODEL_CALL),
        key=lambda r: (r.started_at is None, r.started_at),
    )
    question = next((q for r in calls if (q := first_user_text(r.input))), None)
    answer = next((a for r in reversed(calls) if (a := last_reply_text(r.output))), None)
    return question, answer


def run_io_stored(execution, *, want_input: bool, want_output: bool) -> tuple[Any, Any]:
    calls = Step.objects.filter(execution=execution, kind=StepKind.MODEL_CALL)
    question = answer = None
    if want_input:
        for value in calls.order_by("started_at", "sequence").values_list("input", flat=True)[:5]:
            question = first_user_text(value)
            if question:
                break
    if want_output:
        for value in calls.order_by("-started_at", "-sequence").values_list("output", flat=True)[
            :5
        ]:
            answer = last_reply_text(value)
            if answer:
                break
    return question, answer
