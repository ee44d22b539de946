"""The status lifecycle of an execution: the only place that knows which status may follow which.

    pending -> queued -> running -> completed | failed | timed_out | awaiting_approval
    awaiting_approval -> running (approved) | rejected
    pending | queued | running | awaiting_approval -> cancelled | terminated

A runtime that reports straight to the API may start at running without a queue,
so pending -> running is allowed too. A queued execution whose dispatch gave up
fails, and one that sat in the queue past its time limit times out.

Nothing else writes Execution.status. An illegal transition raises
IllegalTransition and changes nothing.

Terminated is the system's stop (a budget, a resource limit), told apart from a
person's cancel and from a time limit: `terminate()` is its door. When an execution
ends, its steps still open end with it, with the status that matches its end.
"""

from datetime import datetime

from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from . import counters
from .models import STOPPED_STATUSES, TERMINAL_STATUSES, Execution, Status, Step, StepStatus

ALLOWED: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset(
        {Status.QUEUED, Status.RUNNING, Status.CANCELLED, Status.FAILED, Status.TERMINATED}
    ),
    Status.QUEUED: frozenset(
        {Status.RUNNING, Status.CANCELLED, Status.FAILED, Status.TIMED_OUT, Status.TERMINATED}
    ),
    Status.RUNNING: frozenset(
        {
            Status.COMPLETED,
            Status.FAILED,
            Status.TIMED_OUT,
            Status.AWAITING_APPROVAL,
            Status.CANCELLED,
            Status.TERMINATED,
        }
    ),
    Status.AWAITING_APPROVAL: frozenset(
        {Status.RUNNING, Status.REJECTED, Status.CANCELLED, Status.TIMED_OUT, Status.TERMINATED}
    ),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.TIMED_OUT: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.TERMINATED: frozenset(),
}

# Sent after the transaction that ended executions commits, with `ended`: a list of
# (execution, status). Followers such as automation rules enqueue their work here,
# never in the write path.
execution_ended = Signal()

# The status a step still open takes when its execution ends this way.
STEP_END: dict[str, str] = {
    Status.COMPLETED: StepStatus.COMPLETED,
    Status.FAILED: StepStatus.FAILED,
    Status.TIMED_OUT: StepStatus.TIMED_OUT,
    Status.CANCELLED: StepStatus.CANCELLED,
    Status.REJECTED: StepStatus.REJECTED,
    Status.TERMINATED: StepStatus.TERMINATED,
}

# The spellings other systems use (seeds 001, 002, 004), accepted by the API.
ALIASES = {
    "processing": Status.RUNNING,
    "canceled": Status.CANCELLED,
    "created": Status.PENDING,
    "timeout": Status.TIMED_OUT,
    "killed": Status.TERMINATED,
}


class IllegalTransition(Exception):
    """A status change the lifecycle does not allow. The API answers it with 409."""

    def __init__(self, execution_id, current: str, target: str, reason: str):
        self.execution_id = execution_id
        self.current = current
        self.target = target
        super().__init__(reason)


class UnknownStatus(ValueError):
    pass


def parse_status(value: str) -> Status:
    """A status from its name or one of its aliases; UnknownStatus names the valid ones."""
    key = (value or "").strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    try:
        return Status(key)
    except ValueError:
        valid = ", ".join([*Status.values, *ALIASES])
        raise UnknownStatus(f"Unknown status {value!r}; expected one of: {valid}.") from None


def can_transition(current: str, target: str) -> bool:
    return target in ALLOWED.get(current, frozenset())


def allowed_targets(current: str) -> frozenset[str]:
    return ALLOWED.get(current, frozenset())


def check_transition(execution: Execution, target: str) -> None:
    current = execution.status
    if can_transition(current, target):
        return
    if current == target:
        reason = f"Execution {execution.id} is already {current}."
    elif current in TERMINAL_STATUSES:
        reason = (
            f"Execution {execution.id} is {current}, which is final; it cannot become {target}."
        )
    else:
        allowed = ", ".join(sorted(ALLOWED[current])) or "nothing"
        reason = (
            f"Execution {execution.id} cannot go from {current} to {target}; "
            f"from {current} it may become: {allowed}."
        )
    raise IllegalTransition(execution.id, current, target, reason)


def transition(
    execution: Execution,
    target: str,
    *,
    at: datetime | None = None,
    error: str | None = None,
    failure_reason: str | None = None,
    by=None,
) -> Execution:
    """Move an execution to `target`, stamping its timestamps, or raise IllegalTransition.

    `by` says who stopped it (a user, or a name such as "budget"); it is kept for the
    stops (cancelled, rejected, terminated, timed out) and ignored otherwise.

    The row is updated only if its status is still the one we read, so two
    concurrent transitions cannot both win: the loser gets IllegalTransition
    against the status the winner wrote.
    """
    target = parse_status(target)
    check_transition(execution, target)
    now = at or timezone.now()
    changes: dict = {"status": target, "updated_at": timezone.now()}
    if target == Status.QUEUED and execution.queued_at is None:
        changes["queued_at"] = now
    if target == Status.RUNNING and execution.started_at is None:
        changes["started_at"] = now
    if target == Status.AWAITING_APPROVAL:
        changes["paused_at"] = now
    if by is not None and (target in STOPPED_STATUSES or target == Status.TIMED_OUT):
        changes["stopped_by"] = stopper_name(by)
    if target in TERMINAL_STATUSES:
        changes["completed_at"] = now
        started = changes.get("started_at") or execution.started_at
        if started is not None:
            changes["duration_ms"] = max(0, int((now - started).total_seconds() * 1000))
    if error is not None:
        changes["error"] = error
    if failure_reason is not None:
        changes["failure_reason"] = failure_reason

    with transaction.atomic():
        updated = Execution.objects.filter(pk=execution.pk, status=execution.status).update(
            **changes
        )
        if not updated:
            fresh = Execution.objects.filter(pk=execution.pk).values_list("status", flat=True)
            current = fresh.first()
            raise IllegalTransition(
                execution.id,
                current or execution.status,
                target,
                f"Execution {execution.id} changed to {current} while this change to "
                f"{target} was being made; nothing was changed.",
            )
        counters.count_moved(execution, execution.status, target)
        if target in TERMINAL_STATUSES:
            end_open_steps(execution, STEP_END[target], at=now)
            transaction.on_commit(
                lambda: execution_ended.send(sender=Execution, ended=[(execution, target)])
            )
    for field, value in changes.items():
        setattr(execution, field, value)
    return execution


def announce_ended(executions) -> None:
    """For executions written already ended (an OTLP trace that arrives whole is created
    completed, not moved there): tell execution_ended's followers, once, after commit."""
    ended = [(e, e.status) for e in executions if e.status in TERMINAL_STATUSES]
    if ended:
        transaction.on_commit(lambda: execution_ended.send(sender=Execution, ended=ended))


def stopper_name(by) -> str:
    """What `stopped_by` keeps: a user's username, or the system part's own name."""
    if hasattr(by, "get_username"):
        return by.get_username()[:200]
    return str(by).strip()[:200]


def end_open_steps(execution: Execution, status: str, *, at: datetime) -> int:
    """End the steps still running when their execution ended, so no card keeps
    spinning for a run that is over. Few are ever open at once: one UPDATE per step
    keeps each one's own duration."""
    open_steps = list(
        Step.objects.filter(execution=execution, status=StepStatus.RUNNING).only("pk", "started_at")
    )
    for step in open_steps:
        duration = None
        if step.started_at is not None:
            duration = max(0, int((at - step.started_at).total_seconds() * 1000))
        Step.objects.filter(pk=step.pk, status=StepStatus.RUNNING).update(
            status=status, ended_at=at, duration_ms=duration
        )
    return len(open_steps)


def terminate(execution: Execution, *, reason: str, by="system", at: datetime | None = None):
    """The system stops a run (a budget ran out, a resource limit was hit): any
    non-terminal execution becomes terminated, with `reason` shown to people and `by`
    naming the rule or part that stopped it. Raises IllegalTransition if it has ended.

    This changes the status only; to also tell the runtime to stop working, call
    `executions.control.services.execution_terminate`, which wraps this.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("reason: say why the run was terminated; people read it.")
    return transition(execution, Status.TERMINATED, at=at, failure_reason=reason, by=by)
