"""Budgets: what one run may spend, and the stop when it passes that.

Owns the budget a run starts with (its agent version's `config["budget"]`, overridden
key by key by the `budget` given at start), its validation, and the check ingestion
makes after every batch of steps through either door (steps_append for the JSON API,
traces_ingest for OTLP). The check runs under the execution's row lock, in the
transaction that adds the batch to the totals, so two concurrent batches cannot both
pass a limit: the second one reads the totals the first one wrote.

A budget, as given (any subset):

    {"cost": 0.50, "tokens": 200000, "steps": 300, "seconds": 900,
     "soft": {"cost": 0.30},            # only flag the run
     "loop": {"tool": 5, "reply": 3}}   # or "loop": 5 for both

Hard limits and loops stop the run: `terminated` through control.services.
execution_terminate (lifecycle + the signed cancel webhook), the crossing step marked
in its attributes, and the stop carried in the append/OTLP answers (`stop_of`). A soft
limit only flags the run (`Execution.budget["flagged"]`, filterable, an alert metric).
What the run has spent is not kept here: the totals on Execution are the truth.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from django.db import transaction
from django.utils import timezone

from executions.models import STOPPED_STATUSES, Execution, Status, Step, StepKind

LIMITS = ("cost", "tokens", "steps", "seconds")
LOOP_KINDS = ("tool", "reply")
LOOP_MIN = 2
STOP_ATTRIBUTE = "runboard.budget_stop"
SOFT_ATTRIBUTE = "runboard.budget_soft"


class BudgetInvalid(ValueError):
    """A budget that cannot be used; `field` is its path in the request (budget.cost)."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def _number(value, where: str, *, integer: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        kind = "a whole number" if integer else "a number"
        raise BudgetInvalid(where, f"must be {kind} greater than 0.")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise BudgetInvalid(where, "must be a number greater than 0.") from None
    if not number.is_finite() or number <= 0:
        raise BudgetInvalid(where, "must be greater than 0.")
    if integer:
        if number != number.to_integral_value():
            raise BudgetInvalid(where, "must be a whole number.")
        if number > 2**62:
            raise BudgetInvalid(where, "is too large.")
        return int(number)
    if number > Decimal("99999999"):
        raise BudgetInvalid(where, "is too large (at most 99999999).")
    return str(number)


def _limits(value: dict, root: str) -> dict:
    limits = {}
    for name in LIMITS:
        if name in value and value[name] is not None:
            limits[name] = _number(value[name], f"{root}.{name}", integer=name != "cost")
    return limits


def parse(value, root: str = "budget") -> dict | None:
    """The budget as stored, from what a request or a version's config says; None for
    no budget. BudgetInvalid names the field at fault."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BudgetInvalid(root, 'must be an object such as {"cost": 0.5, "steps": 300}.')
    known = {*LIMITS, "soft", "loop"}
    for key in value:
        if key not in known:
            raise BudgetInvalid(
                f"{root}.{key}", f"unknown budget key; expected any of: {', '.join(sorted(known))}."
            )
    budget: dict = {}
    limits = _limits(value, root)
    if limits:
        budget["limits"] = limits
    soft = value.get("soft")
    if soft is not None:
        if not isinstance(soft, dict):
            raise BudgetInvalid(f"{root}.soft", 'must be an object such as {"cost": 0.3}.')
        for key in soft:
            if key not in LIMITS:
                raise BudgetInvalid(
                    f"{root}.soft.{key}", f"unknown limit; expected any of: {', '.join(LIMITS)}."
                )
        if soft_limits := _limits(soft, f"{root}.soft"):
            budget["soft"] = soft_limits
    loop = value.get("loop")
    if loop is not None:
        if isinstance(loop, dict):
            for key in loop:
                if key not in LOOP_KINDS:
                    raise BudgetInvalid(f"{root}.loop.{key}", "expected 'tool' or 'reply'.")
            repeats = {k: loop[k] for k in LOOP_KINDS if loop.get(k) is not None}
        else:
            repeats = dict.fromkeys(LOOP_KINDS, loop)
        parsed = {}
        for key, n in repeats.items():
            where = f"{root}.loop" if not isinstance(loop, dict) else f"{root}.loop.{key}"
            count = _number(n, where, integer=True)
            if count < LOOP_MIN:
                raise BudgetInvalid(where, f"must be at least {LOOP_MIN} (repeats in a row).")
            parsed[key] = count
        if parsed:
            budget["loop"] = parsed
    return budget or None


def effective(version, requested) -> dict | None:
    """A new run's budget: its version's config["budget"], each part overridden by the
    budget given at start. BudgetInvalid says which of the two is wrong."""
    base = None
    if version is not None and isinstance(version.config, dict):
        base = parse(version.config.get("budget"), root="config.budget")
    asked = parse(requested)
    if base is None:
        return asked
    if asked is None:
        return base
    merged = {**base}
    for part in ("limits", "soft", "loop"):
        if part in asked:
            merged[part] = {**base.get(part, {}), **asked[part]}
    return merged


# --- the check -----------------------------------------------------------------------


@dataclass
class Crossing:
    limit: str
    message: str
    sequence: int | None
    step_id: int | None


def usd(value: Decimal) -> str:
    value = Decimal(value)
    if abs(value) >= Decimal("0.1"):
        return f"${value.quantize(Decimal('0.01'))}"
    text = f"{value.quantize(Decimal('0.000001')).normalize():f}"
    return f"${text}"


def _describe(limit: str, spent, allowed) -> str:
    if limit == "cost":
        return f"cost {usd(spent)} passed {usd(Decimal(allowed))}"
    if limit == "seconds":
        return f"duration {int(spent)}s passed {allowed}s"
    return f"{limit} {int(spent):,} passed {int(allowed):,}"


def _digest(value) -> str:
    try:
        raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        raw = repr(value).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def _step_of(outcome) -> tuple[int | None, int | None, dict]:
    if outcome.step is not None:
        return outcome.step.sequence, outcome.step.pk, outcome.step.attributes or {}
    new = outcome.new
    return new.sequence, new.pk, new.record.attributes or {}


def _crossed(limits: dict, spent: dict) -> str | None:
    for name in LIMITS:
        if name in limits and name in spent:
            allowed = Decimal(str(limits[name]))
            if Decimal(spent[name]) > allowed:
                return name
    return None


def _elapsed(execution: Execution, record, now: datetime) -> float | None:
    started = execution.started_at
    if started is None:
        return None
    at = record.ended_at or record.started_at or now if record is not None else now
    return max(0.0, (at - started).total_seconds())


def check(execution: Execution, outcomes, totals) -> Crossing | None:
    """After a batch's steps are written and added to the totals (the caller holds the
    row lock): flag soft limits, and stop the run at the first hard limit or loop the
    batch crosses. Nothing is read; at most one UPDATE of the budget, plus the stop."""
    budget = execution.budget
    if not budget or execution.status in STOPPED_STATUSES or execution.is_terminal:
        return None
    hard = budget.get("limits", {})
    soft = budget.get("soft", {})
    loops = budget.get("loop", {})
    state = dict(budget.get("state") or {})
    flags = list(budget.get("flags") or [])
    flagged = {f["limit"] for f in flags}
    now = timezone.now()
    # The totals before this batch, then each new step's share added in order, so the
    # step that crosses is named. Re-sent steps change totals by an amount the plan
    # only knows in sum; what the walk does not explain is put on the batch's last step.
    spent = {
        "cost": Decimal(execution.cost_usd) - Decimal(totals.cost_usd),
        "tokens": execution.total_tokens - totals.prompt_tokens - totals.completion_tokens,
        "steps": execution.step_count - totals.steps,
    }
    crossing = None
    soft_hits: list[tuple[str, Any]] = []
    ordered = list(outcomes)
    for index, outcome in enumerate(ordered):
        record = outcome.record
        if outcome.state == "created":
            spent["cost"] += Decimal(record.cost_usd or 0)
            spent["tokens"] += record.prompt_tokens + record.completion_tokens
            spent["steps"] += 1
        if index == len(ordered) - 1:
            spent = {
                "cost": Decimal(execution.cost_usd),
                "tokens": execution.total_tokens,
                "steps": execution.step_count,
            }
        elapsed = _elapsed(execution, record, now)
        now_spent = {**spent, **({"seconds": elapsed} if elapsed is not None else {})}
        for name in LIMITS:
            if name in soft and name not in flagged and _crossed({name: soft[name]}, now_spent):
                flagged.add(name)
                soft_hits.append((name, outcome, now_spent[name]))
        if outcome.state == "created" and loops:
            loop_message = _loop(state, loops, record)
            if loop_message:
                crossing = _crossing(outcome, "loop", f"loop: {loop_message}")
                break
        name = _crossed(hard, now_spent)
        if name:
            crossing = _crossing(outcome, name, _describe(name, now_spent[name], hard[name]))
            break

    for name, outcome, amount in soft_hits:
        sequence, step_id, attributes = _step_of(outcome)
        message = _describe(name, amount, soft[name])
        flags.append(
            {"limit": name, "message": message, "sequence": sequence, "at": now.isoformat()}
        )
        _mark(step_id, attributes, SOFT_ATTRIBUTE, message)
    new_budget = {**budget, "state": state} if loops else dict(budget)
    if flags:
        new_budget["flags"] = flags
        new_budget["flagged"] = True
    if crossing is not None:
        reason = f"budget: {crossing.message}" + (
            f" at step #{crossing.sequence}" if crossing.sequence is not None else ""
        )
        new_budget["stop"] = {
            "limit": crossing.limit,
            "reason": reason,
            "sequence": crossing.sequence,
            "step_id": crossing.step_id,
        }
    if new_budget != budget:
        execution.budget = new_budget
        Execution.objects.filter(pk=execution.pk).update(budget=new_budget)
    if crossing is not None:
        from executions.control.services import execution_terminate

        execution_terminate(execution=execution, reason=new_budget["stop"]["reason"], by="budget")
    return crossing


def _crossing(outcome, limit: str, message: str) -> Crossing:
    sequence, step_id, attributes = _step_of(outcome)
    _mark(step_id, attributes, STOP_ATTRIBUTE, message)
    return Crossing(limit=limit, message=message, sequence=sequence, step_id=step_id)


def _mark(step_id, attributes: dict, key: str, message: str) -> None:
    """Write the note on the step, so its card in the timeline says what it crossed."""
    if step_id is None:
        return
    attributes[key] = message
    Step.objects.filter(pk=step_id).update(attributes=attributes)


def _loop(state: dict, loops: dict, record) -> str | None:
    """Count the same tool call (name and arguments) and the same model reply in a row;
    a tool call does not break a row of model replies and the other way round, since an
    agent loop alternates them."""
    if record.kind == StepKind.TOOL_CALL and "tool" in loops:
        key = _digest([record.name, record.input])
        last, count = state.get("tool") or ("", 0)
        count = count + 1 if key == last else 1
        state["tool"] = [key, count]
        if count >= loops["tool"]:
            return (
                f"tool {record.name or '(unnamed)'} called {count} times in a row "
                "with the same arguments"
            )
    if record.kind == StepKind.MODEL_CALL and "reply" in loops and record.output not in (None, ""):
        key = _digest(record.output)
        last, count = state.get("reply") or ("", 0)
        count = count + 1 if key == last else 1
        state["reply"] = [key, count]
        if count >= loops["reply"]:
            return f"the same model reply {count} times in a row"
    return None


def stop_of(execution: Execution) -> dict | None:
    """What a runtime reporting on a stopped run is told: the run is over, and why.
    Runtimes without a webhook learn a stop this way on their next report."""
    if execution.status not in STOPPED_STATUSES:
        return None
    stop = (execution.budget or {}).get("stop") or {}
    return {
        "status": execution.status,
        "reason": execution.failure_reason or stop.get("reason") or "",
        "by": execution.stopped_by or "",
        "limit": stop.get("limit") if execution.status == Status.TERMINATED else None,
        "step": stop.get("sequence") if execution.status == Status.TERMINATED else None,
    }


def seconds_sweep(*, now: datetime | None = None) -> int:
    """Stop runs past their `seconds` limit that have gone quiet: the check at
    ingestion only sees runs that report. Run by each scheduler round; returns how
    many it stopped. Only runs with such a limit are read (a JSON key lookup)."""
    from executions.control.services import execution_terminate
    from executions.lifecycle import IllegalTransition

    now = now or timezone.now()
    stopped = 0
    candidates = Execution.objects.filter(
        status__in=[Status.PENDING, Status.QUEUED, Status.RUNNING, Status.AWAITING_APPROVAL],
        budget__limits__has_key="seconds",
        started_at__isnull=False,
    )
    for execution in candidates.iterator(chunk_size=500):
        allowed = execution.budget["limits"]["seconds"]
        elapsed = (now - execution.started_at).total_seconds()
        if elapsed <= allowed:
            continue
        reason = f"budget: {_describe('seconds', elapsed, allowed)} without a report"
        budget = {**execution.budget, "stop": {"limit": "seconds", "reason": reason}}
        try:
            with transaction.atomic():
                Execution.objects.filter(pk=execution.pk).update(budget=budget)
                execution.budget = budget
                execution_terminate(execution=execution, reason=reason, by="budget")
            stopped += 1
        except IllegalTransition:
            continue  # it ended meanwhile
    return stopped
