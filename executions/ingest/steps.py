"""Writing steps in bulk: the engine under steps_append (JSON API) and traces_ingest (OTLP).

A request's steps are planned first (which are new, which re-send a step we have,
which parent each hangs under) with at most two reads per request, then written with
one INSERT per tree level, so a batch of hundreds of spans costs a handful of queries.

Identity: a step is (execution, span_id) or (execution, sequence). A step re-sent with
either is updated in place (a runtime reports a tool call as running, then as
completed) and never duplicated. A child may arrive before its parent (OTLP exporters
flush children first): it is stored with its parent_span_id and linked when the
parent arrives.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection
from django.db.models import Max, Q

from executions.models import Execution, Step, StepKind, StepStatus

# Costs are kept to 12 places: per-token prices are millionths of a cent.
COST_PLACES = Decimal("0.000000000001")
SEQUENCE_MAX = 2_147_483_647  # Step.sequence is a 32-bit column
COST_LIMIT = Decimal("99999999")

# The fields a re-sent step may change, with the StepRecord attribute that holds each.
UPDATABLE = (
    ("kind", "kind"),
    ("name", "name"),
    ("status", "status"),
    ("started_at", "started_at"),
    ("ended_at", "ended_at"),
    ("duration_ms", "duration_ms"),
    ("input", "input"),
    ("output", "output"),
    ("error", "error"),
    ("model", "model"),
    ("prompt_tokens", "prompt_tokens"),
    ("completion_tokens", "completion_tokens"),
    ("cost_usd", "cost_usd"),
    ("attributes", "attributes"),
)


class StepConflict(Exception):
    """A step whose identity clashes with a stored one (HTTP 409)."""


class StepInvalid(Exception):
    """A step that refers to something that does not exist (HTTP 422)."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(slots=True, eq=False)
class StepRecord:
    """One step as reported, whichever door it came through."""

    span_id: str | None = None
    parent_span_id: str = ""
    sequence: int | None = None
    parent_sequence: int | None = None
    kind: str = StepKind.OTHER
    name: str = ""
    status: str = StepStatus.COMPLETED
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: int | None = None
    input: Any = None
    output: Any = None
    error: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal | None = None
    # Prompt tokens read from and written to the provider's prompt cache: priced
    # differently (prices.py), kept only in the step's attributes.
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    attributes: dict = field(default_factory=dict)
    # Which fields the sender gave (None: all). A partial re-send changes only those.
    provided: set[str] | None = None
    # Where the step was in the request, for error messages ("steps[3].parent_sequence").
    index: int = 0

    def gives(self, name: str) -> bool:
        return self.provided is None or name in self.provided


@dataclass(slots=True)
class Totals:
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: Decimal = Decimal(0)


@dataclass(slots=True, eq=False)
class _NewStep:
    execution_id: Any
    record: StepRecord
    sequence: int
    parent_new: "_NewStep | None" = None
    parent_id: int | None = None
    depth: int | None = None
    pk: int | None = None
    obj: Step | None = None

    @property
    def resolved_parent_id(self) -> int | None:
        return self.parent_new.pk if self.parent_new is not None else self.parent_id


@dataclass(slots=True)
class Outcome:
    """What happened to one reported step."""

    record: StepRecord
    step: Step | None = None
    new: _NewStep | None = None
    state: str = "created"  # created, updated, unchanged

    def summary(self) -> dict:
        """The step as the API answers it, without building a model instance."""
        if self.step is not None:
            s = self.step
            return {
                "id": s.pk,
                "sequence": s.sequence,
                "span_id": s.span_id,
                "parent_span_id": s.parent_span_id,
                "parent_id": s.parent_id,
                "kind": s.kind,
                "name": s.name,
                "status": s.status,
                "model": s.model,
                "prompt_tokens": s.prompt_tokens,
                "completion_tokens": s.completion_tokens,
                "cost": float(s.cost_usd),
            }
        new, r = self.new, self.new.record
        return {
            "id": new.pk,
            "sequence": new.sequence,
            "span_id": r.span_id or None,
            "parent_span_id": r.parent_span_id or "",
            "parent_id": new.resolved_parent_id,
            "kind": r.kind,
            "name": r.name,
            "status": r.status,
            "model": r.model,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "cost": float(money(r.cost_usd)) if r.cost_usd is not None else 0.0,
        }


@dataclass
class Plan:
    new: list[_NewStep] = field(default_factory=list)
    updates: list[Step] = field(default_factory=list)
    update_fields: set[str] = field(default_factory=set)
    links: list[tuple[Any, _NewStep]] = field(default_factory=list)
    totals: dict[Any, Totals] = field(default_factory=dict)
    outcomes: dict[Any, list[Outcome]] = field(default_factory=dict)
    # Per execution, the parent span ids that children named but that have not arrived.
    waiting: dict[Any, set[str]] = field(default_factory=dict)


def money(value) -> Decimal:
    return Decimal(value).quantize(COST_PLACES, rounding=ROUND_HALF_UP)


@dataclass(slots=True)
class _Stored:
    """What planning needs to know of a stored step (the full row only if it changes)."""

    pk: int
    execution_id: Any
    span_id: str | None
    sequence: int
    parent_span_id: str
    parent_id: int | None


WAITING = "children_waiting"


def children_waiting(execution: Execution) -> bool:
    """Whether some step of this execution named a parent that had not arrived.

    Looking for such children means reading every step of the execution (nothing is
    indexed by parent span id), so it is done only for executions that have them: the
    hint lives in Execution.request next to the other ingestion bookkeeping
    (root_span_id), and set_children_waiting() records it.
    """
    return bool((execution.request or {}).get(WAITING))


def note_children_waiting(execution: Execution, plan: "Plan", *, known: str | None = None) -> None:
    """Record the hint if this plan leaves a child waiting for a parent that is not
    `known` (a trace's root span, which is the execution rather than a step)."""
    missing = plan.waiting.get(execution.pk, set()) - {known}
    if missing and not children_waiting(execution):
        set_children_waiting(execution)


def set_children_waiting(execution: Execution) -> None:
    request = {**(execution.request or {}), WAITING: True}
    execution.request = request
    if not execution._state.adding:
        Execution.objects.filter(pk=execution.pk).update(request=request)


def _existing(batches) -> tuple[list[_Stored], dict[Any, int], list[int]]:
    """The stored steps a request touches, each execution's highest sequence, and (on
    PostgreSQL) ids for the new steps, all in one round trip."""
    stale = [e.pk for e, records, fresh in batches if records and not fresh]
    if not stale:
        return [], {}, []
    waiting = [
        e.pk for e, records, fresh in batches if records and not fresh and children_waiting(e)
    ]
    span_ids: set[str] = set()
    sequences: set[int] = set()
    for _execution, records, fresh in batches:
        if fresh:
            continue
        for r in records:
            if r.span_id:
                span_ids.add(r.span_id)
            if r.parent_span_id:
                span_ids.add(r.parent_span_id)
            if r.sequence is not None:
                sequences.add(r.sequence)
            if r.parent_sequence is not None:
                sequences.add(r.parent_sequence)
    columns = ", ".join(
        ("id", "execution_id", "span_id", "sequence", "parent_span_id", "parent_id")
    )
    if connection.vendor == "postgresql":
        # One statement, each part served by an index: steps by span id, steps by
        # sequence, children waiting for a parent (only where the hint says so),
        # each execution's highest sequence (a backward index scan), and ids for the
        # new steps. Arrays keep it short whatever the batch size: an IN list of a
        # thousand placeholders costs more to build and parse than the lookup.
        table = connection.ops.quote_name(Step._meta.db_table)
        wanted = sum(len(records) for _e, records, fresh in batches if not fresh)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT 0, {columns} FROM {table} "
                "WHERE execution_id = ANY(%(stale)s) AND span_id = ANY(%(spans)s) "
                f"UNION ALL SELECT 0, {columns} FROM {table} "
                "WHERE execution_id = ANY(%(stale)s) AND sequence = ANY(%(sequences)s) "
                f"UNION ALL SELECT 0, {columns} FROM {table} WHERE execution_id = ANY(%(waiting)s) "
                "AND parent_id IS NULL AND parent_span_id = ANY(%(spans)s) "
                "UNION ALL SELECT 1, NULL, e.id, NULL, "
                f"(SELECT max(sequence) FROM {table} WHERE execution_id = e.id), NULL, NULL "
                "FROM unnest(%(stale)s::uuid[]) AS e(id) "
                "UNION ALL SELECT 2, nextval(pg_get_serial_sequence(%(table)s, 'id')), NULL, "
                "NULL, NULL, NULL, NULL FROM generate_series(1, %(wanted)s)",
                {
                    "stale": stale,
                    "waiting": waiting,
                    "spans": list(span_ids),
                    "sequences": list(sequences),
                    "table": Step._meta.db_table,
                    "wanted": wanted,
                },
            )
            found, highest, ids = {}, {}, []
            for part, *values in cursor.fetchall():
                if part == 0:
                    found[values[0]] = _Stored(*values)
                elif part == 1:
                    if values[3] is not None:
                        highest[values[1]] = values[3]
                else:
                    ids.append(values[0])
        return list(found.values()), highest, ids
    condition = Q()
    if span_ids:
        condition |= Q(span_id__in=span_ids)
        if waiting:
            condition |= Q(
                parent__isnull=True, parent_span_id__in=span_ids, execution_id__in=waiting
            )
    if sequences:
        condition |= Q(sequence__in=sequences)
    rows = []
    if condition:
        found = Step.objects.filter(condition, execution_id__in=stale).values_list(
            "id", "execution_id", "span_id", "sequence", "parent_span_id", "parent_id"
        )
        rows = [_Stored(*row) for row in found]
    highest = dict(
        Step.objects.filter(execution_id__in=stale)
        .values("execution_id")
        .annotate(m=Max("sequence"))
        .values_list("execution_id", "m")
    )
    return rows, highest, []


def _changes(step: Step, record: StepRecord) -> list[str]:
    changed = []
    for column, attr in UPDATABLE:
        if not record.gives(attr):
            continue
        value = getattr(record, attr)
        if column == "cost_usd":
            if value is None:
                continue
            value = money(value)
        if column == "attributes":
            value = {**step.attributes, **value}
        if getattr(step, column) != value:
            setattr(step, column, value)
            changed.append(column)
    return changed


def _match(pk, r: StepRecord, by_span, by_sequence) -> "_Stored | None":
    if r.span_id and (pk, r.span_id) in by_span:
        return by_span[(pk, r.span_id)]
    if r.sequence is not None:
        holder = by_sequence.get((pk, r.sequence))
        if holder is not None and not (
            r.span_id and holder.span_id and holder.span_id != r.span_id
        ):
            return holder
    return None


def plan_steps(batches: list[tuple[Execution, list[StepRecord], bool]]) -> Plan:
    """Decide what to write for each (execution, records, fresh) without writing.

    `fresh` says the execution was created by this very request, so it has no stored
    steps to look up.
    """
    plan = Plan()
    rows, highest, ids = _existing(batches)
    by_span = {(s.execution_id, s.span_id): s for s in rows if s.span_id}
    by_sequence = {(s.execution_id, s.sequence): s for s in rows}
    waiting: dict[tuple, list[_Stored]] = {}
    for s in rows:
        if s.parent_id is None and s.parent_span_id:
            waiting.setdefault((s.execution_id, s.parent_span_id), []).append(s)
    full: dict[int, Step] = {}
    if rows:
        # Re-sent steps: only these are read whole, to compare and update them.
        wanted = {
            found.pk
            for execution, records, _fresh in batches
            for r in records
            if (found := _match(execution.pk, r, by_span, by_sequence)) is not None
        }
        if wanted:
            full = Step.objects.in_bulk(wanted)

    for execution, records, _fresh in batches:
        pk = execution.pk
        totals = plan.totals.setdefault(pk, Totals())
        outcomes = plan.outcomes.setdefault(pk, [])
        # A step sent twice in one request counts once; the later copy wins.
        unique: dict[tuple, StepRecord] = {}
        for r in records:
            if r.span_id:
                key = ("span", r.span_id)
            elif r.sequence is not None:
                key = ("seq", r.sequence)
            else:
                key = ("new", id(r))
            unique.pop(key, None)
            unique[key] = r
        given = [r.sequence for r in unique.values() if r.sequence is not None]
        next_sequence = max(highest.get(pk, -1), max(given, default=-1)) + 1

        new_by_span: dict[str, _NewStep] = {}
        new_by_sequence: dict[int, _NewStep] = {}
        fresh_steps: list[_NewStep] = []
        for r in unique.values():
            stored = by_span.get((pk, r.span_id)) if r.span_id else None
            match = full[stored.pk] if stored is not None else None
            if r.sequence is not None:
                holder = by_sequence.get((pk, r.sequence))
                if match is not None and match.sequence != r.sequence:
                    raise StepConflict(
                        f"steps[{r.index}]: span_id {r.span_id!r} is already step "
                        f"{match.sequence} of this execution; a step's sequence cannot change."
                    )
                if match is None and holder is not None:
                    if r.span_id and holder.span_id and holder.span_id != r.span_id:
                        raise StepConflict(
                            f"steps[{r.index}]: sequence {r.sequence} already belongs to the "
                            f"step with span_id {holder.span_id!r}."
                        )
                    match = full[holder.pk]
            if match is not None:
                before = (match.prompt_tokens, match.completion_tokens, match.cost_usd)
                changed = _changes(match, r)
                if changed:
                    plan.updates.append(match)
                    plan.update_fields.update(changed)
                    totals.prompt_tokens += match.prompt_tokens - before[0]
                    totals.completion_tokens += match.completion_tokens - before[1]
                    totals.cost_usd += match.cost_usd - before[2]
                outcomes.append(
                    Outcome(record=r, step=match, state="updated" if changed else "unchanged")
                )
                continue
            if r.sequence is not None:
                sequence = r.sequence
            else:
                sequence = next_sequence
                next_sequence += 1
                if sequence > SEQUENCE_MAX:
                    raise StepInvalid(
                        f"steps[{r.index}].sequence",
                        f"none is left after {SEQUENCE_MAX}; send the step with its own sequence.",
                    )
            new = _NewStep(execution_id=pk, record=r, sequence=sequence)
            if r.span_id:
                new_by_span[r.span_id] = new
            new_by_sequence[sequence] = new
            fresh_steps.append(new)
            outcomes.append(Outcome(record=r, new=new))
            totals.steps += 1
            totals.prompt_tokens += r.prompt_tokens
            totals.completion_tokens += r.completion_tokens
            totals.cost_usd += money(r.cost_usd) if r.cost_usd is not None else 0

        for new in fresh_steps:
            r = new.record
            if r.parent_span_id:
                parent = new_by_span.get(r.parent_span_id)
                if parent is not None:
                    new.parent_new = parent
                elif (stored := by_span.get((pk, r.parent_span_id))) is not None:
                    new.parent_id = stored.pk
                else:
                    # The parent has not arrived yet: parent_span_id links it later.
                    plan.waiting.setdefault(pk, set()).add(r.parent_span_id)
            elif r.parent_sequence is not None:
                parent = new_by_sequence.get(r.parent_sequence)
                if parent is not None:
                    new.parent_new = parent
                elif (stored := by_sequence.get((pk, r.parent_sequence))) is not None:
                    new.parent_id = stored.pk
                else:
                    raise StepInvalid(
                        f"steps[{r.index}].parent_sequence",
                        f"there is no step {r.parent_sequence} in this execution.",
                    )
        for span_id, new in new_by_span.items():
            for child in waiting.get((pk, span_id), ()):
                plan.links.append((child, new))
        plan.new.extend(fresh_steps)
    _assign_depths(plan.new)
    if len(ids) >= len(plan.new):
        for new, pk in zip(plan.new, ids, strict=False):
            new.pk = pk
    return plan


def _assign_depths(steps: list[_NewStep]) -> None:
    """Tree level of each new step among the new ones; a parent cycle is cut where found."""
    for start in steps:
        chain: list[_NewStep] = []
        seen: set[int] = set()
        node = start
        while node.depth is None and node.parent_new is not None:
            if id(node) in seen:
                node.parent_new = None  # a cycle: this one becomes a root
                break
            seen.add(id(node))
            chain.append(node)
            node = node.parent_new
        if node.depth is None:
            node.depth = 0
        for item in reversed(chain):
            if item is not node:
                item.depth = item.parent_new.depth + 1
