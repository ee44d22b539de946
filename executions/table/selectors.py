"""Reads of executions, always scoped to one workspace."""

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime

from django.core.paginator import Paginator
from django.db import connection, connections
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, Left, Substr
from django.db.models.lookups import GreaterThan
from django.http import Http404
from django.utils import timezone

from agents.models import AgentVersion, Schedule, Workspace

from . import counters
from .filters import SORT_FIELDS, ExecutionFilter, TableStateForm, full_uuid
from .models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    Artifact,
    Batch,
    Execution,
    ExecutionSearch,
    SavedView,
    Status,
    Step,
    StepKind,
    StepStatus,
)


def execution_list(*, workspace: Workspace) -> QuerySet[Execution]:
    return Execution.objects.filter(workspace=workspace).select_related("schedule", "batch")


def execution_get(*, workspace: Workspace, pk) -> Execution:
    """One execution of this workspace; another workspace's id is a 404, like a missing one."""
    execution = (
        Execution.objects.filter(workspace=workspace, pk=pk)
        .select_related("agent", "agent_version", "batch", "schedule", "rerun_of", "triggered_by")
        .first()
    )
    if execution is None:
        raise Http404("No such execution in this workspace.")
    return execution


def batch_get(*, workspace: Workspace, pk) -> Batch:
    batch = Batch.objects.filter(workspace=workspace, pk=pk).select_related("agent_version").first()
    if batch is None:
        raise Http404("No such batch in this workspace.")
    return batch


# ---------------------------------------------------------------------------
# The detail page: steps in pages, their tree depth, counters, artifacts.

STEP_PAGE_SIZE = 50
# How much of each step's input and output the timeline asks the database for:
# enough for a one-line preview, never the megabytes a payload can hold.
STEP_HEAD_CHARS = 600


@dataclass
class StepPage:
    steps: list[Step]
    after: int | None  # the cursor this page starts after (None: from the first step)
    next_after: int | None  # cursor of the next page, None when this is the last
    has_previous: bool = False
    previous_after: int | None = None  # cursor of the page before (None: from the start)


def _timeline_steps(execution: Execution) -> QuerySet[Step]:
    """Steps with everything a timeline card shows, and only heads of the payloads."""
    child_count = (
        Step.objects.filter(parent=OuterRef("pk"))
        .order_by()
        .values("parent")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Step.objects.filter(execution=execution)
        .defer("input", "output", "attributes")
        .annotate(
            **payload_heads(("input", "output"), STEP_HEAD_CHARS, max_stored=PREVIEW_MAX_STORED),
            child_count=Coalesce(Subquery(child_count), 0),
        )
        .prefetch_related(
            Prefetch("artifacts", queryset=Artifact.objects.order_by("created_at", "id"))
        )
        .order_by("sequence")
    )


def _attach_depths(steps: list[Step]) -> None:
    """Set step.depth (0 for a root) on each step, in one query whatever the page size.

    A page cut from the middle of a 10,000-step run holds children whose parents
    are on earlier pages; a recursive CTE fetches all their missing ancestors at
    once (PostgreSQL and SQLite both have WITH RECURSIVE).
    """
    parents: dict[int, int | None] = {s.pk: s.parent_id for s in steps}
    missing = {s.parent_id for s in steps if s.parent_id and s.parent_id not in parents}
    if missing:
        table = connection.ops.quote_name(Step._meta.db_table)
        marks = ", ".join(["%s"] * len(missing))
        sql = (
            f"WITH RECURSIVE anc(id, parent_id) AS ("
            f" SELECT id, parent_id FROM {table} WHERE id IN ({marks})"
            f" UNION SELECT s.id, s.parent_id FROM {table} s JOIN anc ON s.id = anc.parent_id"
            f") SELECT id, parent_id FROM anc"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, list(missing))
            parents.update(dict(cursor.fetchall()))
    depths: dict[int, int] = {}

    def depth_of(pk: int) -> int:
        chain = []
        while pk is not None and pk not in depths and len(chain) < 200:
            chain.append(pk)
            pk = parents.get(pk)
        base = depths.get(pk, -1) if pk is not None else -1
        for offset, node in enumerate(reversed(chain), 1):
            depths[node] = base + offset
        return depths[chain[0]] if chain else depths[pk]

    for step in steps:
        step.depth = depth_of(step.pk)


def step_page(
    *, execution: Execution, after: int | None = None, limit: int = STEP_PAGE_SIZE
) -> StepPage:
    """One page of an execution's steps in sequence order, after a sequence cursor.

    Keyset pagination on (execution, sequence), which the unique constraint
    indexes, so page 100 of a 10,000-step run costs what page 1 does.
    """
    qs = _timeline_steps(execution)
    if after is not None:
        qs = qs.filter(sequence__gt=after)
    steps = list(qs[: limit + 1])
    next_after = None
    if len(steps) > limit:
        steps = steps[:limit]
        next_after = steps[-1].sequence
    _attach_depths(steps)
    page = StepPage(steps=steps, after=after, next_after=next_after)
    if after is not None:
        earlier = list(
            Step.objects.filter(execution=execution, sequence__lte=after)
            .order_by("-sequence")
            .values_list("sequence", flat=True)[limit : limit + 1]
        )
        page.has_previous = True
        page.previous_after = earlier[0] if earlier else None
    return page


def steps_by_sequence(*, execution: Execution, sequences) -> list[Step]:
    """Timeline steps for the given sequence numbers (the stream re-sends changed cards)."""
    steps = list(_timeline_steps(execution).filter(sequence__in=list(sequences)))
    _attach_depths(steps)
    return steps


def step_window_start(
    *, execution: Execution, sequence: int, limit: int = STEP_PAGE_SIZE, context: int = 5
) -> int | None:
    """The page cursor that shows step `sequence` near the top, with a few steps before it.

    None (start from the first step) when the step is on the first page anyway.
    """
    before = list(
        Step.objects.filter(execution=execution, sequence__lt=sequence)
        .order_by("-sequence")
        .values_list("sequence", flat=True)[: max(limit - 10, context + 1)]
    )
    if len(before) < max(limit - 10, context + 1):
        return None
    return before[context]


class StoredSize(Func):
    """Bytes a value takes in its row, read without decoding it.

    On PostgreSQL, pg_column_size reads a TOASTed jsonb's size from its pointer
    (compressed size, so a 1 MB output reads as ~130 KB); on SQLite the JSON is
    text and LENGTH is what it costs.
    """

    function = "LENGTH"
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="pg_column_size", **extra_context)


# A payload stored bigger than this gets no preview in a timeline card or the summary:
# serialising a megabyte to show 200 characters of it would cost the whole page.
PREVIEW_MAX_STORED = 32 * 1024


def payload_heads(fields: tuple[str, ...], chars: int, *, max_stored: int | None = None) -> dict:
    """Annotations with the first `chars` characters of JSON fields, as `<field>_head`.

    The database serialises the JSON and cuts it, so a page that shows a budget of a
    1 MB payload moves and decodes only that budget (rendering.payload_view reads
    it). The full length is not asked for: on PostgreSQL it would serialise the
    JSON a second time, and "cut or not" is known from the head itself.

    With max_stored, a payload stored bigger than that has no head (None) and its
    stored size comes as `<field>_stored`, so a preview can say it is large.
    """
    annotations = {}
    for name in fields:
        head = Substr(Cast(name, TextField()), 1, chars)
        if max_stored is not None:
            annotations[f"{name}_stored"] = StoredSize(name)
            head = Case(
                When(GreaterThan(StoredSize(name), max_stored), then=Value(None)),
                default=head,
                output_field=TextField(),
            )
        annotations[f"{name}_head"] = head
    return annotations


def step_tail_start(*, execution: Execution, limit: int = STEP_PAGE_SIZE) -> int | None:
    """The page cursor that shows the last `limit` steps (None when they all fit)."""
    before = list(
        Step.objects.filter(execution=execution)
        .order_by("-sequence")
        .values_list("sequence", flat=True)[limit : limit + 1]
    )
    return before[0] if before else None


def step_get(*, execution: Execution, sequence: int, head_chars: int | None = None) -> Step:
    """One step of this execution, with its payloads and artifacts; 404 when absent.

    With head_chars, input, output and attributes are not loaded: their heads and
    lengths are (see payload_heads), and touching step.input loads it on demand.
    """
    steps = Step.objects.filter(execution=execution, sequence=sequence)
    if head_chars is not None:
        fields = ("input", "output", "attributes")
        steps = steps.defer(*fields).annotate(**payload_heads(fields, head_chars))
    step = (
        steps.select_related("parent")
        .defer("parent__input", "parent__output", "parent__attributes")
        .prefetch_related(
            Prefetch("artifacts", queryset=Artifact.objects.order_by("created_at", "id"))
        )
        .first()
    )
    if step is None:
        raise Http404("No such step in this execution.")
    return step


# What the detail page's first paint shows of the output (a preview of a few lines)
# and of the failing step's input.
OUTPUT_PREVIEW_CHARS = 4000
FAILING_INPUT_CHARS = 8000


def execution_get_detail(*, workspace: Workspace, pk) -> Execution:
    """execution_get for the detail page: the output stays in the database.

    Only its head (for the summary's preview) and whether it holds generated code
    come along; panes that need the whole output read
    execution.output, which Django then loads on its own (one query).
    """
    execution = (
        Execution.objects.filter(workspace=workspace, pk=pk)
        .select_related("agent", "agent_version", "batch", "schedule", "rerun_of", "triggered_by")
        .defer("output")
        .annotate(
            **payload_heads(("output",), OUTPUT_PREVIEW_CHARS, max_stored=PREVIEW_MAX_STORED),
            output_has_code=ExpressionWrapper(
                Q(output__has_key="code"), output_field=BooleanField()
            ),
        )
        .first()
    )
    if execution is None:
        raise Http404("No such execution in this workspace.")
    return execution


def execution_output_head(*, execution: Execution, chars: int) -> str | None:
    """The first `chars` characters of the output's JSON (None when there is no output)."""
    return (
        Execution.objects.filter(pk=execution.pk)
        .annotate(**payload_heads(("output",), chars))
        .values_list("output_head", flat=True)
        .first()
    )


def step_stats(*, execution: Execution) -> dict:
    """Counters for the timeline header: steps by kind and by status, in one query."""
    stats = {"total": 0, "kinds": {}, "failed": 0, "running": 0, "last_sequence": None}
    rows = (
        Step.objects.filter(execution=execution)
        .order_by()
        .values_list("kind", "status")
        .annotate(n=Count("pk"), last=Max("sequence"))
    )
    for kind, status, n, last in rows:
        stats["total"] += n
        if stats["last_sequence"] is None or last > stats["last_sequence"]:
            stats["last_sequence"] = last
        stats["kinds"][kind] = stats["kinds"].get(kind, 0) + n
        if status == StepStatus.FAILED:
            stats["failed"] += n
        elif status == StepStatus.RUNNING:
            stats["running"] += n
    stats["actions"] = stats["kinds"].get(StepKind.ACTION, 0)
    return stats


def step_failing(*, execution: Execution) -> Step | None:
    """The step where the run went wrong: the first failed step with no failed child.

    A failure usually bubbles up (action -> its block -> the run); the innermost
    failed step is the one whose input and error explain it.
    """
    return (
        Step.objects.filter(execution=execution, status=StepStatus.FAILED)
        .exclude(children__status=StepStatus.FAILED)
        .defer("input", "output", "attributes")
        .annotate(**payload_heads(("input",), FAILING_INPUT_CHARS))
        .prefetch_related(
            Prefetch("artifacts", queryset=Artifact.objects.order_by("created_at", "id"))
        )
        .order_by("sequence")
        .first()
    )


def steps_before(*, execution: Execution, sequence: int, limit: int = 5) -> list[Step]:
    """The successful steps just before a step, oldest first: what worked before it failed."""
    steps = list(
        Step.objects.filter(execution=execution, sequence__lt=sequence, status=StepStatus.COMPLETED)
        .defer("input", "output", "attributes")
        .order_by("-sequence")[:limit]
    )
    return steps[::-1]


def step_latest_with_media(*, execution: Execution) -> int | None:
    """Sequence of the most recent step with an image, for the inspector's default view."""
    return (
        Artifact.objects.filter(
            execution=execution, step__isnull=False, content_type__startswith="image/"
        )
        .order_by("-created_at", "-step__sequence")
        .values_list("step__sequence", flat=True)
        .first()
    )


def artifact_list(*, execution: Execution) -> QuerySet[Artifact]:
    return (
        Artifact.objects.filter(execution=execution)
        .select_related("step")
        .only(
            "id",
            "workspace_id",
            "execution_id",
            "kind",
            "name",
            "file",
            "content_type",
            "size",
            "bounding_boxes",
            "created_at",
            "step__sequence",
            "step__name",
            "step__kind",
        )
        .order_by("created_at", "id")
    )


def artifact_kind_counts(*, execution: Execution) -> dict[str, int]:
    rows = (
        Artifact.objects.filter(execution=execution)
        .order_by()
        .values_list("kind")
        .annotate(n=Count("pk"))
    )
    return dict(rows)


def artifact_get(*, workspace: Workspace, pk) -> Artifact:
    """One artifact of this workspace; another workspace's id is a 404, like a missing one."""
    artifact = Artifact.objects.filter(workspace=workspace, pk=pk).first()
    if artifact is None:
        raise Http404("No such artifact in this workspace.")
    return artifact


# ---------------------------------------------------------------------------
# The executions table: one page of the filtered, sorted list, its exact total,
# batch groups, live updates, batches and saved views.

# Only what a row shows: input, output and request can each hold megabytes.
TABLE_ROW_FIELDS = (
    "id",
    "workspace_id",
    "agent_id",
    "agent_name",
    "version_name",
    "status",
    "source",
    "duration_ms",
    "step_count",
    "total_tokens",
    "cost_usd",
    "credits",
    "created_at",
    "started_at",
    "completed_at",
    "batch_id",
    "schedule_id",
    "schedule__name",
    "correction_count",
    "note_count",
)
# The failed-row tooltip needs the start of the error, not a whole stack trace.
ERROR_HEAD_CHARS = 400
# Expanding a batch in place shows this many of its executions; the batch page has all.
BATCH_EXPAND_LIMIT = 100


@dataclass
class BatchEntry:
    """A batch as one row of the table: its size and the mix of its statuses."""

    batch: Batch
    created_at: datetime
    size: int = 0
    matching: int = 0
    mix: list[tuple[str, str, int]] = dataclass_field(default_factory=list)

    is_batch = True

    @property
    def pk(self):
        return self.batch.pk

    @property
    def done(self) -> int:
        return sum(n for status, _, n in self.mix if status in TERMINAL_STATUSES)

    @property
    def is_active(self) -> bool:
        return self.done < self.size

    @property
    def percent_done(self) -> int:
        return round(100 * self.done / self.size) if self.size else 100


@dataclass
class TablePage:
    filterset: ExecutionFilter
    sort: str
    per_page: int
    number: int
    num_pages: int
    total: int  # executions that match the filters
    entry_count: int  # rows: executions outside batches plus batch groups
    entries: list  # Execution | BatchEntry, in display order
    grouped: bool
    notices: dict[str, str]  # "sort" / "per_page" / "page" -> what was wrong and what we did
    since: datetime  # executions created after this are "new" to the open page
    paginator: Paginator = dataclass_field(repr=False, default=None)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def previous_page_number(self) -> int:
        return self.number - 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    def page_range(self):
        return self.paginator.get_elided_page_range(self.number, on_each_side=2, on_ends=1)

    @property
    def active_ids(self) -> list[str]:
        return [
            str(e.pk)
            for e in self.entries
            if not getattr(e, "is_batch", False) and e.status in ACTIVE_STATUSES
        ]

    @property
    def active_batch_ids(self) -> list[str]:
        return [str(e.pk) for e in self.entries if getattr(e, "is_batch", False) and e.is_active]


class KnownCountPaginator(Paginator):
    """A Paginator that is told its count, for the elided page range only."""

    def __init__(self, count: int, per_page: int):
        super().__init__([], per_page)
        self.__dict__["count"] = count


def execution_filterset(*, workspace: Workspace, params) -> ExecutionFilter:
    return ExecutionFilter(
        params, queryset=Execution.objects.filter(workspace=workspace), workspace=workspace
    )


def table_ordering(sort: str, *, reverse: bool = False) -> list:
    """ORDER BY for a sort key, always ending in id so that every order is total.

    `reverse` gives the exact mirror image, which the tail pages read from the far
    end of the same index. A NULL measure (not yet calculated) sorts last both
    ways, so first in the mirror.
    """
    descending = sort.startswith("-") != reverse
    name, nullable = SORT_FIELDS[sort.lstrip("-")]
    nulls = {}
    if nullable:
        nulls = {"nulls_first": True} if reverse else {"nulls_last": True}
    measure = F(name).desc(**nulls) if descending else F(name).asc(**nulls)
    tiebreak = F("pk").desc() if descending else F("pk").asc()
    return [measure, tiebreak]


def _table_rows(queryset: QuerySet[Execution]) -> QuerySet[Execution]:
    return (
        queryset.select_related("schedule")
        .only(*TABLE_ROW_FIELDS)
        .annotate(error_head=Left("error", ERROR_HEAD_CHARS))
    )


def _batch_matches(filtered: QuerySet) -> dict:
    """{batch id: how many of its executions match}, for batches holding any match.

    Read from the partial (workspace, batch) index that covers status and agent,
    so the common filters never visit the rows themselves.
    """
    rows = (
        filtered.filter(batch__isnull=False)
        .order_by()
        .values_list("batch_id")
        .annotate(n=Count("*"))
    )
    return dict(rows)


# Filters whose indexes (trigram, GIN) only point at candidate rows that must then
# be read and rechecked: no index-only count exists for them.
HEAP_BOUND_FILTERS = frozenset({"q", "meta"})
# The filters whose columns the narrow search table copies (ExecutionSearch).
SEARCH_TABLE_FILTERS = frozenset({"q", "agent", "status", "start", "end"})


def _search_rows(filterset: ExecutionFilter) -> QuerySet[ExecutionSearch] | None:
    """The filters run over the narrow search table, for a text search it can answer.

    The same filter methods apply, since its columns carry the executions' names;
    its rows are a tenth of the size, which is what a search that must recheck
    every candidate row costs.
    """
    applied = set(filterset.applied())
    if "q" not in applied or applied - SEARCH_TABLE_FILTERS:
        return None
    return filterset.filter_queryset(ExecutionSearch.objects.filter(workspace=filterset.workspace))


def _count(
    filterset: ExecutionFilter,
    filtered: QuerySet,
    *,
    grouped: bool,
    searched: QuerySet[ExecutionSearch] | None = None,
):
    """(executions, table rows, {batch id: matches}) for the filters, all exact.

    The counters answer the common filters (none, agent, status) without touching
    the executions table; the other indexed filters count from their index alone,
    and the batch matches come from the partial index of batched executions. A text
    or metadata search reads its rows once (from the search table when it holds
    every filtered column), counting them per batch (NULL for no batch), which
    gives the total and the groups together. Never a COUNT over the whole workspace.
    """
    by_counters = filterset.counter_filters()
    rows = searched if searched is not None else filtered
    if grouped and (searched is not None or HEAP_BOUND_FILTERS & set(filterset.applied())):
        # These filters must read every matching row anyway (their indexes are lossy):
        # read them once, counting per batch.
        batch_matches = dict(rows.order_by().values_list("batch_id").annotate(n=Count("*")))
        total = sum(batch_matches.values())
        batch_matches.pop(None, None)
    else:
        if by_counters is not None:
            total = counters.total(workspace=filterset.workspace, **by_counters)
        else:
            total = rows.count()  # an index-only scan for the filters that are not lossy
        batch_matches = _batch_matches(filtered) if grouped else {}
    batched = sum(batch_matches.values())
    return total, total - batched + len(batch_matches), batch_matches


# Up to this many matching batches are named in the page query; more, and the
# query finds them again itself.
BATCH_IDS_INLINE = 500


def _partitions(rows: QuerySet) -> list[QuerySet]:
    """The parts of `rows` to page through one by one.

    The search table is partitioned on has_error in PostgreSQL. Under one LIMIT the
    planner walks both partitions' time index together, and a word found only in
    errors walks the other partition to its end: each is paged on its own instead,
    where its own statistics choose the plan.
    """
    if rows.model is ExecutionSearch and connections[rows.db].vendor == "postgresql":
        return [rows.filter(has_error=True), rows.filter(has_error=False)]
    return [rows]


def _page_keys(filtered, *, workspace, sort, batch_matches, offset, limit, entry_count):
    """[(kind, id)] of one page, "e" for an execution and "b" for a batch group.

    A page nearer the end than the start is read backwards from the end, so the
    last page of a million rows costs what the first does.
    """
    reverse = offset > entry_count // 2
    start = entry_count - offset - limit if reverse else offset
    start = max(start, 0)
    parts = _partitions(filtered)
    if not batch_matches and len(parts) == 1:
        ids = filtered.order_by(*table_ordering(sort, reverse=reverse)).values_list(
            "pk", flat=True
        )[start : start + limit]
        keys = [("e", pk) for pk in ids]
        return keys[::-1] if reverse else keys

    # In time order, a UNION of the executions (per partition) and the batch groups.
    descending = sort.startswith("-") != reverse
    order = ["-created_at", "-pk"] if descending else ["created_at", "pk"]
    sides = [
        (part.filter(batch__isnull=True) if batch_matches else part)
        .annotate(kind=Value("e", output_field=CharField()))
        .values_list("kind", "pk", "created_at")
        for part in parts
    ]
    if batch_matches:
        if len(batch_matches) <= BATCH_IDS_INLINE:
            matching = list(batch_matches)
        else:
            matching = filtered.filter(batch__isnull=False).values("batch_id")
        sides.append(
            Batch.objects.filter(workspace=workspace, pk__in=matching)
            .annotate(kind=Value("b", output_field=CharField()))
            .values_list("kind", "id", "created_at")
        )
    if connections[filtered.db].features.supports_slicing_ordering_in_compound:
        # Each side stops after the rows this page can need, read in index order;
        # without the inner LIMITs PostgreSQL sorts every row of the workspace.
        sides = [side.order_by(*order)[: start + limit] for side in sides]
    else:
        sides = [side.order_by() for side in sides]
    rows = sides[0].union(*sides[1:], all=True).order_by(*order)[start : start + limit]
    keys = [(kind, pk) for kind, pk, _ in rows]
    return keys[::-1] if reverse else keys


def _batch_entries(*, workspace, filtered, batch_ids, matches=None) -> dict:
    """BatchEntry by batch id, with sizes and status mixes, in two or three queries."""
    if not batch_ids:
        return {}
    batches = Batch.objects.filter(workspace=workspace, pk__in=batch_ids).select_related(
        "agent_version__agent"
    )
    entries = {b.pk: BatchEntry(batch=b, created_at=b.created_at) for b in batches}
    mix = (
        Execution.objects.filter(workspace=workspace, batch_id__in=batch_ids)
        .order_by()
        .values_list("batch_id", "status")
        .annotate(n=Count("pk"))
    )
    labels = dict(Status.choices)
    for batch_id, status, n in sorted(mix, key=lambda r: STATUS_ORDER.get(r[1], 99)):
        entry = entries.get(batch_id)
        if entry is not None:
            entry.size += n
            entry.mix.append((status, labels.get(status, status), n))
    if matches is None:
        matches = (
            filtered.filter(batch_id__in=batch_ids)
            .order_by()
            .values_list("batch_id")
            .annotate(n=Count("*"))
        )
        matches = dict(matches)
    for batch_id, n in matches.items():
        if batch_id in entries:
            entries[batch_id].matching = n
    return entries


# How a status mix is listed: what needs attention first.
STATUS_ORDER = {
    s: i
    for i, s in enumerate(
        [
            Status.RUNNING,
            Status.AWAITING_APPROVAL,
            Status.QUEUED,
            Status.PENDING,
            Status.FAILED,
            Status.TIMED_OUT,
            Status.REJECTED,
            Status.CANCELLED,
            Status.COMPLETED,
        ]
    )
}


def execution_table_page(*, workspace: Workspace, params, flat: bool = False) -> TablePage:
    """One page of the executions table for these GET parameters.

    Bad parameters never fail the page: a filter that does not validate is left
    out (its message is on the filterset's form), and a bad sort, page size or
    page falls back to its default with a notice. A page past the last is the last.
    """
    filterset = execution_filterset(workspace=workspace, params=params)
    flat = flat or params.get("flat") == "1"
    state_form = TableStateForm(params)
    state = state_form.state()
    notices = {name: errors[0] for name, errors in state_form.errors.items()}
    sort, per_page = state["sort"], state["per_page"]
    filtered = filterset.qs.order_by()
    applied = filterset.applied()
    # Grouping only makes sense in time order: a batch has no single duration or cost.
    # Looking inside one batch, or for one execution by id, lists executions.
    grouped = (
        not flat
        and sort.lstrip("-") == "started"
        and "batch" not in applied
        and not (applied.get("q") and full_uuid(applied["q"]))
    )
    since = timezone.now()
    searched = _search_rows(filterset)
    total, entry_count, batch_matches = _count(
        filterset, filtered, grouped=grouped, searched=searched
    )

    num_pages = max(1, -(-entry_count // per_page))
    number = state["page"]
    if number == "last":
        number = num_pages
    elif number > num_pages:
        notices["page"] = f"Page {number} is past the end; this is the last page."
        number = num_pages
    offset = (number - 1) * per_page
    limit = max(0, min(per_page, entry_count - offset))

    keys = []
    if limit:
        # In start-time order the search table also gives the page; sorted by a
        # measure it does not copy, the executions table does.
        by_time = searched is not None and SORT_FIELDS[sort.lstrip("-")][0] == "created_at"
        keys = _page_keys(
            searched if by_time else filtered,
            workspace=workspace,
            sort=sort,
            batch_matches=batch_matches,
            offset=offset,
            limit=limit,
            entry_count=entry_count,
        )
    execution_ids = [pk for kind, pk in keys if kind == "e"]
    batch_ids = [pk for kind, pk in keys if kind == "b"]
    executions = {}
    if execution_ids:
        rows = _table_rows(Execution.objects.filter(workspace=workspace, pk__in=execution_ids))
        executions = {e.pk: e for e in rows}
    batch_entries = _batch_entries(
        workspace=workspace,
        filtered=filtered,
        batch_ids=batch_ids,
        matches={pk: batch_matches[pk] for pk in batch_ids if pk in batch_matches},
    )
    entries = []
    for kind, pk in keys:
        entry = executions.get(pk) if kind == "e" else batch_entries.get(pk)
        if entry is not None:  # deleted between the two queries
            entries.append(entry)

    return TablePage(
        filterset=filterset,
        sort=sort,
        per_page=per_page,
        number=number,
        num_pages=num_pages,
        total=total,
        entry_count=entry_count,
        entries=entries,
        grouped=grouped,
        notices=notices,
        since=since,
        paginator=KnownCountPaginator(entry_count, per_page),
    )


def execution_table_rows(*, workspace: Workspace, ids) -> list[Execution]:
    """Rows of the table for these ids (the live poll re-renders running rows)."""
    if not ids:
        return []
    rows = _table_rows(Execution.objects.filter(workspace=workspace, pk__in=list(ids)))
    return list(rows.order_by("-created_at", "-id"))


def execution_new_count(*, workspace: Workspace, params, since: datetime) -> int:
    """How many executions matching these filters were created after `since`."""
    filterset = execution_filterset(workspace=workspace, params=params)
    return filterset.qs.order_by().filter(created_at__gt=since).count()


def execution_export_rows(*, workspace: Workspace, params, ids=None) -> QuerySet:
    """Every execution matching the filters (or just `ids`), in the table's sort order,
    as plain tuples for streaming; iterate it with .iterator()."""
    sort = TableStateForm(params).state()["sort"]
    if ids is not None:
        queryset = Execution.objects.filter(workspace=workspace, pk__in=list(ids))
    else:
        queryset = execution_filterset(workspace=workspace, params=params).qs
    return queryset.order_by(*table_ordering(sort))


def batch_entries(*, workspace: Workspace, batch_ids) -> dict:
    """BatchEntry by id for these batches, their mix over all their executions."""
    everything = Execution.objects.filter(workspace=workspace)
    return _batch_entries(workspace=workspace, filtered=everything, batch_ids=list(batch_ids))


def batch_entry(*, workspace: Workspace, batch: Batch, params=None) -> BatchEntry:
    """One batch's summary row; `matching` counts the executions the filters select."""
    filtered = (
        execution_filterset(workspace=workspace, params=params).qs
        if params is not None
        else Execution.objects.filter(workspace=workspace)
    )
    entry = _batch_entries(workspace=workspace, filtered=filtered.order_by(), batch_ids=[batch.pk])
    return entry.get(batch.pk) or BatchEntry(batch=batch, created_at=batch.created_at)


def batch_executions(
    *, workspace: Workspace, batch: Batch, params=None, limit: int = BATCH_EXPAND_LIMIT, offset=0
) -> list[Execution]:
    """A batch's executions that match the table's filters, oldest first (the order
    they were submitted in), `limit` at a time."""
    if params is not None:
        queryset = execution_filterset(workspace=workspace, params=params).qs
    else:
        queryset = Execution.objects.filter(workspace=workspace)
    queryset = queryset.filter(batch=batch).order_by("created_at", "id")
    return list(_table_rows(queryset)[offset : offset + limit])


def saved_view_list(*, workspace: Workspace) -> QuerySet[SavedView]:
    return SavedView.objects.filter(workspace=workspace).select_related("owner").order_by("name")


def saved_view_get(*, workspace: Workspace, pk) -> SavedView:
    view = SavedView.objects.filter(workspace=workspace, pk=pk).select_related("owner").first()
    if view is None:
        raise Http404("No such saved view in this workspace.")
    return view


# ---------------------------------------------------------------------------
# The control plane: the review queue, the run form's versions, schedules, deliveries.


def approval_queue(*, workspace: Workspace) -> QuerySet[Execution]:
    """Executions waiting for a reviewer, the longest-waiting first."""
    return (
        Execution.objects.filter(workspace=workspace, status="awaiting_approval")
        .select_related("agent", "agent_version")
        .order_by("updated_at", "id")
    )


def run_versions(*, workspace: Workspace, agent=None) -> QuerySet[AgentVersion]:
    """Agent versions an operator may execute from the run form, newest first per agent."""
    versions = AgentVersion.objects.filter(agent__workspace=workspace).select_related("agent")
    if agent is not None:
        versions = versions.filter(agent=agent)
    return versions.order_by("agent__name", "-created_at")


def schedule_get(*, workspace: Workspace, pk) -> Schedule:
    schedule = (
        Schedule.objects.filter(workspace=workspace, pk=pk)
        .select_related("agent_version__agent")
        .first()
    )
    if schedule is None:
        raise Http404("No such schedule in this workspace.")
    return schedule


def executions_by_ids(*, workspace: Workspace, ids) -> list[Execution]:
    """The executions of this workspace among `ids` (others are silently not there)."""
    return list(
        Execution.objects.filter(workspace=workspace, pk__in=list(ids)).order_by("-created_at")
    )


def delivery_list(*, execution: Execution):
    """The webhook delivery log of one execution, in the order the attempts were made."""
    return execution.deliveries.order_by("created_at", "pk")
