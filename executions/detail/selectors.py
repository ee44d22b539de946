"""Reads of the detail page: steps in pages, their tree depth, counters, artifacts."""

from dataclasses import dataclass

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    ExpressionWrapper,
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
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Substr
from django.db.models.lookups import GreaterThan
from django.http import Http404

from agents.models import Workspace
from executions.models import Artifact, Execution, Step, StepKind, StepStatus

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
    # The traceback an instrumentation recorded, shown behind a toggle under the error.
    steps = Step.objects.filter(execution=execution, sequence=sequence).annotate(
        traceback=KeyTextTransform("exception.stacktrace", "attributes")
    )
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
