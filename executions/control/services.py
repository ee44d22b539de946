"""The control plane's writes: execute, rerun, cancel, approve, reject and batches
(timeouts and schedules: scheduling.py).

Views and the API call these; they validate, change rows inside one transaction,
move statuses only through lifecycle.transition, and leave the runtime to be told
by dispatch (a webhook task enqueued on commit).

Over 500 lines on purpose: execute, rerun and batches share run creation
(_execution_new, _metadata_parse, _version_budget); approve and reject share _decide.
"""

import hashlib
import json
import logging
import secrets

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent, AgentVersion, Schedule, Workspace
from agents.validation import SchemaError, schema_errors, url_problem
from executions import budgets, counters, lifecycle
from executions.models import Batch, Execution, Priority, Source, Status

from . import dispatch

logger = logging.getLogger(__name__)

Event = dispatch.Event

MAX_BATCH_SIZE = 1000
MAX_ERRORS_SHOWN = 20
INLINE_AGENT_NAME = "inline"


class ControlError(Exception):
    """A request the control plane refuses; `messages` name the field and the problem."""

    def __init__(self, *messages: str):
        self.messages = list(messages)
        super().__init__(" ".join(messages))


class InvalidRequest(ControlError):
    """Bad input: answered 422 by the API, shown next to the form in the dashboard."""


class NotFound(ControlError):
    """No such agent or version in this workspace: a 404."""


class IllegalAction(lifecycle.IllegalTransition):
    """An action the execution's status does not allow (rerun while running, approve
    when not awaiting approval). A kind of IllegalTransition, so the same 409 answers it."""

    def __init__(self, execution: Execution, action: str, reason: str):
        super().__init__(execution.id, execution.status, action, reason)


# --- Parsing --------------------------------------------------------------------------


def priority_parse(value) -> int:
    """'low', 'normal' or 'high' (or 0-2); InvalidRequest names the choices."""
    if value is None or value == "":
        return Priority.NORMAL
    if isinstance(value, int) and not isinstance(value, bool) and value in Priority.values:
        return value
    for member in Priority:
        if str(value).strip().lower() == member.label:
            return member.value
    choices = ", ".join(Priority.labels)
    raise InvalidRequest(f"priority: {value!r} is not a priority; expected one of: {choices}.")


def inputs_validate(*, agent_version: AgentVersion, inputs, root: str = "inputs") -> None:
    """Check inputs against the version's input_schema; InvalidRequest lists each problem."""
    if not isinstance(inputs, dict):
        raise InvalidRequest(f"{root}: must be a JSON object, got {type(inputs).__name__}.")
    schema = agent_version.input_schema
    if not schema:
        return
    try:
        problems = schema_errors(schema, inputs, root=root)
    except SchemaError as exc:
        raise InvalidRequest(
            f"The input schema of {agent_version.full_name} is not a valid JSON Schema "
            f"({exc.message}); fix it in admin before executing."
        ) from None
    if problems:
        messages = [f"{where}: {message}" for where, message in problems]
        if len(messages) > MAX_ERRORS_SHOWN:
            extra = len(messages) - MAX_ERRORS_SHOWN
            messages = [*messages[:MAX_ERRORS_SHOWN], f"... and {extra} more problems."]
        raise InvalidRequest(*messages)


def _metadata_parse(metadata) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidRequest(f"metadata: must be a JSON object, got {type(metadata).__name__}.")
    return metadata


def agent_version_resolve(*, workspace: Workspace, ref: str) -> AgentVersion:
    """`name:version` (or just `name` for its newest version) within one workspace."""
    ref = (ref or "").strip()
    if not ref:
        raise InvalidRequest("agent: give the agent as name:version, e.g. invoice-extractor:v1.")
    name, _, version = ref.rpartition(":") if ":" in ref else (ref, "", "")
    agent = (
        Agent.objects.filter(workspace=workspace)
        .filter(Q(name=name) | Q(slug=name))
        .order_by("pk")
        .first()
    )
    if agent is None:
        raise NotFound(f"agent: no agent named {name!r} in this workspace.")
    versions = agent.versions.select_related("agent")
    found = versions.filter(version=version).first() if version else versions.first()
    if found is None:
        known = ", ".join(versions.values_list("version", flat=True)[:10]) or "none"
        raise NotFound(
            f"agent: {agent.name} has no version {version!r}"
            if version
            else f"agent: {agent.name} has no versions",
            f"(versions: {known}).",
        )
    return found


def inline_version_get_or_create(
    *,
    workspace: Workspace,
    config: dict,
    agent_name: str = "",
    webhook_url: str = "",
    webhook_secret: str = "",
) -> AgentVersion:
    """The ad-hoc agent version for an inline config: one per distinct config and webhook.

    Executing the same inline config twice lands on the same version, so its runs
    group together in the table and reruns find the config again.
    """
    if not isinstance(config, dict) or not config:
        raise InvalidRequest("config: must be a non-empty JSON object (prompt, model, ...).")
    if webhook_url and (problem := url_problem(webhook_url)):
        raise InvalidRequest(f"webhook_url: {problem}.")
    name = (agent_name or INLINE_AGENT_NAME).strip()[:200]
    canonical = json.dumps({"config": config, "webhook_url": webhook_url}, sort_keys=True)
    version_name = "inline-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]
    with transaction.atomic():
        agent, _ = Agent.objects.get_or_create(
            workspace=workspace,
            name=name,
            defaults={"description": "Ad-hoc agent for executions with an inline config."},
        )
        version, created = AgentVersion.objects.get_or_create(
            agent=agent,
            version=version_name,
            defaults={
                "config": config,
                "webhook_url": webhook_url,
                "webhook_secret": webhook_secret or secrets.token_urlsafe(32),
                "description": "Created by an execution with an inline config.",
            },
        )
        if not created and webhook_secret and version.webhook_secret != webhook_secret:
            version.webhook_secret = webhook_secret
            version.save(update_fields=["webhook_secret"])
    return version


def reproduce_request(agent_version: AgentVersion, inputs: dict, priority: int, metadata: dict):
    """The API call that starts the same run, shown on the detail page as 'reproduce'."""
    return {
        "method": "POST",
        "path": f"/api/v1/agents/{agent_version.full_name}/execute",
        "headers": {"Content-Type": "application/json", "Authorization": "Bearer [redacted]"},
        "body": {
            "inputs": inputs,
            "priority": Priority(priority).label,
            "metadata": metadata,
        },
    }


# --- Creating executions --------------------------------------------------------------


def _execution_new(
    *,
    agent_version: AgentVersion,
    inputs: dict,
    priority: int,
    metadata: dict,
    source: str,
    status: str = Status.QUEUED,
    triggered_by=None,
    request: dict | None = None,
    rerun_of: Execution | None = None,
    batch: Batch | None = None,
    schedule: Schedule | None = None,
    idempotency_key: str | None = None,
) -> Execution:
    """An unsaved execution of a version. Callers save it and call counters.count_created.

    Executions the control plane starts are born queued (their webhook is enqueued in
    the same transaction), so there is no pending-then-queued status change to make.
    """
    now = timezone.now()
    agent = agent_version.agent
    return Execution(
        workspace_id=agent.workspace_id,
        agent=agent,
        agent_version=agent_version,
        agent_name=agent.name,
        version_name=agent_version.version,
        status=status,
        priority=priority,
        source=source,
        input=inputs,
        metadata=metadata,
        triggered_by=triggered_by,
        request=request or reproduce_request(agent_version, inputs, priority, metadata),
        rerun_of=rerun_of,
        batch=batch,
        schedule=schedule,
        idempotency_key=idempotency_key or None,
        created_at=now,
        updated_at=now,
        queued_at=now if status == Status.QUEUED else None,
        budget=_version_budget(agent_version),
    )


def _version_budget(agent_version: AgentVersion) -> dict | None:
    """Reruns, batches and schedules run under their version's budget. One saved with a
    wrong budget was refused at save time; an older one runs without rather than not at all."""
    try:
        return budgets.effective(agent_version, None)
    except budgets.BudgetInvalid:
        logger.warning("agent version %s has an invalid budget; ignored", agent_version.pk)
        return None


def execution_execute(
    *,
    workspace: Workspace,
    inputs,
    agent_version: AgentVersion | None = None,
    config: dict | None = None,
    agent_name: str = "",
    webhook_url: str = "",
    webhook_secret: str = "",
    priority="normal",
    metadata=None,
    source: str = Source.API,
    triggered_by=None,
    request: dict | None = None,
    idempotency_key: str | None = None,
    schedule: Schedule | None = None,
    budget: dict | None = None,
) -> Execution:
    """Start one execution: of a saved agent version, or of an inline config.

    Inputs are validated against the version's input schema. The execution is queued
    and its execute webhook enqueued when the transaction commits. With an
    idempotency key that was used before, the earlier execution is returned.
    """
    if (agent_version is None) == (config is None):
        raise InvalidRequest("Give either an agent (name:version) or an inline config, not both.")
    if agent_version is None:
        agent_version = inline_version_get_or_create(
            workspace=workspace,
            config=config,
            agent_name=agent_name,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
        )
    if agent_version.agent.workspace_id != workspace.pk:
        raise NotFound("agent: no such agent version in this workspace.")
    priority = priority_parse(priority)
    metadata = _metadata_parse(metadata)
    inputs_validate(agent_version=agent_version, inputs=inputs)
    try:
        run_budget = budgets.effective(agent_version, budget)
    except budgets.BudgetInvalid as exc:
        raise InvalidRequest(f"{exc.field}: {exc.message}") from None
    if idempotency_key:
        earlier = Execution.objects.filter(
            workspace=workspace, idempotency_key=idempotency_key
        ).first()
        if earlier is not None:
            return earlier

    try:
        with transaction.atomic():
            execution = _execution_new(
                agent_version=agent_version,
                inputs=inputs,
                priority=priority,
                metadata=metadata,
                source=source,
                triggered_by=triggered_by,
                request=request,
                idempotency_key=idempotency_key,
                schedule=schedule,
            )
            execution.budget = run_budget
            execution.save(force_insert=True)
            counters.count_created([execution])
            dispatch.enqueue_delivery(execution, Event.EXECUTE)
    except IntegrityError:
        # Two retries of one call raced past the lookup above: the unique constraint let
        # one insert win (its transaction has committed by now) and this caller gets it.
        # The rollback also dropped this attempt's webhook and counter.
        earlier = (
            Execution.objects.filter(workspace=workspace, idempotency_key=idempotency_key).first()
            if idempotency_key
            else None
        )
        if earlier is None:
            raise
        return earlier
    return execution


def batch_execute(
    *,
    workspace: Workspace,
    agent_version: AgentVersion,
    inputs: list,
    name: str = "",
    priority="normal",
    metadata=None,
    triggered_by=None,
) -> Batch:
    """Execute one version over many inputs as one Batch; all inputs are checked first,
    so a bad item starts nothing."""
    if agent_version.agent.workspace_id != workspace.pk:
        raise NotFound("agent: no such agent version in this workspace.")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidRequest("inputs: give a non-empty list of input objects, one per execution.")
    if len(inputs) > MAX_BATCH_SIZE:
        raise InvalidRequest(
            f"inputs: a batch holds at most {MAX_BATCH_SIZE} items, got {len(inputs)}."
        )
    priority = priority_parse(priority)
    metadata = _metadata_parse(metadata)
    problems = []
    for index, item in enumerate(inputs):
        try:
            inputs_validate(agent_version=agent_version, inputs=item, root=f"inputs[{index}]")
        except InvalidRequest as exc:
            problems.extend(exc.messages)
    if problems:
        raise InvalidRequest(*problems[:MAX_ERRORS_SHOWN])

    with transaction.atomic():
        batch = Batch.objects.create(
            workspace=workspace,
            agent_version=agent_version,
            name=(name or f"{agent_version.full_name}, {len(inputs)} inputs")[:200],
            created_by=triggered_by,
        )
        executions = [
            _execution_new(
                agent_version=agent_version,
                inputs=item,
                priority=priority,
                metadata={**metadata, "batch_index": index},
                source=Source.BATCH,
                triggered_by=triggered_by,
                batch=batch,
            )
            for index, item in enumerate(inputs)
        ]
        Execution.objects.bulk_create(executions, batch_size=500)
        counters.count_created(executions)
        for execution in executions:
            dispatch.enqueue_delivery(execution, Event.EXECUTE)
    return batch


def execution_rerun(
    *,
    execution: Execution,
    triggered_by=None,
    agent_version: AgentVersion | None = None,
    inputs=None,
    priority=None,
    metadata=None,
) -> Execution:
    """A new execution with the same version, inputs, priority and metadata, linked to
    the original (rerun_of, and the original's `reruns`). Only a finished run reruns.

    Any of version, inputs, priority and metadata may be given to change it (the
    dashboard's pre-filled Rerun form); what is given is checked as for an execute.
    """
    if not execution.is_terminal:
        raise IllegalAction(
            execution,
            "rerun",
            f"Execution {execution.id} is {execution.status}; only a finished execution can "
            "be rerun. Cancel it first, or wait for it to end.",
        )
    version = agent_version or execution.agent_version
    if version is None:
        raise IllegalAction(
            execution,
            "rerun",
            f"The agent version {execution.agent_label} that ran execution {execution.id} "
            "has been removed, so it cannot be rerun.",
        )
    if version.agent.workspace_id != execution.workspace_id:
        raise NotFound("agent: no such agent version in this workspace.")
    if inputs is None:
        inputs = execution.input
    else:
        inputs_validate(agent_version=version, inputs=inputs)
    priority = execution.priority if priority is None else priority_parse(priority)
    metadata = execution.metadata if metadata is None else _metadata_parse(metadata)
    with transaction.atomic():
        rerun = _execution_new(
            agent_version=version,
            inputs=inputs,
            priority=priority,
            metadata=metadata,
            source=Source.RERUN,
            triggered_by=triggered_by,
            rerun_of=execution,
        )
        rerun.save(force_insert=True)
        counters.count_created([rerun])
        dispatch.enqueue_delivery(rerun, Event.EXECUTE)
    return rerun


# --- Stopping and deciding ------------------------------------------------------------


def _has_reached_runtime(execution: Execution) -> bool:
    if execution.status not in {Status.PENDING, Status.QUEUED}:
        return True
    # Queued, but an execute attempt was made: the runtime may have it (at least once).
    return execution.deliveries.filter(event=Event.EXECUTE).exists()


def execution_cancel(*, execution: Execution, user=None, reason: str = "") -> Execution:
    """Cancel a pending, queued, running or awaiting-approval execution; the runtime is
    told by webhook. Cancelling a cancelled execution changes nothing.

    The copy in hand may be stale (the runtime started it a moment ago): the status
    is re-read and the cancel tried again, so the person's cancel still wins over a
    run that is merely moving on; a run that has ended is refused.
    """
    who = user.get_username() if user else "the API"
    failure_reason = reason.strip() or f"Cancelled by {who}."
    for _ in range(5):
        if execution.status == Status.CANCELLED:
            return execution
        seen = execution.status
        try:
            with transaction.atomic():
                notify = _has_reached_runtime(execution)
                lifecycle.transition(
                    execution, Status.CANCELLED, failure_reason=failure_reason, by=user or who
                )
                if notify:
                    dispatch.enqueue_delivery(execution, Event.CANCEL)
            return execution
        except lifecycle.IllegalTransition:
            execution.refresh_from_db()
            if execution.status == seen:
                raise  # refused for what it is (finished), not for a stale copy
    raise lifecycle.IllegalTransition(
        execution.id,
        execution.status,
        Status.CANCELLED,
        f"Execution {execution.id} kept changing status; try cancelling again.",
    )


def execution_terminate(*, execution: Execution, reason: str, by="system") -> Execution:
    """The system stops a run (a budget, a resource limit): lifecycle.terminate, and the
    runtime, if it has the run, is told to stop as for a cancel. IllegalTransition if
    the run has ended already."""
    with transaction.atomic():
        notify = _has_reached_runtime(execution)
        lifecycle.terminate(execution, reason=reason, by=by)
        if notify:
            dispatch.enqueue_delivery(execution, Event.CANCEL)
    return execution


def executions_cancel(*, workspace: Workspace, ids, user=None) -> tuple[int, int]:
    """Bulk cancel from the table: (cancelled, skipped). Finished ones are skipped."""
    cancelled = skipped = 0
    executions = Execution.objects.filter(workspace=workspace, pk__in=list(ids)).select_related(
        "agent_version"
    )
    for execution in executions:
        if execution.is_terminal:
            skipped += 1
            continue
        try:
            execution_cancel(execution=execution, user=user)
            cancelled += 1
        except lifecycle.IllegalTransition:
            skipped += 1
    return cancelled, skipped


def _decide(*, execution: Execution, user, note: str, approve: bool) -> Execution:
    action = "approve" if approve else "reject"
    if execution.status != Status.AWAITING_APPROVAL:
        raise IllegalAction(
            execution,
            action,
            f"Execution {execution.id} is {execution.status}; only an execution awaiting "
            f"approval can be {action}d.",
        )
    now = timezone.now()
    note = (note or "").strip()
    with transaction.atomic():
        if approve:
            lifecycle.transition(execution, Status.RUNNING, at=now)
        else:
            who = user.get_username() if user else "the API"
            reason = f"Rejected by {who}" + (f": {note}" if note else ".")
            lifecycle.transition(
                execution, Status.REJECTED, at=now, failure_reason=reason, by=user or who
            )
        Execution.objects.filter(pk=execution.pk).update(
            approval_note=note, decided_by=user, decided_at=now
        )
        execution.approval_note, execution.decided_by, execution.decided_at = note, user, now
        dispatch.enqueue_delivery(execution, Event.APPROVED if approve else Event.REJECTED)
    return execution


def execution_request_approval(*, execution: Execution, request: dict) -> Execution:
    """A runtime pauses at a checkpoint: running -> awaiting_approval, saying what needs
    approving. Asked again while already waiting, it only updates what is asked."""
    if not isinstance(request, dict) or not request:
        raise InvalidRequest("request: say what needs approving, as a non-empty JSON object.")
    if execution.status not in {Status.RUNNING, Status.AWAITING_APPROVAL}:
        raise IllegalAction(
            execution,
            "request_approval",
            f"Execution {execution.id} is {execution.status}; only a running execution can "
            "pause for approval.",
        )
    with transaction.atomic():
        if execution.status == Status.RUNNING:
            lifecycle.transition(execution, Status.AWAITING_APPROVAL)
        # A new checkpoint: the previous decision, if any, no longer applies.
        Execution.objects.filter(pk=execution.pk).update(
            approval_request=request, approval_note="", decided_by=None, decided_at=None
        )
        execution.approval_request, execution.approval_note = request, ""
        execution.decided_by = execution.decided_at = None
    return execution


def execution_approve(*, execution: Execution, user=None, note: str = "") -> Execution:
    """awaiting_approval -> running; the runtime is told to continue."""
    return _decide(execution=execution, user=user, note=note, approve=True)


def execution_reject(*, execution: Execution, user=None, note: str = "") -> Execution:
    """awaiting_approval -> rejected; the runtime is told to stop."""
    return _decide(execution=execution, user=user, note=note, approve=False)
