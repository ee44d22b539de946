"""Reads for the JSON API, scoped to the API key's workspace. The executions list
reuses the table's FilterSet (filters.py), so the API and the table filter alike."""

from dataclasses import dataclass
from datetime import datetime

from django.http import Http404, QueryDict

from agents.models import Workspace
from executions import counters
from executions.lifecycle import UnknownStatus, parse_status
from executions.models import Artifact, Execution, Step, StepKind, StepStatus
from executions.table import jump, keyset
from executions.table.selectors import execution_filterset, table_ordering

# What a list row carries: input, output and request can each hold megabytes.
SUMMARY_FIELDS = (
    "id",
    "workspace_id",
    "agent_id",
    "agent_version_id",
    "agent_name",
    "version_name",
    "status",
    "priority",
    "source",
    "batch_id",
    "session_id",
    "trace_id",
    "metadata",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "credits",
    "step_count",
    "duration_ms",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
)


class FilterErrors(Exception):
    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__(errors)


# The API lists newest first, the table's default order, so a cursor means the same
# position in both.
API_SORT = "-started"
# page= reads and throws away every row before the page: past this many rows the
# client is sent to the cursor, which costs the same on any page.
MAX_OFFSET_ROWS = 10_000


@dataclass
class ExecutionPage:
    rows: list[Execution]
    has_more: bool
    total: int | None
    next_cursor: str | None = None
    prev_cursor: str | None = None


def execution_page(
    *,
    workspace: Workspace,
    agent: list[str] | None = None,
    status: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    metadata: str | None = None,
    q: str | None = None,
    source: str | None = None,
    batch: str | None = None,
    page: int = 1,
    limit: int = 20,
    cursor: str | None = None,
) -> ExecutionPage:
    """One page, newest first, by page number (the first 10,000 rows) or by cursor.

    FilterErrors names each filter (or the page, or the cursor) that did not validate.
    """
    offset = (page - 1) * limit
    if offset > MAX_OFFSET_ROWS:
        raise FilterErrors(
            [
                (
                    "page",
                    f"page {page} starts after row {MAX_OFFSET_ROWS:,}, which page= does not "
                    "reach: follow the `next` link (cursor=) from the previous page instead.",
                )
            ]
        )
    position = None
    if cursor:
        if page != 1:
            raise FilterErrors([("page", "give either page or cursor, not both.")])
        try:
            position = keyset.decode(cursor, sort=API_SORT)
        except keyset.BadCursor as exc:
            raise FilterErrors([("cursor", str(exc))]) from None
    params = QueryDict(mutable=True)
    statuses = []
    for value in status or []:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            if part == "active":
                statuses.append(part)
                continue
            try:
                statuses.append(str(parse_status(part)))
            except UnknownStatus as exc:
                raise FilterErrors([("status", str(exc))]) from None
    params.setlist("status", statuses)
    params.setlist("agent", [a for a in agent or [] if a])
    for name, value in (("meta", metadata), ("q", q), ("source", source), ("batch", batch)):
        if value:
            params[name] = value
    filterset = execution_filterset(workspace=workspace, params=params)
    if not filterset.is_valid():
        names = {"meta": "metadata"}
        raise FilterErrors(
            [
                (names.get(field, field), " ".join(str(m) for m in messages))
                for field, messages in filterset.errors.items()
            ]
        )
    rows = filterset.qs
    if since is not None:
        rows = rows.filter(created_at__gte=since)
    if until is not None:
        rows = rows.filter(created_at__lt=until)
    backwards = position is not None and position.backwards
    if position is None and since is None and until is None and offset >= jump.JUMP_MIN_ROWS:
        # page=100 of 100 skipped 9,900 rows one by one (an incremental sort over the
        # agent's time index, 78 ms of CPU at a million runs): the hourly rollups find
        # the hour the page starts in, as the table's numbered pages do (jump.py).
        found = jump.boundary(filterset, skip=offset, descending=True)
        if found is not None:
            moment, beyond = found
            rows = rows.filter(created_at__lt=moment)
            offset -= beyond
    if position is not None:
        rows = rows.filter(keyset.after(API_SORT, position.value, position.pk, reverse=backwards))
        offset = 0
    ordering = table_ordering(API_SORT, reverse=backwards)
    found = list(rows.only(*SUMMARY_FIELDS).order_by(*ordering)[offset : offset + limit + 1])
    more = len(found) > limit
    found = found[:limit]
    if backwards:
        found.reverse()
        has_next, has_prev = True, more
    else:
        has_next, has_prev = more, position is not None or page > 1
    total = None
    counted = filterset.counter_filters()
    if counted is not None and since is None and until is None:
        total = counters.total(workspace=workspace, **counted)

    def at(row, direction):
        return keyset.Cursor(API_SORT, row.created_at, row.pk, direction).encode()

    return ExecutionPage(
        rows=found,
        has_more=has_next,
        total=total,
        next_cursor=at(found[-1], keyset.NEXT) if found and has_next else None,
        prev_cursor=at(found[0], keyset.PREV) if found and has_prev else None,
    )


def execution_status(*, workspace: Workspace, pk) -> str:
    status = (
        Execution.objects.filter(workspace=workspace, pk=pk)
        .values_list("status", flat=True)
        .first()
    )
    if status is None:
        raise Http404(f"No execution {pk} in this workspace.")
    return status


def step_page(*, execution: Execution, after: int | None, limit: int) -> list[Step]:
    steps = Step.objects.filter(execution=execution).order_by("sequence")
    if after is not None:
        steps = steps.filter(sequence__gt=after)
    return list(steps[: limit + 1])


def steps_since(*, execution_id, after_id: int, limit: int = 500) -> list[Step]:
    """Steps stored after the step with id `after_id`, in the order they were stored."""
    return list(
        Step.objects.filter(execution_id=execution_id, id__gt=after_id).order_by("id")[:limit]
    )


def tools_running(*, execution_id, up_to_id: int) -> set[int]:
    return set(
        Step.objects.filter(
            execution_id=execution_id,
            id__lte=up_to_id,
            kind__in=(StepKind.TOOL_CALL, StepKind.ACTION),
            status=StepStatus.RUNNING,
        ).values_list("id", flat=True)
    )


def steps_finished(*, ids) -> list[Step]:
    return list(Step.objects.filter(id__in=ids).exclude(status=StepStatus.RUNNING).order_by("id"))


def artifact_of_execution(*, workspace: Workspace, execution_id, pk) -> Artifact:
    artifact = Artifact.objects.filter(
        workspace=workspace, execution_id=execution_id, pk=pk
    ).first()
    if artifact is None:
        raise Http404(f"No artifact {pk} of execution {execution_id} in this workspace.")
    return artifact
