"""Turn a planned run into unsaved rows: the Execution, its Steps, Artifacts and feedback.

The builder's draft is the happy path; here it is cut to the planned status, so a
failed run ends at the step that failed (holding the error), a running one ends at a
step still running, and one awaiting approval at its approval step. Totals (tokens,
cost, credits, step count, duration) are summed from the steps that remain, so they
always agree with them.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from random import Random

from agents.models import Agent, AgentVersion, Schedule, Workspace
from executions.models import Artifact, Batch, Execution, Source, Status, Step, StepStatus
from feedback.models import ExecutionNote, FieldCorrection

from . import assistants, documents
from .drafts import Draft, StepDraft
from .images import render_screenshot
from .plan import RunSpec, demo_uuid
from .video import screencast

BUILDERS = {
    "invoice-extractor": documents.invoice_extractor,
    "receipt-reader": documents.receipt_reader,
    "web-browser": assistants.web_browser,
    "support-agent": assistants.support_agent,
    "daily-sales-report": assistants.daily_sales_report,
    "sql-writer": assistants.sql_writer,
    "ticket-triage": assistants.ticket_triage,
}
TIME_LIMIT_S = 600
# Credits are billed by a nightly job: the newest finished runs have none yet.
UNBILLED_WINDOW = timedelta(hours=48)
# The browser agent's runs that ship a session recording (its screenshots as a video):
# a few, since encoding is the slowest part of seeding.
RECORDED = {"web-browser-001", "web-browser-002", "web-browser-003", "web-browser-004"}


@dataclass
class Context:
    workspace: Workspace
    now: datetime
    agents: dict[str, Agent]
    versions: dict[tuple[str, str], AgentVersion]
    users: dict
    batches: dict[str, Batch]
    schedules: dict[str, Schedule]


@dataclass
class Built:
    execution: Execution
    steps: list[Step]
    parents: dict[int, str]  # index in steps -> parent step key
    keys: list[str]
    artifacts: list[tuple[Artifact, bytes, str | None]] = field(default_factory=list)
    corrections: list[FieldCorrection] = field(default_factory=list)
    notes: list[ExecutionNote] = field(default_factory=list)


def _lay_out(draft: Draft, rng: Random) -> dict[str, list[int]]:
    """Start and end offsets (ms from the run's start) of every step, leaves back to back."""
    children: dict[str, list[str]] = {}
    for step in draft.steps:
        if step.parent:
            children.setdefault(step.parent, []).append(step.key)
    times: dict[str, list[int]] = {}
    clock = rng.randint(5, 60)
    for step in draft.steps:
        if step.key in children:
            continue
        times[step.key] = [clock, clock + step.duration_ms]
        clock += step.duration_ms + rng.randint(10, 250)
    for step in reversed(draft.steps):
        if step.key in children:
            kids = [times[k] for k in children[step.key] if k in times]
            times[step.key] = [min(t[0] for t in kids), max(t[1] for t in kids)]
    return times


def _ancestors(steps: dict[str, StepDraft], key: str) -> list[str]:
    chain = []
    parent = steps[key].parent
    while parent:
        chain.append(parent)
        parent = steps[parent].parent
    return chain


def _leaves(draft: Draft) -> list[str]:
    parents = {s.parent for s in draft.steps if s.parent}
    return [s.key for s in draft.steps if s.key not in parents and s.kind != "approval"]


def _pointer_get(document, path: str):
    for token in path.lstrip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        document = document[int(token)] if isinstance(document, list) else document[token]
    return document


CORRECTABLE = {
    ("invoice-extractor", "v2"): [
        "/totals/total",
        "/line_items/0/amount",
        "/vendor/name",
        "/dates/due",
        "/totals/tax",
        "/vendor/address/postal_code",
    ],
    ("invoice-extractor", "v1"): [
        "/totals/total",
        "/line_items/0/amount",
        "/vendor/name",
        "/invoice_date",
    ],
    ("receipt-reader", "v1"): ["/total", "/merchant", "/date", "/items/0/price"],
}
NOTES = [
    ("up", "Spot on, and fast."),
    ("up", "All fields right, thanks."),
    ("down", "Missed the second page entirely."),
    ("down", "Tone was too formal for this customer."),
    ("", "Customer called about this one; checked and it is fine."),
    ("up", ""),
    ("down", "Wrong currency: the invoice is in GBP."),
]


def _corrected(rng: Random, value):
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return round(value * rng.choice([0.9, 1.1, 1.01]) + rng.choice([0, 1, 5]), 2)
    if len(value) == 10 and value[4] == "-":
        return (date.fromisoformat(value) + timedelta(days=rng.choice([1, -1, 30]))).isoformat()
    return rng.choice([f"{value} Ltd", value.upper(), value.replace(" ", "-", 1)])


def _feedback(built: Built, spec: RunSpec, draft: Draft, rng: Random, ctx: Context) -> None:
    execution = built.execution
    if execution.completed_at is None:
        return
    reviewer = ctx.users["reviewer"]
    earliest = execution.completed_at
    paths = CORRECTABLE.get((spec.agent, spec.version))
    if paths and execution.status == Status.COMPLETED and rng.random() < 0.22:
        at = earliest + timedelta(minutes=rng.randint(20, 3000))
        for n, path in enumerate(rng.sample(paths, rng.randint(1, 3))):
            before = _pointer_get(draft.output, path)
            # Now and then a reviewer corrects a field twice: both are kept.
            values = [_corrected(rng, before)]
            if n == 0 and rng.random() < 0.25:
                values.append(_corrected(rng, values[0]))
            for after in values:
                if at >= ctx.now:
                    break
                built.corrections.append(
                    FieldCorrection(
                        workspace=ctx.workspace,
                        execution=execution,
                        path=path,
                        value_before=before,
                        value_after=after,
                        author=reviewer,
                        comment=rng.choice(["", "", "Checked against the PDF.", "Typo in OCR."]),
                        created_at=at,
                    )
                )
                before = after
                at += timedelta(minutes=rng.randint(1, 90))
    if rng.random() < 0.09:
        rating, text = rng.choice(NOTES)
        at = earliest + timedelta(minutes=rng.randint(5, 2000))
        if at < ctx.now:
            built.notes.append(
                ExecutionNote(
                    workspace=ctx.workspace,
                    execution=execution,
                    author=rng.choice([reviewer, ctx.users["demo"]]),
                    rating=rating,
                    text=text,
                    created_at=at,
                )
            )
    execution.correction_count = len(built.corrections)
    execution.note_count = len(built.notes)


def _request(spec: RunSpec, draft: Draft, rng: Random) -> dict:
    body = {
        "agent": f"{spec.agent}:{spec.version}",
        "input": draft.input,
        "metadata": spec.metadata,
        "priority": ["low", "normal", "high"][spec.priority],
    }
    if spec.source in {Source.API, Source.RERUN}:
        headers = {
            "Authorization": "Bearer [redacted]",
            "Content-Type": "application/json",
            "User-Agent": rng.choice(
                ["runboard-python/0.4.2", "runboard-node/0.3.0", "curl/8.5.0"]
            ),
        }
        return {"method": "POST", "path": "/api/v1/executions", "headers": headers, "body": body}
    if spec.source == Source.BATCH:
        headers = {"Authorization": "Bearer [redacted]", "Content-Type": "application/json"}
        return {"method": "POST", "path": "/api/v1/batches", "headers": headers, "body": body}
    if spec.source == Source.OTLP:
        headers = {
            "Authorization": "Bearer [redacted]",
            "Content-Type": "application/x-protobuf",
            "User-Agent": "OTel-OTLP-Exporter-Python/1.45.2",
        }
        return {"method": "POST", "path": "/v1/traces", "headers": headers, "body": None}
    if spec.source == Source.DASHBOARD:
        headers = {"Cookie": "[redacted]", "X-CSRFToken": "[redacted]", "HX-Request": "true"}
        path = f"/agents/{spec.agent}/execute"
        return {"method": "POST", "path": path, "headers": headers, "body": body}
    return {}  # A schedule fired it: no HTTP request to reproduce.


def realise(spec: RunSpec, ctx: Context) -> Built:
    rng = Random(f"run:{spec.key}")
    subject = Random(f"subject:{spec.subject}")
    builder = BUILDERS[spec.agent]
    kwargs = {"approval": True} if spec.needs_approval else {}
    # Documents are dated, and reports written, relative to the day the run happened.
    today = (spec.created_at or ctx.now).date()
    draft = builder(rng, subject, version=spec.version, today=today, **kwargs)
    drafts = {s.key: s for s in draft.steps}
    times = _lay_out(draft, rng)
    status = spec.status
    now = ctx.now

    # Which steps remain, and what the last one's state is.
    keep = [s.key for s in draft.steps]
    step_status = {k: StepStatus.COMPLETED for k in keep}
    step_error: dict[str, str] = {}
    error = failure_reason = ""
    cut: str | None = None
    failure = None
    started = True
    if status in {Status.PENDING, Status.QUEUED}:
        keep, started = [], False
    elif status == Status.CANCELLED and rng.random() < 0.4:
        keep, started = [], False
        failure_reason = "Cancelled by operator while it was queued."
    elif status == Status.FAILED:
        failure = rng.choice(draft.failures)
        cut, error, failure_reason = failure.step, failure.error, failure.reason
        step_status[cut], step_error[cut] = StepStatus.FAILED, error
    elif status in {Status.AWAITING_APPROVAL, Status.REJECTED}:
        cut = draft.approval_step
        if status == Status.AWAITING_APPROVAL:
            step_status[cut] = StepStatus.RUNNING
        else:
            step_status[cut] = StepStatus.REJECTED
            step_error[cut] = "Rejected by reviewer: the item was used, not damaged."
            failure_reason = step_error[cut]
    elif status in {Status.RUNNING, Status.TIMED_OUT, Status.CANCELLED, Status.TERMINATED}:
        # Runs stop (or are still busy) in a step that does real work, never a quick check.
        leaves = [k for k in _leaves(draft) if drafts[k].kind != "guardrail"]
        cut = rng.choice(leaves[1:] if len(leaves) > 1 else leaves)
        if status == Status.RUNNING:
            step_status[cut] = StepStatus.RUNNING
        elif status == Status.TIMED_OUT:
            error = f"TimeoutError: the execution ran past its time limit of {TIME_LIMIT_S} s"
            failure_reason = "It ran longer than the version's time limit and was stopped."
            step_status[cut], step_error[cut] = StepStatus.FAILED, error
            times[cut][1] = max(times[cut][1], TIME_LIMIT_S * 1000 + rng.randint(5, 400))
        elif status == Status.TERMINATED:
            failure_reason = "Terminated: it used more than the 40 steps its budget allows."
            step_status[cut] = StepStatus.TERMINATED
            times[cut][1] = times[cut][0] + rng.randint(50, 900)
        else:
            step_status[cut] = StepStatus.CANCELLED
            step_error[cut] = "Cancelled by operator"
            failure_reason = "Cancelled by operator from the dashboard."
            times[cut][1] = times[cut][0] + rng.randint(50, 900)
    if cut is not None:
        keep = keep[: keep.index(cut) + 1]
        # A block ends the way its last child did: failed, still running, or skipped.
        for ancestor in _ancestors(drafts, cut):
            step_status[ancestor] = step_status[cut]
            times[ancestor][1] = times[cut][1]
    open_ = step_status.get(cut) == StepStatus.RUNNING if cut else False
    last_end = max((times[k][1] for k in keep), default=0)

    # When it happened: finished runs at their planned time, in-flight ones just now.
    ms = timedelta(milliseconds=1)
    queued_at = started_at = completed_at = None
    if status == Status.PENDING:
        created = now - timedelta(seconds=rng.randint(3, 300))
    elif status == Status.QUEUED:
        created = now - timedelta(seconds=rng.randint(20, 600))
        queued_at = created + rng.randint(20, 400) * ms
    elif open_:
        behind = (
            timedelta(minutes=rng.randint(20, 3 * 24 * 60))
            if status == Status.AWAITING_APPROVAL
            else timedelta(seconds=rng.randint(5, 360))
        )
        started_at = now - behind - times[cut][0] * ms
        queued_at = started_at - rng.randint(200, 4000) * ms
        created = queued_at - rng.randint(20, 800) * ms
    else:
        created = spec.created_at
        queued_at = created + rng.randint(20, 1500) * ms
        if started:
            started_at = queued_at + rng.randint(200, 6000) * ms
            completed_at = started_at + (last_end + rng.randint(20, 200)) * ms
        else:
            completed_at = queued_at + rng.randint(2, 600) * 1000 * ms

    execution = Execution(
        id=spec.id,
        workspace=ctx.workspace,
        agent=ctx.agents.get(spec.agent),
        agent_version=ctx.versions.get((spec.agent, spec.version)),
        agent_name=spec.agent,
        version_name=spec.version,
        status=status,
        priority=spec.priority,
        source=spec.source,
        input=draft.input,
        output=draft.output if status == Status.COMPLETED else None,
        summary=draft.summary
        if status in {Status.COMPLETED, Status.AWAITING_APPROVAL, Status.REJECTED}
        else "",
        error=error,
        failure_reason=failure_reason,
        metadata=spec.metadata,
        created_at=created,
        queued_at=queued_at,
        started_at=started_at,
        completed_at=completed_at,
        duration_ms=int((completed_at - started_at) / ms) if completed_at and started_at else None,
        updated_at=completed_at or (now if open_ else queued_at or created),
        trace_id=demo_uuid("trace", spec.key).hex if spec.source != Source.DASHBOARD else "",
        session_id=draft.session_id,
        idempotency_key=f"idem-{demo_uuid('idem', spec.key).hex[:20]}"
        if spec.source == Source.API and rng.random() < 0.5
        else None,
        triggered_by=ctx.users.get(spec.triggered_by) if spec.triggered_by else None,
        request=_request(spec, draft, rng),
        rerun_of_id=demo_uuid("execution", spec.rerun_of) if spec.rerun_of else None,
        batch=ctx.batches.get(spec.batch) if spec.batch else None,
        schedule=ctx.schedules.get(spec.schedule) if spec.schedule else None,
    )
    if draft.approval_request and draft.approval_step in keep:
        execution.approval_request = draft.approval_request
        if status != Status.AWAITING_APPROVAL:
            execution.decided_by = ctx.users["reviewer"]
            execution.decided_at = started_at + times[draft.approval_step][1] * ms
            if status == Status.REJECTED:
                execution.approval_note = "The item was used, not damaged: no refund."
                execution.stopped_by = "reviewer"
        else:
            execution.paused_at = started_at + times[draft.approval_step][0] * ms
    if status == Status.CANCELLED:
        execution.stopped_by = "operator"
    elif status == Status.TIMED_OUT:
        execution.stopped_by = "time limit"
    elif status == Status.TERMINATED:
        execution.stopped_by = "step budget"

    steps, parents = [], {}
    prompt = completion = 0
    cost = credits = Decimal(0)
    spans = {k: f"{rng.getrandbits(64):016x}" for k in keep}
    for sequence, key in enumerate(keep, start=1):
        d = drafts[key]
        state = step_status[key]
        begin, end = times[key]
        tokens = (0, 0) if state != StepStatus.COMPLETED else (d.prompt_tokens, d.completion_tokens)
        step_cost = d.cost if state == StepStatus.COMPLETED else Decimal(0)
        output = d.output
        if d.kind == "approval":
            output = {"approved": state == StepStatus.COMPLETED, "by": "reviewer"}
            if state == StepStatus.RUNNING:
                output = None
        steps.append(
            Step(
                execution=execution,
                sequence=sequence,
                span_id=spans[key],
                parent_span_id=spans[d.parent] if d.parent else "",
                kind=d.kind,
                name=d.name,
                status=state,
                started_at=started_at + begin * ms,
                ended_at=None if state == StepStatus.RUNNING else started_at + end * ms,
                duration_ms=None if state == StepStatus.RUNNING else end - begin,
                input=d.input,
                output=output if state == StepStatus.COMPLETED or d.kind == "approval" else None,
                error=step_error.get(key, ""),
                model=d.model,
                prompt_tokens=tokens[0],
                completion_tokens=tokens[1],
                cost_usd=step_cost,
                attributes=d.attributes,
                created_at=started_at + begin * ms,
            )
        )
        if d.parent:
            parents[len(steps) - 1] = d.parent
        prompt += tokens[0]
        completion += tokens[1]
        cost += step_cost
        if state == StepStatus.COMPLETED:
            credits += d.credits
    execution.prompt_tokens = prompt
    execution.completion_tokens = completion
    execution.total_tokens = prompt + completion
    execution.cost_usd = cost
    execution.step_count = len(steps)
    unbilled = completed_at is None or (completed_at > now - UNBILLED_WINDOW and rng.random() < 0.6)
    execution.credits = None if unbilled else credits.quantize(Decimal("0.0001"))

    built = Built(execution=execution, steps=steps, parents=parents, keys=keep)
    kept = set(keep)
    for n, art in enumerate(draft.artifacts):
        # A screenshot is taken once its step is done; a step still running has none yet.
        if art.step and (art.step not in kept or step_status[art.step] == StepStatus.RUNNING):
            continue
        if art.kind == "code" and status != Status.COMPLETED:
            continue
        step_at = times[art.step][1] if art.step else last_end
        at = started_at + step_at * ms if started_at else created
        artifact = Artifact(
            id=demo_uuid("artifact", spec.key, n),
            workspace=ctx.workspace,
            execution=execution,
            kind=art.kind,
            name=art.name,
            content_type=art.content_type,
            bounding_boxes=art.bounding_boxes,
            created_at=min(at, now) if art.step else created,
        )
        render = art.render
        if failure and failure.screenshot and art.step == failure.step:
            render = lambda shot=failure.screenshot: render_screenshot(*shot)  # noqa: E731
        built.artifacts.append((artifact, render(), art.step))
    shots = [content for a, content, _ in built.artifacts if a.kind == "screenshot"]
    if spec.key in RECORDED and execution.is_terminal and len(shots) >= 2:
        built.artifacts.append(
            (
                Artifact(
                    id=demo_uuid("artifact", spec.key, "recording"),
                    workspace=ctx.workspace,
                    execution=execution,
                    kind="video",
                    name="session-recording.webm",
                    content_type="video/webm",
                    created_at=completed_at or created,
                ),
                screencast(shots),
                None,
            )
        )
    _feedback(built, spec, draft, rng, ctx)
    return built
