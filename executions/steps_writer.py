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

from django.db.models import Max, Q

from agents.models import ModelPrice

from .models import Execution, Step, StepKind, StepStatus

SIX_PLACES = Decimal("0.000001")
COST_LIMIT = Decimal("99999999")
INSERT_BATCH = 1000  # 22 columns a row stays well under PostgreSQL's 65,535 parameters

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
    obj: Step | None = None


@dataclass(slots=True)
class Outcome:
    """What happened to one reported step."""

    record: StepRecord
    step: Step | None = None
    new: _NewStep | None = None
    state: str = "created"  # created, updated, unchanged

    @property
    def row(self) -> Step:
        return self.step if self.step is not None else self.new.obj


@dataclass
class Plan:
    new: list[_NewStep] = field(default_factory=list)
    updates: list[Step] = field(default_factory=list)
    update_fields: set[str] = field(default_factory=set)
    links: list[tuple[Step, _NewStep]] = field(default_factory=list)
    totals: dict[Any, Totals] = field(default_factory=dict)
    outcomes: dict[Any, list[Outcome]] = field(default_factory=dict)


def money(value) -> Decimal:
    return Decimal(value).quantize(SIX_PLACES, rounding=ROUND_HALF_UP)


def _price_for(model: str, prices: dict[str, ModelPrice]) -> ModelPrice | None:
    """The price of a model, also for dated or provider-prefixed names.

    `gpt-4o-2024-08-06` is priced as `gpt-4o` and `openai/gpt-4o` as `gpt-4o`: the
    longest priced name that the model starts with wins, so `gpt-4o-mini` is not
    priced as `gpt-4o`.
    """
    name = model.strip().lower()
    if name in prices:
        return prices[name]
    if "/" in name:
        name = name.rsplit("/", 1)[1]
        if name in prices:
            return prices[name]
    best = None
    for priced, price in prices.items():
        if name.startswith(priced) and (best is None or len(priced) > len(best[0])):
            best = (priced, price)
    return best[1] if best else None


def fill_costs(records: list[StepRecord]) -> None:
    """Price the steps that report tokens but no cost: one query, only when needed."""
    wanting = [
        r
        for r in records
        if r.cost_usd is None and r.model and (r.prompt_tokens or r.completion_tokens)
    ]
    if not wanting:
        return
    prices = {p.model.strip().lower(): p for p in ModelPrice.objects.all()}
    if not prices:
        return
    for r in wanting:
        price = _price_for(r.model, prices)
        if price is not None:
            r.cost_usd = money(price.cost(r.prompt_tokens, r.completion_tokens))
            if r.provided is not None:
                r.provided.add("cost_usd")


def _existing(batches) -> tuple[list[Step], dict[Any, int]]:
    """The stored steps a request touches, and each execution's highest sequence."""
    stale = [e.pk for e, records, fresh in batches if records and not fresh]
    if not stale:
        return [], {}
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
    condition = Q()
    if span_ids:
        condition |= Q(span_id__in=span_ids)
        # Children that arrived before their parent and wait to be linked to it.
        condition |= Q(parent__isnull=True, parent_span_id__in=span_ids)
    if sequences:
        condition |= Q(sequence__in=sequences)
    rows = list(Step.objects.filter(condition, execution_id__in=stale)) if condition else []
    highest = dict(
        Step.objects.filter(execution_id__in=stale)
        .values("execution_id")
        .annotate(m=Max("sequence"))
        .values_list("execution_id", "m")
    )
    return rows, highest


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


def plan_steps(batches: list[tuple[Execution, list[StepRecord], bool]]) -> Plan:
    """Decide what to write for each (execution, records, fresh) without writing.

    `fresh` says the execution was created by this very request, so it has no stored
    steps to look up.
    """
    plan = Plan()
    rows, highest = _existing(batches)
    by_span = {(s.execution_id, s.span_id): s for s in rows if s.span_id}
    by_sequence = {(s.execution_id, s.sequence): s for s in rows}
    waiting: dict[tuple, list[Step]] = {}
    for s in rows:
        if s.parent_id is None and s.parent_span_id:
            waiting.setdefault((s.execution_id, s.parent_span_id), []).append(s)

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
            match = by_span.get((pk, r.span_id)) if r.span_id else None
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
                    match = holder
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
                # Otherwise the parent has not arrived yet: parent_span_id links it later.
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


def _row(new: _NewStep) -> Step:
    r = new.record
    parent_id = new.parent_new.obj.pk if new.parent_new is not None else new.parent_id
    return Step(
        execution_id=new.execution_id,
        parent_id=parent_id,
        sequence=new.sequence,
        span_id=r.span_id or None,
        parent_span_id=r.parent_span_id or "",
        kind=r.kind,
        name=r.name,
        status=r.status,
        started_at=r.started_at,
        ended_at=r.ended_at,
        duration_ms=r.duration_ms,
        input=r.input,
        output=r.output,
        error=r.error,
        model=r.model,
        prompt_tokens=r.prompt_tokens,
        completion_tokens=r.completion_tokens,
        cost_usd=money(r.cost_usd) if r.cost_usd is not None else Decimal(0),
        attributes=r.attributes,
    )


def apply_plan(plan: Plan) -> None:
    """Write a plan: one INSERT per tree level, then the updates and the late links."""
    levels: dict[int, list[_NewStep]] = {}
    for new in plan.new:
        levels.setdefault(new.depth or 0, []).append(new)
    for depth in sorted(levels):
        level = levels[depth]
        rows = [_row(new) for new in level]
        Step.objects.bulk_create(rows, batch_size=INSERT_BATCH)
        for new, row in zip(level, rows, strict=True):
            new.obj = row
    if plan.updates:
        Step.objects.bulk_update(plan.updates, sorted(plan.update_fields), batch_size=500)
    if plan.links:
        for child, parent in plan.links:
            child.parent_id = parent.obj.pk
        Step.objects.bulk_update([child for child, _ in plan.links], ["parent"], batch_size=500)
