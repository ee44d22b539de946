"""OTLP log records that carry GenAI content, at /v1/logs: attached to their spans.

The GenAI instrumentations (opentelemetry-instrumentation-openai-v2 and the other
contrib ones, Semantic Kernel) may send a model call's messages as events, which the
SDK exports as log records with the span's trace and span id: gen_ai.user.message,
gen_ai.choice..., or one gen_ai.client.inference.operation.details. Other log
records are accepted and dropped: Runboard is not a log store.

A record whose span is stored fills that step's input and output; one whose span has
not arrived waits in PendingSpanEvents, and traces.py hands it to the span.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from agents.models import Workspace
from executions.models import TERMINAL_STATUSES, Execution, PendingSpanEvents, Step

# Modules, not names: semconv imports traces, which imports this module.
from . import outcome, semconv

PENDING_MAX_AGE = timedelta(days=1)

# (trace id, span id) -> [(event name, time in ns, attributes with the body)]
Grouped = dict[tuple[str, str], list[tuple[str, int, dict]]]


def content_records(records) -> Grouped:
    """The GenAI content records among decoded log records, grouped by span."""
    grouped: Grouped = {}
    for trace_id, span_id, name, time_ns, attrs, body in records:
        name = name or str(attrs.get("event.name") or "")
        if name not in semconv.CONTENT_EVENTS or not trace_id or not span_id:
            continue
        event_attrs = dict(attrs)
        if body is not None:
            event_attrs["body"] = body
        grouped.setdefault((trace_id, span_id), []).append((name, time_ns, event_attrs))
    return grouped


def logs_ingest(*, workspace: Workspace, grouped: Grouped) -> int:
    """Attach content events to their steps; keep the others for spans to come.
    Returns how many spans' events were attached now."""
    if not grouped:
        return 0
    with transaction.atomic():
        found = (
            Step.objects.filter(
                execution__workspace=workspace,
                execution__trace_id__in={t for t, _s in grouped},
                span_id__in={s for _t, s in grouped},
            )
            .select_related("execution")
            .only("id", "span_id", "input", "output", "execution__trace_id")
        )
        steps = {(step.execution.trace_id, step.span_id): step for step in found}
        changed, waiting = [], []
        for key, events in grouped.items():
            step = steps.get(key)
            if step is None:
                waiting.append(
                    PendingSpanEvents(workspace=workspace, trace_id=key[0], span_id=key[1],
                                      events=[list(e) for e in events])
                )  # fmt: skip
                continue
            if apply_events(step, events):
                changed.append(step)
        if changed:
            Step.objects.bulk_update(changed, ["input", "output"])
        PendingSpanEvents.objects.bulk_create(waiting)
        PendingSpanEvents.objects.filter(created_at__lt=timezone.now() - PENDING_MAX_AGE).delete()
        _fill_runs(workspace, {s.execution_id for s in changed})
    return len(changed)


def apply_events(step, events) -> bool:
    """Fill a step's input and output from its content events where it has none."""
    given_in, given_out = semconv.content_from_events(events)
    changed = False
    if step.input is None and given_in is not None:
        step.input, changed = given_in, True
    if step.output is None and given_out is not None:
        step.output, changed = given_out, True
    return changed


def take_pending(workspace: Workspace, records_by_trace: dict) -> None:
    """Give the spans of an OTLP trace request the events that waited for them."""
    pending = list(
        PendingSpanEvents.objects.filter(workspace=workspace, trace_id__in=list(records_by_trace))
    )
    if not pending:
        return
    taken = []
    for row in pending:
        record = records_by_trace[row.trace_id].get(row.span_id)
        if record is not None:
            apply_events(record, [tuple(e) for e in row.events])
            taken.append(row.pk)
    if taken:
        PendingSpanEvents.objects.filter(pk__in=taken).delete()


def _fill_runs(workspace: Workspace, execution_ids: set) -> None:
    """Runs that ended before their messages came: their input and output now."""
    if not execution_ids:
        return
    for execution in Execution.objects.filter(workspace=workspace, pk__in=execution_ids).only(
        "id", "input", "output", "status", "request"
    ):
        if execution.status not in TERMINAL_STATUSES or not execution.request.get("root_span_id"):
            continue
        if execution.input and execution.output is not None:
            continue
        question, answer = outcome.run_io_stored(
            execution, want_input=not execution.input, want_output=execution.output is None
        )
        changes = {}
        if not execution.input and question:
            changes["input"] = {"input": question}
        if execution.output is None and answer:
            changes["output"] = answer
        if changes:
            Execution.objects.filter(pk=execution.pk).update(**changes)
