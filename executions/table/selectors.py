"""Reads of the executions table, always scoped to one workspace: one page of the
filtered, sorted list, its exact total, batch groups, live updates, batches, saved views.

Over 500 lines on purpose: the page, its exact total and its batch groups share private
query helpers (_table_rows, _count, _page_keys); split, they would have to be exported.
"""

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from functools import partial

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import (
    CharField,
    Count,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    StringAgg,
    Subquery,
    TextField,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Concat, Left, Upper
from django.http import Http404
from django.utils import timezone

from agents.models import Workspace
from executions import counters
from executions.models import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    Batch,
    Execution,
    ExecutionSearch,
    SavedView,
    Status,
)
from executions.tags.models import ExecutionTag

from . import jump, keyset, plans
from .filters import SEARCH_MIN_CHARS, ExecutionFilter, full_uuid, id_prefix_range
from .state import SORT_FIELDS, TableStateForm


def batch_get(*, workspace: Workspace, pk) -> Batch:
    batch = Batch.objects.filter(workspace=workspace, pk=pk).select_related("agent_version").first()
    if batch is None:
        raise Http404("No such batch in this workspace.")
    return batch


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
    # Executions that match the filters, and rows (executions outside batches plus
    # batch groups); None while a late total is still to be counted.
    total: int | None
    entry_count: int | None
    entries: list  # Execution | BatchEntry, in display order
    grouped: bool
    notices: dict[str, str]  # "sort" / "per_page" / "page" -> what was wrong and what we did
    since: datetime  # executions created after this are "new" to the open page
    paginator: Paginator = dataclass_field(repr=False, default=None)
    # Keyset links to the neighbouring pages (None: no such page, or page 1 by number).
    next_cursor: str | None = None
    prev_cursor: str | None = None
    has_previous: bool = False
    has_next: bool = False

    @property
    def previous_page_number(self) -> int:
        return max(1, self.number - 1)

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def counting(self) -> bool:
        """The total follows the rows (part=total): pages go by cursor until then."""
        return self.total is None

    def page_range(self):
        if self.paginator is None:
            return []
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


def execution_filter_errors(*, workspace: Workspace, params) -> dict[str, str]:
    """What is wrong with each filter that cannot be applied, by its URL name."""
    filterset = execution_filterset(workspace=workspace, params=params)
    return {name: " ".join(errors) for name, errors in filterset.errors.items()}


def table_ordering(sort: str, *, reverse: bool = False, by_value: bool = False) -> list:
    """ORDER BY for a sort key, always ending in id so that every order is total.

    `reverse` gives the exact mirror image, which the tail pages read from the far
    end of the same index. A NULL measure (not yet calculated) sorts last both
    ways, so first in the mirror. `by_value` orders by the measure plus nothing,
    the same order, but one no index provides: PostgreSQL then reads the filtered
    rows and sorts them (plans.py says when that is the better way).
    """
    descending = sort.startswith("-") != reverse
    name, nullable = SORT_FIELDS[sort.lstrip("-")]
    nulls = {}
    if nullable:
        nulls = {"nulls_first": True} if reverse else {"nulls_last": True}
    field = Execution._meta.get_field(name)
    key = ExpressionWrapper(F(name) + 0, output_field=field) if by_value else F(name)
    measure = key.desc(**nulls) if descending else key.asc(**nulls)
    tiebreak = F("pk").desc() if descending else F("pk").asc()
    return [measure, tiebreak]


def _tag_names():
    names = (
        # The workspace too: on Citus each shard holds one workspace's runs and tags
        # (docs/scaling.md, step 5).
        ExecutionTag.objects.filter(workspace_id=OuterRef("workspace_id"), execution=OuterRef("pk"))
        .order_by()
        .values("execution")
        .annotate(names=StringAgg("name", Value(" ")))
        .values("names")
    )
    return Subquery(names, output_field=TextField())


def _table_rows(queryset: QuerySet[Execution]) -> QuerySet[Execution]:
    return (
        queryset.select_related("schedule")
        .only(*TABLE_ROW_FIELDS)
        .annotate(error_head=Left("error", ERROR_HEAD_CHARS))
        # The tags shown as chips, in the rows' own query (no query more per page).
        .annotate(tag_names=_tag_names())
        # The budget's badge (executions/budgets): its stop, else its first soft flag.
        # Two short texts out of the JSON rather than the whole budget with its state.
        .annotate(
            budget_stop=KT("budget__stop__reason"), budget_soft=KT("budget__flags__0__message")
        )
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


def _page_keys(
    filtered,
    *,
    workspace,
    sort,
    batch_matches,
    offset,
    limit,
    entry_count,
    cursor=None,
    by_value=False,
    filterset=None,
):
    """[(kind, id)] of one page, "e" for an execution and "b" for a batch group.

    A page nearer the end than the start is read backwards from the end, so the
    last page of a million rows costs what the first does. Given a cursor, the page
    starts just after (or, backwards, just before) its row, with no OFFSET at all;
    `limit` rows are read in the cursor's direction. Deep in a time order, the
    hourly rollups find the hour the page starts in (jump.py), given the filterset.
    """
    everything = filtered
    if cursor is not None:
        reverse, start = cursor.backwards, 0
        seek = keyset.after(sort, cursor.value, cursor.pk, reverse=reverse)
        filtered = filtered.filter(seek)
    else:
        reverse = offset > entry_count // 2
        start = entry_count - offset - limit if reverse else offset
        start = max(start, 0)
        seek = None
        descending = sort.startswith("-") != reverse
        if filterset is not None and start >= jump.JUMP_MIN_ROWS and sort.endswith("started"):
            seek, start = _jump(filterset, everything, batch_matches, start, descending)
            if seek is not None:
                filtered = filtered.filter(seek)
    parts = _partitions(filtered)
    if not batch_matches and len(parts) == 1:
        ordering = table_ordering(sort, reverse=reverse, by_value=by_value)
        ids = filtered.order_by(*ordering).values_list("pk", flat=True)[start : start + limit]
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
            # From the whole filtered set: a batch is placed by its own start time,
            # not by its executions', so the cursor must not narrow which are named.
            matching = everything.filter(batch__isnull=False).values("batch_id")
        batches = Batch.objects.filter(workspace=workspace, pk__in=matching)
        if seek is not None:
            batches = batches.filter(seek)
        sides.append(
            batches.annotate(kind=Value("b", output_field=CharField())).values_list(
                "kind", "id", "created_at"
            )
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


def _late_batch_matches(filterset: ExecutionFilter, params, *, searched) -> dict:
    """{batch id: matches} for a page whose total comes late: from the batched
    executions alone (a few percent of a workspace, through a partial index), with
    the text search rechecked on each of them.

    The search is written as an expression no trigram index serves: PostgreSQL would
    otherwise build the bitmap of every match of a common word (370,000 rows for
    "order") only to intersect it with 11,000 batched ones.
    """
    value = filterset.applied().get("q")
    if not value:
        return _batch_matches(filterset.qs.order_by())
    rest = params.copy()
    rest.pop("q", None)
    others = execution_filterset(workspace=filterset.workspace, params=rest)
    others.applied()  # validates, as filter_queryset needs
    if searched is not None:
        # The narrow search table (0011 indexes its batched rows), its document
        # already upper-cased.
        rows = others.filter_queryset(ExecutionSearch.objects.filter(workspace=filterset.workspace))
        text = Concat("document", Value(""), output_field=TextField())
        match = Q(_text__contains=Upper(Value(value)))
    else:
        rows = others.qs
        # A search holds no control characters (SearchField), so it cannot match
        # across the line break between the error and the summary.
        text = Concat("error", Value("\n"), "summary", output_field=TextField())
        match = Q(_text__icontains=value)
    condition = match if len(value) >= SEARCH_MIN_CHARS else Q()
    bounds = id_prefix_range(value)
    if bounds is not None:
        condition |= Q(pk__gte=bounds[0], pk__lte=bounds[1])
    return _batch_matches(rows.order_by().alias(_text=text).filter(condition))


def _jump(filterset, filtered, batch_matches, start, descending):
    """(condition, rows still to skip) for a page `start` rows into a time order,
    or (None, start) when the hourly rollups cannot place it.

    With batch groups, a row of the table is an execution outside a batch or a
    whole batch: the rollups count executions, so the batched ones beyond the
    boundary are taken off and the batch groups beyond it added.
    """
    found = jump.boundary(filterset, skip=start, descending=descending)
    if found is None:
        return None, start
    moment, beyond = found
    passed = Q(created_at__gte=moment) if descending else Q(created_at__lt=moment)
    if batch_matches:
        beyond -= filtered.filter(passed, batch__isnull=False).count()
        beyond += Batch.objects.filter(passed, pk__in=list(batch_matches)).count()
    if not 0 <= beyond <= start:
        return None, start  # a batch started after its executions: count the plain way
    return ~passed, start - beyond


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
            Status.TERMINATED,
            Status.REJECTED,
            Status.CANCELLED,
            Status.COMPLETED,
        ]
    )
}


def execution_table_page(
    *, workspace: Workspace, params, flat: bool = False, late_total: bool = False
) -> TablePage:
    """One page of the executions table for these GET parameters.

    Bad parameters never fail the page: a filter that does not validate is left
    out (its message is on the filterset's form), and a bad sort, page size or
    page falls back to its default with a notice. A page past the last is the last.

    `late_total`: the caller can fetch the total on its own (htmx, part=total). When
    counting must read every matching row (a text or metadata search: 380,000 rows
    for a common word) and the page does not need the count to find itself (page 1,
    or a cursor), the rows come back without it: total and entry_count are None.
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
    expensive = searched is not None or bool(HEAP_BOUND_FILTERS & set(applied))
    late = late_total and expensive and (state["page"] == 1 or bool(params.get("cursor")))
    if late:
        total = entry_count = num_pages = None
        batch_matches = _late_batch_matches(filterset, params, searched=searched) if grouped else {}
    else:
        total, entry_count, batch_matches = _count(
            filterset, filtered, grouped=grouped, searched=searched
        )
        num_pages = max(1, -(-entry_count // per_page))
    number = state["page"]
    cursor = None
    if params.get("cursor"):
        try:
            cursor = keyset.decode(params["cursor"], sort=sort)
        except keyset.BadCursor as exc:
            notices["page"] = str(exc)
            number = 1
    if late:
        number = number if cursor is not None else 1
        offset, limit = 0, per_page + 1  # one more row says whether a next page exists
    else:
        if number == "last":
            number = num_pages
        elif number > num_pages:
            if cursor is None:
                notices["page"] = f"Page {number} is past the end; this is the last page."
            number = num_pages
        offset = (number - 1) * per_page
        limit = max(0, min(per_page, entry_count - offset))

    # In start-time order the search table also gives the page; sorted by a
    # measure it does not copy, the executions table does.
    by_time = searched is not None and SORT_FIELDS[sort.lstrip("-")][0] == "created_at"
    # The exact total is known here, so the counters' number, not PostgreSQL's
    # estimate for a combination of filters, picks how the page is read, given how
    # many rows in order the page must pass (read from the nearer end).
    if cursor is not None or late:
        keep = per_page + 1
    else:
        keep = min(offset, (entry_count or 0) - offset - limit) + limit
    postgres = connections[filtered.db].vendor == "postgresql"
    by_agent = postgres and plans.walks_agent_index(
        applied=applied, sort=sort, matches=total, keep=keep
    )
    by_value = (
        postgres
        and not by_agent
        and plans.sorts_filtered_set(applied=applied, sort=sort, matches=total)
    )
    paged = searched if by_time else filtered
    if by_agent and "agent" not in applied:
        # A version belongs to one agent: saying so lets the agent-led index serve it.
        paged = paged.filter(agent_name=applied["version"].agent.name)
    page_keys = partial(
        _page_keys,
        paged,
        workspace=workspace,
        sort=sort,
        batch_matches=batch_matches,
        entry_count=entry_count or 0,
        by_value=by_value,
        filterset=None if by_time else filterset,
    )
    keys = []
    has_previous, has_next = number > 1, (late or number < num_pages)
    if cursor is not None:
        # One row past the page says whether another page follows in that direction.
        keys = page_keys(offset=0, limit=per_page + 1, cursor=cursor)
        more = len(keys) > per_page
        if cursor.backwards:
            keys = keys[-per_page:]
            has_previous, has_next = more, True
        else:
            keys = keys[:per_page]
            has_previous, has_next = True, more
        # The page number came along with the cursor and is only shown: runs
        # created meanwhile shift it, never the rows. The ends are known for sure.
        if not has_previous:
            number = 1
        elif late:
            number = max(2, number)
        elif not has_next:
            number = max(num_pages, 2)
        else:
            number = max(2, min(number, num_pages - 1))
        if not keys and not late:  # the cursor's row was an end: show that end by number
            cursor = None
            number = 1 if has_next else num_pages
            offset = (number - 1) * per_page
            limit = max(0, min(per_page, entry_count - offset))
            has_previous, has_next = number > 1, number < num_pages
    if cursor is None and limit:
        keys = page_keys(offset=offset, limit=limit)
        if late:
            has_next = len(keys) > per_page
            keys = keys[:per_page]
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

    def position(entry, direction) -> str:
        value = entry.created_at if getattr(entry, "is_batch", False) else None
        if value is None:
            value = keyset.sort_value(entry, sort)
        return keyset.Cursor(sort, value, entry.pk, direction).encode()

    next_cursor = prev_cursor = None
    if entries and has_next:
        next_cursor = position(entries[-1], keyset.NEXT)
    if entries and has_previous:
        # Backwards by cursor too, even to page 1: runs created since would otherwise
        # push rows between page 1 and this one out of sight.
        prev_cursor = position(entries[0], keyset.PREV)

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
        paginator=None if late else KnownCountPaginator(entry_count, per_page),
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
        has_previous=has_previous,
        has_next=has_next,
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
