"""Reads of review queues, each scoped to a workspace: the queues a member works,
their claims, progress per assignee, agreement, disputes and the JSONL export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, Exists, IntegerField, OuterRef, Prefetch, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import Http404

from agents.models import AgentVersion, Membership, Role
from executions.models import Execution
from executions.table.selectors import execution_filterset
from feedback.selectors import Corrected, execution_corrected

from . import agreement, rubric
from .models import Queue, QueueItem, Review


def queue_list(*, membership: Membership) -> list[Queue]:
    """The workspace's queues this member may work, each with `open_items` and
    `waiting` (open items they have not reviewed or skipped)."""
    queues = Queue.objects.filter(workspace=membership.workspace)
    if membership.role != Role.ADMIN:
        queues = queues.filter(Q(assignees=None) | Q(assignees=membership)).distinct()
    mine = Review.objects.filter(
        item=OuterRef("pk"), reviewer=membership.user, submitted_at__isnull=False
    )
    open_items = QueueItem.objects.filter(queue=OuterRef("pk"), state=QueueItem.State.OPEN)
    return list(
        queues.annotate(
            open_items=_count(open_items),
            waiting=_count(open_items.exclude(Exists(mine))),
        ).order_by("name")
    )


def _count(queryset):
    """A correlated COUNT, one subquery per row instead of one query per row."""
    counted = queryset.order_by().values("queue").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


class BadFilters(Exception):
    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(" ".join(f"{k}: {v}" for k, v in errors.items()))


def filtered_runs(*, workspace, params):
    """Every run the executions table's filters match (the table's own FilterSet)."""
    filterset = execution_filterset(workspace=workspace, params=params)
    if not filterset.is_valid():
        raise BadFilters({k: " ".join(v) for k, v in filterset.errors.items()})
    return filterset.qs.order_by()


def runs_by_ids(*, workspace, ids):
    return Execution.objects.filter(workspace=workspace, pk__in=ids)


def reviewer_memberships(*, workspace) -> list[Membership]:
    """Who may be assigned to a queue: the workspace's reviewers and admins."""
    return list(
        Membership.objects.filter(workspace=workspace, role__in=[Role.REVIEWER, Role.ADMIN])
        .select_related("user")
        .order_by("user__username")
    )


@dataclass
class SchemaFields:
    label: str
    fields: list[str]


def schema_field_choices(*, workspace) -> list[SchemaFields]:
    """The rubric fields a queue may pick: those each agent version's output schema
    declares (versions without a schema offer none), newest versions first."""
    versions = (
        AgentVersion.objects.filter(agent__workspace=workspace, output_schema__isnull=False)
        .select_related("agent")
        .only("version", "output_schema", "agent__name")
        .order_by("agent__name", "-created_at")[:50]
    )
    out = []
    for v in versions:
        fields = rubric.schema_fields(v.output_schema)
        if fields:
            out.append(SchemaFields(label=f"{v.agent.name} {v.version}", fields=fields))
    return out


def queue_get(*, workspace, pk) -> Queue:
    try:
        return Queue.objects.get(workspace=workspace, pk=pk)
    except (Queue.DoesNotExist, ValueError, TypeError):
        raise Http404("No such queue in this workspace.") from None


def review_get(*, membership: Membership, pk) -> Review:
    """One of this member's own reviews (claims); anyone else's answers 404."""
    try:
        return Review.objects.select_related("item__queue", "item__execution__agent_version").get(
            workspace=membership.workspace, reviewer=membership.user, pk=pk
        )
    except (Review.DoesNotExist, ValueError, TypeError):
        raise Http404("No such review of yours.") from None


def review_record(*, review: Review) -> Corrected:
    """The run of a claim as its Form tab shows it: the output with the corrections of
    record applied."""
    execution = review.item.execution
    return execution_corrected(workspace=execution.workspace_id, execution=execution)


def item_get(*, workspace, pk) -> QueueItem:
    try:
        return QueueItem.objects.select_related("queue", "execution").get(
            workspace=workspace, pk=pk
        )
    except (QueueItem.DoesNotExist, ValueError, TypeError):
        raise Http404("No such queue item in this workspace.") from None


@dataclass
class AssigneeProgress:
    reviewer: str
    done: int
    skipped: int
    remaining: int
    median_seconds: float | None


@dataclass
class Progress:
    items: int
    by_state: dict[str, int]
    assignees: list[AssigneeProgress]


def queue_progress(*, queue: Queue) -> Progress:
    """Items by state, and per reviewer: done, skipped, remaining (open items they
    have not reviewed or skipped) and the median time per item, from claim to submit.
    Four queries whatever the queue's size, each an aggregate in the database."""
    states = dict(
        QueueItem.objects.filter(workspace_id=queue.workspace_id, queue=queue)
        .order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    by_state = {s: states.get(s, 0) for s in QueueItem.State.values}
    open_items = by_state[QueueItem.State.OPEN]
    counts = (
        Review.objects.filter(
            workspace_id=queue.workspace_id, item__queue=queue, submitted_at__isnull=False
        )
        .order_by()
        .values("reviewer_id", "reviewer__username")
        .annotate(
            done=Count("pk", filter=Q(skipped=False)),
            skipped=Count("pk", filter=Q(skipped=True)),
            open_seen=Count("pk", filter=Q(item__state=QueueItem.State.OPEN)),
        )
    )
    medians = _median_seconds(queue)
    per = {row["reviewer__username"]: row for row in counts}
    people = set(per) | set(queue.assignees.values_list("user__username", flat=True).order_by())
    assignees = []
    for name in sorted(people):
        row = per.get(name, {})
        assignees.append(
            AssigneeProgress(
                reviewer=name,
                done=row.get("done", 0),
                skipped=row.get("skipped", 0),
                remaining=open_items - row.get("open_seen", 0),
                median_seconds=medians.get(row.get("reviewer_id")),
            )
        )
    return Progress(items=sum(by_state.values()), by_state=by_state, assignees=assignees)


def _median_seconds(queue: Queue) -> dict[int, float]:
    """Per reviewer, the median seconds from claim to submit of their submitted (not
    skipped) reviews in the queue. PostgreSQL has percentile_cont; SQLite takes the
    middle row (or the mean of the middle two) by ROW_NUMBER over the reviewer's
    times, which is the same figure."""
    review, item = Review._meta.db_table, QueueItem._meta.db_table
    if connection.vendor == "postgresql":
        seconds = "EXTRACT(EPOCH FROM (r.submitted_at - r.started_at))"
    else:
        seconds = "(julianday(r.submitted_at) - julianday(r.started_at)) * 86400.0"
    rows = f"""
        FROM {review} r JOIN {item} i ON i.id = r.item_id
        WHERE i.queue_id = %s AND i.workspace_id = %s AND r.workspace_id = %s
          AND r.submitted_at IS NOT NULL AND NOT r.skipped"""
    if connection.vendor == "postgresql":
        sql = f"""SELECT r.reviewer_id,
                         percentile_cont(0.5) WITHIN GROUP (ORDER BY {seconds}) {rows}
                  GROUP BY r.reviewer_id"""
    else:
        sql = f"""SELECT reviewer_id, AVG(d) FROM (
                    SELECT r.reviewer_id, {seconds} AS d,
                           ROW_NUMBER() OVER (PARTITION BY r.reviewer_id ORDER BY {seconds}) AS k,
                           COUNT(*) OVER (PARTITION BY r.reviewer_id) AS n {rows}
                  ) t WHERE k IN ((n + 1) / 2, (n + 2) / 2) GROUP BY reviewer_id"""
    ws = queue.workspace_id
    with connection.cursor() as cursor:
        cursor.execute(sql, [queue.pk, ws, ws])
        return {reviewer: float(median) for reviewer, median in cursor.fetchall()}


@dataclass
class QueueAgreement:
    overall: agreement.Agreement
    fields: dict[str, agreement.Agreement]
    pairs: dict[tuple[str, str], agreement.Agreement]
    items_agreeing: int
    items_compared: int


def queue_agreement(*, queue: Queue) -> QueueAgreement:
    """Per field, per item, per reviewer pair and over the queue, from the submitted
    (not skipped) reviews of items with at least two of them."""
    reviews = (
        Review.objects.filter(item__queue=queue, submitted_at__isnull=False, skipped=False)
        .select_related("reviewer", "item__execution")
        .only("fields", "item_id", "reviewer__username", "item__execution__output")
        .order_by("item_id", "id")
    )
    by_item: dict[int, list[Review]] = {}
    for r in reviews:
        by_item.setdefault(r.item_id, []).append(r)
    units, per_field, coded = [], {}, []
    compared = agreeing = 0
    for item_reviews in by_item.values():
        if len(item_reviews) < 2:
            continue
        compared += 1
        field_list = rubric.review_fields(queue.fields, item_reviews[0].item.execution.output)
        all_agree = True
        for ptr in field_list:
            values = {
                r.reviewer.username: agreement.field_value(r.fields.get(ptr)) for r in item_reviews
            }
            unit = list(values.values())
            units.append(unit)
            per_field.setdefault(rubric.field_label(ptr), []).append(unit)
            coded.append(values)
            all_agree = all_agree and agreement.unanimous(unit)
        agreeing += all_agree
    return QueueAgreement(
        overall=agreement.agreement(units),
        fields={f: agreement.agreement(u) for f, u in sorted(per_field.items())},
        pairs=agreement.pair_agreement(coded),
        items_agreeing=agreeing,
        items_compared=compared,
    )


def disputed_items(*, queue: Queue, limit: int = 200) -> list[QueueItem]:
    return list(
        QueueItem.objects.filter(queue=queue, state=QueueItem.State.DISPUTED)
        .select_related("execution")
        .order_by("id")[:limit]
    )


def export_lines(*, queue: Queue) -> Iterator[str]:
    """One JSON line per item that has a submitted review: the run, the state, each
    review (fields, answers, times) and the resolution."""
    submitted = (
        Review.objects.filter(submitted_at__isnull=False)
        .select_related("reviewer")
        .order_by("submitted_at")
    )
    items = (
        QueueItem.objects.filter(queue=queue, reviews_done__gt=0)
        .order_by("id")
        .only("id", "execution_id", "state", "resolution")
        .prefetch_related(Prefetch("reviews", queryset=submitted, to_attr="submitted"))
    )
    for item in items.iterator(chunk_size=500):
        reviews = item.submitted
        yield (
            json.dumps(
                {
                    "execution_id": str(item.execution_id),
                    "state": item.state,
                    "reviews": [
                        {
                            "reviewer": r.reviewer.username,
                            "skipped": r.skipped,
                            "fields": r.fields,
                            "answers": r.answers,
                            "started_at": r.started_at.isoformat(),
                            "submitted_at": r.submitted_at.isoformat(),
                        }
                        for r in reviews
                    ],
                    "resolution": item.resolution,
                },
                sort_keys=True,
            )
            + "\n"
        )
