"""OTLP traces into executions and steps: one transaction per request, behind otlp.py.

Spans are grouped by trace; a trace is one execution (found by trace id, else created),
its spans are its steps, written through steps.py like the JSON API's."""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from agents.models import Workspace
from agents.services import agents_resolve
from executions import budgets, counters, lifecycle, timestamps
from executions.models import (
    TERMINAL_STATUSES,
    Execution,
    Source,
    Status,
    Step,
    StepKind,
    StepStatus,
)

from . import logs, outcome
from .content import run_input, run_output
from .prices import fill_costs
from .services import _add_totals, _plan
from .steps import (
    WAITING,
    StepRecord,
    Totals,
    children_waiting,
    money,
    note_children_waiting,
)
from .steps_insert import apply_plan, copy_models

# A root span that is itself a model or tool call is also kept as a step, so a trace of
# one LLM call still shows that call; a root that only groups (agent, chain) is not,
# and its children hang at the top of the timeline.
LEAF_KINDS = frozenset({StepKind.MODEL_CALL, StepKind.TOOL_CALL})
AGENT_NAME_MAX = 200
VERSION_MAX = 100


@dataclass(slots=True, eq=False)
class TraceSpan:
    """One decoded span, with what otlp.py read about its trace's agent and session."""

    trace_id: str
    step: StepRecord
    service_name: str = ""
    service_version: str | None = None
    agent_name: str | None = None
    agent_version: str | None = None
    session_id: str = ""
    metadata: dict = field(default_factory=dict)
    resource: dict = field(default_factory=dict)


@dataclass
class IngestResult:
    spans: int = 0
    executions_created: int = 0
    steps_created: int = 0
    steps_updated: int = 0
    execution_ids: list = field(default_factory=list)
    # Runs of these traces that are stopped (a budget, a cancel): the OTLP answer says
    # so, for runtimes without a webhook.
    stops: list = field(default_factory=list)


def _agent_key(span: TraceSpan) -> tuple[str, str | None]:
    name = (span.agent_name or span.service_name or "unknown_service").strip()[:AGENT_NAME_MAX]
    version = span.agent_version or span.service_version
    version = version.strip()[:VERSION_MAX] if version else None
    return name or "unknown_service", version or None


def _root_status(root: TraceSpan) -> str:
    if root.step.status == StepStatus.FAILED:
        return Status.FAILED
    if root.step.status == StepStatus.RUNNING:
        return Status.RUNNING
    return Status.COMPLETED


def _root_fields(root: TraceSpan) -> dict[str, Any]:
    s = root.step
    return {
        "input": run_input(s.input),
        "output": run_output(s.output),
        "metadata": root.metadata,
        "session_id": root.session_id[:200],
        "started_at": s.started_at,
    }


def _otlp_request(root: TraceSpan | None, first: TraceSpan) -> dict:
    request = {
        "method": "POST",
        "path": "/v1/traces",
        "protocol": "otlp",
        "root_span_id": root.step.span_id if root else None,
        "resource": (root or first).resource,
    }
    # The root span is the execution, not a step: its clamped times are noted here.
    clamped = root.step.attributes.get(timestamps.CLAMPED_KEY) if root else None
    if clamped:
        request[timestamps.CLAMPED_KEY] = clamped
    return request


def _new_execution(workspace, trace_id, items, root, resolved, now) -> Execution:
    agent, version = resolved[_agent_key(root or items[0])]
    starts = [s.step.started_at for s in items if s.step.started_at]
    execution = Execution(
        id=uuid.uuid4(),
        workspace=workspace,
        agent=agent,
        agent_version=version,
        agent_name=agent.name,
        version_name=version.version if version else "",
        source=Source.OTLP,
        trace_id=trace_id,
        created_at=min(starts) if starts else now,
        updated_at=now,
        request=_otlp_request(root, items[0]),
        budget=_budget(version),
    )
    if root is None:
        # Children came first: the execution runs until its root span arrives.
        execution.status = Status.RUNNING
        execution.started_at = min(starts) if starts else now
        execution.session_id = next((s.session_id for s in items if s.session_id), "")[:200]
        return execution
    for column, value in _root_fields(root).items():
        setattr(execution, column, value)
    execution.status = _root_status(root)
    execution.error = root.step.error
    # Every span of a new execution is in this request: decide from them.
    records = [s.step for s in items]
    _conclude(execution, root, outcome.verdict(outcome.seen_records(records)))
    if not execution.input or execution.output is None:
        question, answer = outcome.run_io_from_records(records)
        _fill_io(execution, question, answer)
    if execution.status in TERMINAL_STATUSES:
        execution.completed_at = root.step.ended_at or now
        if execution.started_at is not None:
            elapsed = execution.completed_at - execution.started_at
            execution.duration_ms = max(0, int(elapsed.total_seconds() * 1000))
    return execution


def _budget(version) -> dict | None:
    """A traced run has its version's budget; a version whose budget config is wrong is
    not a reason to drop the spans, so it runs without one."""
    try:
        return budgets.effective(version, None)
    except budgets.BudgetInvalid:
        return None


def _adopt_root(execution: Execution, root: TraceSpan, resolved) -> None:
    """The root span of an execution that so far had only children: it names the agent,
    the input and output, and ends the execution through the lifecycle."""
    agent, version = resolved[_agent_key(root)]
    if agent.name != execution.agent_name:
        counters.count_deleted([execution])
        execution.agent_name = agent.name
        counters.count_created([execution])
    changes = _root_fields(root)
    request = _otlp_request(root, root)
    if children_waiting(execution):
        request[WAITING] = True
    changes.update(
        agent=agent,
        agent_version=version,
        agent_name=agent.name,
        version_name=version.version if version else "",
        request=request,
        updated_at=timezone.now(),
    )
    if root.step.started_at and root.step.started_at < execution.created_at:
        changes["created_at"] = root.step.started_at
    if changes["started_at"] is None:
        changes["started_at"] = execution.started_at
    for column, value in changes.items():
        setattr(execution, column, value)
    Execution.objects.filter(pk=execution.pk).update(**changes)
    # Children came in earlier requests: decide from what is stored (all of it now).
    probe = Execution(status=_root_status(root), error=root.step.error)
    _conclude(probe, root, outcome.verdict(outcome.seen_stored(execution)))
    late = {}
    if probe.failure_reason:
        late["failure_reason"] = probe.failure_reason
    if not execution.input or execution.output is None:
        question, answer = outcome.run_io_stored(
            execution, want_input=not execution.input, want_output=execution.output is None
        )
        before = (execution.input, execution.output)
        _fill_io(execution, question, answer)
        if (execution.input, execution.output) != before:
            late.update(input=execution.input, output=execution.output)
    if late:
        for column, value in late.items():
            setattr(execution, column, value)
        Execution.objects.filter(pk=execution.pk).update(**late)
    target = probe.status
    if target != execution.status and lifecycle.can_transition(execution.status, target):
        lifecycle.transition(execution, target, at=root.step.ended_at, error=probe.error or None)


# A model call inside a model call is one call told twice: an instrumentation wrapping
# an SDK that traces itself (OpenInference's LLM span around the Anthropic SDK's own
# anthropic.messages.create). The outer one, which carries the conversation, counts.
COUNTED_IN_PARENT = "runboard.counted_in_parent"


def _count_calls_once(records: list[StepRecord]) -> None:
    calls = {r.span_id for r in records if r.kind == StepKind.MODEL_CALL and r.span_id}
    for r in records:
        if r.kind == StepKind.MODEL_CALL and r.parent_span_id in calls:
            _uncount(r)


def _uncount(r: StepRecord) -> None:
    if r.prompt_tokens or r.completion_tokens or r.cost_usd:
        r.attributes[COUNTED_IN_PARENT] = {
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "cost_usd": str(r.cost_usd or 0),
        }
    r.prompt_tokens = r.completion_tokens = 0
    r.cost_usd = Decimal(0)


def _count_stored_calls_once(executions: list[Execution], traces: dict) -> None:
    """The same for calls stored in earlier requests, whose outer call came now."""
    outer = {
        s.step.span_id
        for items in traces.values()
        for s in items
        if s.step.kind == StepKind.MODEL_CALL and s.step.span_id
    }
    if not outer or not executions:
        return
    inner = list(
        Step.objects.filter(
            execution__in=executions, kind=StepKind.MODEL_CALL, parent_span_id__in=outer
        ).exclude(prompt_tokens=0, completion_tokens=0, cost_usd=0)
    )
    by_execution = {e.pk: e for e in executions}
    for step in inner:
        execution = by_execution[step.execution_id]
        step.attributes[COUNTED_IN_PARENT] = {
            "prompt_tokens": step.prompt_tokens,
            "completion_tokens": step.completion_tokens,
            "cost_usd": str(step.cost_usd),
        }
        _add_totals(
            execution,
            Totals(
                prompt_tokens=-step.prompt_tokens,
                completion_tokens=-step.completion_tokens,
                cost_usd=-step.cost_usd,
            ),
            timezone.now(),
        )
        step.prompt_tokens = step.completion_tokens = 0
        step.cost_usd = Decimal(0)
    if inner:
        Step.objects.bulk_update(
            inner, ["prompt_tokens", "completion_tokens", "cost_usd", "attributes"]
        )


def _conclude(execution: Execution, root: TraceSpan, verdict: "outcome.Verdict") -> None:
    """Fail a run whose failing step nothing recovered from, even if its root span
    ended OK, and say why in failure_reason."""
    if verdict.unrecovered and execution.status == Status.COMPLETED:
        execution.status = Status.FAILED
    if execution.status == Status.FAILED:
        if verdict.failing is not None:
            execution.failure_reason = verdict.reason
            execution.error = execution.error or verdict.failing.error
        elif execution.error:
            execution.failure_reason = f"The run failed: {execution.error}"[:2000]


def _late_failure(execution: Execution) -> None:
    """A failed step that came after its failed run's root span (OpenTelemetry JS sends
    each span in its own request, concurrently, so the root can arrive first): the run's
    failure_reason names the innermost failed step, decided again from all that is
    stored. A run that ended OK is not failed by a late step here: whether something
    recovered from it can only be told from spans that may not have arrived yet."""
    verdict = outcome.verdict(outcome.seen_stored(execution))
    if verdict.failing is None or verdict.reason == execution.failure_reason:
        return
    changes = {"failure_reason": verdict.reason}
    if not execution.error:
        changes["error"] = verdict.failing.error
    for column, value in changes.items():
        setattr(execution, column, value)
    Execution.objects.filter(pk=execution.pk).update(**changes)


def _fill_io(execution: Execution, question, answer) -> None:
    """The run's input and output from its model calls when the root span had none."""
    if not execution.input and question:
        execution.input = {"input": question}
    if execution.output is None and answer:
        execution.output = answer


FAR = datetime.max.replace(tzinfo=UTC)


def _start_order(record: StepRecord):
    return (record.started_at or FAR, record.span_id or "")


RESEQUENCE_OFFSET = 1_000_000_000


def _resequence(execution: Execution) -> None:
    """Renumber a trace's steps by start time when a request brought earlier ones.

    A span that ends late (a parent) reaches us after the spans it contains, so its
    arrival order is not the order things happened in, which the timeline shows.
    Steps of a trace are identified by span id, so their sequence numbers may
    change. The numbers are first moved out of the way, then set, so the unique
    (execution, sequence) constraint holds after every row.
    """
    if execution.source != Source.OTLP:
        return
    rows = list(
        Step.objects.filter(execution=execution)
        .order_by("sequence")
        .values_list("pk", "sequence", "started_at", "span_id")
    )
    wanted = sorted(rows, key=lambda r: (r[2] or FAR, r[3] or "", r[1]))
    if wanted == rows or rows[-1][1] >= RESEQUENCE_OFFSET:
        return
    steps = Step.objects.filter(execution=execution)
    steps.update(sequence=F("sequence") + RESEQUENCE_OFFSET)
    renumbered = [Step(pk=pk, sequence=n) for n, (pk, *_rest) in enumerate(wanted)]
    Step.objects.bulk_update(renumbered, ["sequence"], batch_size=500)


def traces_ingest(*, workspace: Workspace, spans: list[TraceSpan]) -> IngestResult:
    """Store decoded spans: each trace one execution (its root span), the rest steps.

    Spans of one trace may come in several requests and children before parents; they
    assemble into one execution. A concurrent request creating the same trace makes
    the insert fail on the (workspace, trace_id) constraint: the whole request is then
    retried, and finds that execution.
    """
    for attempt in range(3):
        try:
            with transaction.atomic():
                return _traces_ingest(workspace, spans)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _traces_ingest(workspace: Workspace, spans: list[TraceSpan]) -> IngestResult:
    now = timezone.now()
    traces: dict[str, list[TraceSpan]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span)
    # GenAI content that came as log records before these spans (logs.py).
    logs.take_pending(
        workspace, {t: {s.step.span_id: s.step for s in items} for t, items in traces.items()}
    )
    fill_costs([s.step for s in spans], workspace_id=workspace.pk)
    _count_calls_once([s.step for s in spans])
    existing = {
        e.trace_id: e
        for e in Execution.objects.select_for_update()
        .filter(workspace=workspace, trace_id__in=list(traces))
        .order_by("pk")  # rows locked in one order: concurrent batches cannot deadlock
    }
    roots: dict[str, TraceSpan] = {}
    for trace_id, items in traces.items():
        known = existing[trace_id].request.get("root_span_id") if trace_id in existing else None
        for span in items:
            if not span.step.parent_span_id and known in (None, span.step.span_id):
                roots[trace_id] = span
                break

    keys = set()
    for trace_id, items in traces.items():
        execution = existing.get(trace_id)
        root = roots.get(trace_id)
        if execution is None:
            keys.add(_agent_key(root or items[0]))
        elif root is not None and not execution.request.get("root_span_id"):
            keys.add(_agent_key(root))
    resolved = agents_resolve(workspace=workspace, keys=keys)

    batches = []
    created: list[Execution] = []
    adopting: list[tuple[Execution, TraceSpan]] = []
    for trace_id, items in traces.items():
        root = roots.get(trace_id)
        records = [s.step for s in items if s is not root or s.step.kind in LEAF_KINDS]
        # Exporters send spans as they end, children first: number them by start.
        records.sort(key=_start_order)
        execution = existing.get(trace_id)
        if execution is None:
            execution = _new_execution(workspace, trace_id, items, root, resolved, now)
            created.append(execution)
            batches.append((execution, records, True))
        else:
            batches.append((execution, records, False))
            if root is not None and not execution.request.get("root_span_id"):
                adopting.append((execution, root))

    plan = _plan(batches)
    result_stops: list = []
    for execution in created:
        note_children_waiting(execution, plan, known=execution.request["root_span_id"])
        totals = plan.totals[execution.pk]
        execution.step_count = totals.steps
        execution.prompt_tokens = totals.prompt_tokens
        execution.completion_tokens = totals.completion_tokens
        execution.total_tokens = totals.prompt_tokens + totals.completion_tokens
        execution.cost_usd = money(totals.cost_usd)
    if connection.vendor == "postgresql":
        copy_models(Execution, created)
    else:
        Execution.objects.bulk_create(created, batch_size=500)
    # Counter rows are locked in one order (agent, status) by every request, so two
    # requests counting the same agents never wait on each other in a circle.
    counters.count_created(sorted(created, key=lambda e: (e.agent_name, e.status)))
    lifecycle.announce_ended(created)
    apply_plan(plan)
    for execution in existing.values():
        root = roots.get(execution.trace_id)
        known = execution.request.get("root_span_id") or (root.step.span_id if root else None)
        note_children_waiting(execution, plan, known=known)
        _add_totals(execution, plan.totals[execution.pk], now)
        if plan.totals[execution.pk].steps:
            _resequence(execution)
    for execution, root in adopting:
        _adopt_root(execution, root, resolved)
    adopted = {e.pk for e, _root in adopting}
    for execution in existing.values():
        if (
            execution.pk not in adopted
            and execution.status == Status.FAILED
            and execution.request.get("root_span_id")
            and any(s.step.status == StepStatus.FAILED for s in traces[execution.trace_id])
        ):
            _late_failure(execution)
    _count_stored_calls_once(list(existing.values()), traces)
    for execution in [*created, *existing.values()]:
        if execution.budget:
            budgets.check(execution, plan.outcomes[execution.pk], plan.totals[execution.pk])
        if stop := budgets.stop_of(execution):
            result_stops.append((execution, stop))

    result = IngestResult(spans=len(spans), executions_created=len(created))
    result.stops = result_stops
    for outcomes in plan.outcomes.values():
        for done in outcomes:
            if done.state == "created":
                result.steps_created += 1
            elif done.state == "updated":
                result.steps_updated += 1
    result.execution_ids = [e.pk for e in created] + [e.pk for e in existing.values()]
    return result
