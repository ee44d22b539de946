"""Writes of review queues: create a queue, add items, claim, renew, skip, submit,
resolve.

A claim is the reviewer's Review row before it is submitted. Claiming locks the item
row first (PostgreSQL: FOR UPDATE SKIP LOCKED, so twenty reviewers claiming at once
each take a different item without waiting on each other; SQLite runs write
transactions one at a time, IMMEDIATE mode) and counts the item's live claims in a
statement of its own, after the lock: a count inside the locking statement would use
the snapshot taken before another claimer committed, and two reviewers could take the
last seat of the same item.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents.models import Membership, Role
from executions.models import Execution
from feedback import pointer
from feedback.jsonform import Change
from feedback.selectors import execution_corrected
from feedback.services import FieldErrors, field_corrections_create

from . import agreement, rubric
from .models import MAX_REVIEWERS_PER_ITEM, Queue, QueueItem, Review

MAX_ITEMS_PER_ADD = 100_000
# Items passed over because another claimer filled them in the instant between
# choosing and locking; each pass skips one, so this bounds nothing that matters.
MAX_CLAIM_PASSES = 100


class QueueError(Exception):
    """A refused write, with errors by the field they belong to."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        key, msg = next(iter(errors.items()))
        super().__init__(f"{key}: {msg}" if key else msg)


class LockLost(QueueError):
    """The claim expired and the item went to someone else meanwhile."""

    def __init__(self):
        super().__init__(
            {"": "Your claim on this run expired and another reviewer took it; nothing saved."}
        )


def require_queue_admin(membership: Membership | None) -> None:
    if membership is None or membership.role != Role.ADMIN:
        raise PermissionDenied("Only workspace admins can manage review queues.")


def require_queue_reviewer(queue: Queue, membership: Membership | None) -> None:
    """Reviewers of the workspace may work a queue without assignees; with assignees,
    only they (and admins)."""
    if membership is None or membership.workspace_id != queue.workspace_id:
        raise PermissionDenied("Not a member of this queue's workspace.")
    if membership.role == Role.ADMIN:
        return
    if not membership.can_review:
        raise PermissionDenied("Only reviewers and admins can review runs.")
    if queue.assignees.exists() and not queue.assignees.filter(pk=membership.pk).exists():
        raise PermissionDenied("You are not assigned to this queue.")


def _int(value, name: str, low: int, high: int, errors: dict) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        errors[name] = "Enter a whole number."
        return None
    if not low <= number <= high:
        errors[name] = f"Between {low} and {high}."
        return None
    return number


def queue_check(
    *,
    workspace,
    queue: Queue | None,
    name,
    instructions,
    reviewers_per_item,
    lock_seconds,
    fields,
    questions,
    assignees,
) -> dict:
    """The checked values of a queue being created or edited (`queue`: the one being
    edited, None for a new one); QueueError names each field that is wrong."""
    errors: dict[str, str] = {}
    name = (name or "").strip()
    same_name = Queue.objects.filter(workspace=workspace, name=name)
    if queue is not None:
        same_name = same_name.exclude(pk=queue.pk)
    if not name or len(name) > 200:
        errors["name"] = "A name of 1 to 200 characters."
    elif same_name.exists():
        errors["name"] = "A queue with this name exists."
    per_item = _int(reviewers_per_item, "reviewers_per_item", 1, MAX_REVIEWERS_PER_ITEM, errors)
    lock = _int(lock_seconds or Queue.lock_seconds.field.default, "lock_seconds", 60, 86400, errors)
    fields = [] if fields is None else fields
    questions = [] if questions is None else questions
    if problems := rubric.check_fields(fields):
        errors["fields"] = " ".join(problems)
    if problems := rubric.check_questions(questions):
        errors["questions"] = " ".join(problems)
    for m in assignees or []:
        if m.workspace_id != workspace.id or not m.can_review:
            errors["assignees"] = f"{m.user} is not a reviewer of this workspace."
    if errors:
        raise QueueError(errors)
    return {
        "name": name,
        "instructions": instructions or "",
        "reviewers_per_item": per_item,
        "lock_seconds": lock,
        "fields": fields,
        "questions": questions,
    }


def queue_create(
    *,
    membership: Membership,
    name: str,
    instructions: str = "",
    reviewers_per_item=1,
    lock_seconds=None,
    fields=None,
    questions=None,
    assignees: list[Membership] | None = None,
) -> Queue:
    require_queue_admin(membership)
    values = queue_check(
        workspace=membership.workspace,
        queue=None,
        name=name,
        instructions=instructions,
        reviewers_per_item=reviewers_per_item,
        lock_seconds=lock_seconds,
        fields=fields,
        questions=questions,
        assignees=assignees,
    )
    try:
        with transaction.atomic():
            queue = Queue.objects.create(
                workspace=membership.workspace, created_by=membership.user, **values
            )
            if assignees:
                queue.assignees.set(assignees)
    except IntegrityError:
        raise QueueError({"name": "A queue with this name exists."}) from None
    return queue


def queue_update(
    *,
    queue: Queue,
    membership: Membership,
    name: str,
    instructions: str = "",
    reviewers_per_item=1,
    lock_seconds=None,
    fields=None,
    questions=None,
    assignees: list[Membership] | None = None,
) -> Queue:
    """Edit a queue. Reviews already submitted keep what they said; a new rubric or
    number of reviewers applies to the reviews still to come (an item already done
    stays done)."""
    require_queue_admin(membership)
    if membership.workspace_id != queue.workspace_id:
        raise PermissionDenied("Not a member of this queue's workspace.")
    values = queue_check(
        workspace=membership.workspace,
        queue=queue,
        name=name,
        instructions=instructions,
        reviewers_per_item=reviewers_per_item,
        lock_seconds=lock_seconds,
        fields=fields,
        questions=questions,
        assignees=assignees,
    )
    for key, value in values.items():
        setattr(queue, key, value)
    try:
        with transaction.atomic():
            queue.save(update_fields=list(values))
            queue.assignees.set(assignees or [])
    except IntegrityError:
        raise QueueError({"name": "A queue with this name exists."}) from None
    return queue


def items_add(*, queue: Queue, membership: Membership, executions) -> int:
    """Add runs (a queryset or ids) to the queue; runs already in it are left alone,
    runs of other workspaces are never added. Returns how many were added."""
    if membership is None or not (membership.can_operate or membership.can_review):
        raise PermissionDenied("Only operators, reviewers and admins can add runs to queues.")
    if membership.workspace_id != queue.workspace_id:
        raise PermissionDenied("Not a member of this queue's workspace.")
    ids = Execution.objects.filter(workspace_id=queue.workspace_id)
    if hasattr(executions, "values"):
        ids = ids.filter(pk__in=executions.values("pk"))
    else:
        ids = ids.filter(pk__in=list(executions))
    ids = list(ids.order_by("pk").values_list("pk", flat=True)[: MAX_ITEMS_PER_ADD + 1])
    if len(ids) > MAX_ITEMS_PER_ADD:
        raise QueueError({"": f"At most {MAX_ITEMS_PER_ADD:,} runs can be added at once."})
    return items_add_ids(queue=queue, ids=ids)


def items_add_ids(*, queue: Queue, ids: list) -> int:
    """The write behind items_add, for callers that already checked (rules, bench)."""
    before = QueueItem.objects.filter(queue=queue).count()
    now = timezone.now()
    QueueItem.objects.bulk_create(
        [
            QueueItem(workspace_id=queue.workspace_id, queue=queue, execution_id=pk, created_at=now)
            for pk in ids
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )
    return QueueItem.objects.filter(queue=queue).count() - before


def _live_claims(now: datetime):
    return Review.objects.filter(item=OuterRef("pk"), submitted_at__isnull=True, expires_at__gt=now)


def claim_next(*, queue: Queue, membership: Membership, now: datetime | None = None):
    """The reviewer's claim in this queue: the one they hold (renewed), or a new one on
    the oldest open item that still wants a reviewer and that they have not reviewed
    or skipped. None when nothing is left for them."""
    require_queue_reviewer(queue, membership)
    now = now or timezone.now()
    user = membership.user
    with transaction.atomic():
        held = (
            Review.objects.filter(
                item__queue=queue, reviewer=user, submitted_at__isnull=True, expires_at__gt=now
            )
            .select_related("item")
            .order_by("started_at")
            .first()
        )
        if held is not None:
            held.expires_at = now + queue.lock_timeout
            held.save(update_fields=["expires_at"])
            return held
        candidates = QueueItem.objects.filter(queue=queue, state=QueueItem.State.OPEN).exclude(
            Exists(
                Review.objects.filter(
                    item=OuterRef("pk"), reviewer=user, submitted_at__isnull=False
                )
            )
        )
        if queue.reviewers_per_item == 1:
            candidates = candidates.exclude(Exists(_live_claims(now).exclude(reviewer=user)))
        else:
            live = (
                _live_claims(now)
                .exclude(reviewer=user)
                .order_by()
                .values("item")
                .annotate(n=Count("pk"))
                .values("n")
            )
            candidates = candidates.annotate(
                live=Coalesce(Subquery(live, output_field=IntegerField()), Value(0))
            ).filter(reviews_done__lt=queue.reviewers_per_item - F("live"))
        passed: list[int] = []
        for _ in range(MAX_CLAIM_PASSES):
            item = (
                candidates.exclude(pk__in=passed)
                .select_for_update(skip_locked=True, of=("self",))
                .order_by("id")
                .only("id", "reviews_done", "queue_id", "execution_id", "workspace_id")
                .first()
            )
            if item is None:
                return None
            others = (
                Review.objects.filter(item=item, submitted_at__isnull=True, expires_at__gt=now)
                .exclude(reviewer=user)
                .count()
            )
            if item.reviews_done + others >= queue.reviewers_per_item:
                passed.append(item.pk)
                continue
            review, _ = Review.objects.update_or_create(
                item=item,
                reviewer=user,
                defaults={
                    "workspace_id": queue.workspace_id,
                    "started_at": now,
                    "expires_at": now + queue.lock_timeout,
                },
            )
            review.item = item
            return review
    return None


def _lock_item(review: Review, queue: Queue, now: datetime) -> QueueItem:
    """Lock the item and check the reviewer may still write to it: a claim that lapsed
    is taken back if nobody filled the item meanwhile."""
    item = QueueItem.objects.select_for_update(of=("self",)).get(pk=review.item_id)
    if review.submitted_at is not None:
        raise QueueError({"": "This review was already submitted."})
    if review.expires_at <= now:
        others = (
            Review.objects.filter(item=item, submitted_at__isnull=True, expires_at__gt=now)
            .exclude(pk=review.pk)
            .count()
        )
        if item.state != QueueItem.State.OPEN or item.reviews_done + others >= (
            queue.reviewers_per_item
        ):
            raise LockLost()
    return item


def _own(review: Review, membership: Membership) -> None:
    if membership is None or review.reviewer_id != membership.user_id:
        raise PermissionDenied("This is another reviewer's claim.")


def review_renew(*, review: Review, membership: Membership, now: datetime | None = None) -> Review:
    _own(review, membership)
    now = now or timezone.now()
    queue = review.item.queue
    with transaction.atomic():
        review.refresh_from_db(fields=["submitted_at", "expires_at"])
        _lock_item(review, queue, now)
        review.expires_at = now + queue.lock_timeout
        review.save(update_fields=["expires_at"])
    return review


def review_skip(*, review: Review, membership: Membership, now: datetime | None = None) -> Review:
    """Pass on the item: it goes back to the others, never again to this reviewer."""
    _own(review, membership)
    now = now or timezone.now()
    with transaction.atomic():
        review.refresh_from_db(fields=["submitted_at", "expires_at"])
        if review.submitted_at is not None:
            raise QueueError({"": "This review was already submitted."})
        review.skipped = True
        review.submitted_at = now
        review.save(update_fields=["skipped", "submitted_at"])
    return review


def review_submit(
    *,
    review: Review,
    membership: Membership,
    fields: dict,
    answers: dict,
    now: datetime | None = None,
) -> Review:
    """Store the reviewer's verdicts and answers. When the item has all its reviews,
    it is done if the reviewers agree on every field (agreed corrections become the
    corrections of record at once) or disputed, for a queue admin to resolve."""
    _own(review, membership)
    now = now or timezone.now()
    queue = review.item.queue
    execution = review.item.execution
    field_list = rubric.review_fields(queue.fields, execution.output)
    verdicts, field_errors = rubric.clean_verdicts(field_list, fields or {})
    clean, answer_errors = rubric.clean_answers(queue.questions, answers or {})
    errors = {f"field:{k}": v for k, v in field_errors.items()}
    errors.update({f"answer:{k}": v for k, v in answer_errors.items()})
    if errors:
        raise QueueError(errors)
    with transaction.atomic():
        review.refresh_from_db(fields=["submitted_at", "expires_at"])
        item = _lock_item(review, queue, now)
        review.fields = verdicts
        review.answers = clean
        review.submitted_at = now
        review.expires_at = max(review.expires_at, now)
        review.save(update_fields=["fields", "answers", "submitted_at", "expires_at"])
        item.reviews_done += 1
        update = ["reviews_done"]
        if item.reviews_done >= queue.reviewers_per_item:
            reviews = list(item.reviews.filter(submitted_at__isnull=False, skipped=False))
            disputed = disputed_fields(field_list, reviews)
            if disputed:
                item.state = QueueItem.State.DISPUTED
            else:
                _apply(execution, membership, agreed_values(field_list, reviews))
                item.state = QueueItem.State.DONE
            item.finished_at = now
            update += ["state", "finished_at"]
        item.save(update_fields=update)
    return review


def disputed_fields(field_list: list[str], reviews: list[Review]) -> list[str]:
    return [
        ptr
        for ptr in field_list
        if len({agreement.field_value(r.fields.get(ptr)) for r in reviews}) > 1
    ]


def agreed_values(field_list: list[str], reviews: list[Review]) -> dict[str, object]:
    """The corrected value of each field every reviewer corrected the same way."""
    values = {}
    for ptr in field_list:
        said = {agreement.field_value(r.fields.get(ptr)) for r in reviews}
        if len(said) == 1 and said != {agreement.UNCHANGED}:
            values[ptr] = reviews[0].fields[ptr]["value"]
    return values


def _apply(execution: Execution, membership: Membership, values: dict[str, object]) -> None:
    """Make the values the corrections of record through the feedback service (its
    schema checks, history and per-field accuracy), skipping fields already equal."""
    if not values:
        return
    current = execution_corrected(workspace=execution.workspace, execution=execution).output
    changes = []
    for ptr, value in values.items():
        have = pointer.get(current, ptr, pointer.MISSING)
        if have is not pointer.MISSING and have == value and type(have) is type(value):
            continue
        op = "add" if have is pointer.MISSING else "replace"
        changes.append(Change(op=op, path=ptr, value=value, field=f"field:{ptr}"))
    if changes:
        try:
            field_corrections_create(
                execution=execution, membership=membership, changes=changes, comment="Review queue"
            )
        except FieldErrors as exc:
            raise QueueError({k or "": v[0] for k, v in exc.errors.items()}) from None


def item_resolve(*, item: QueueItem, membership: Membership, values: dict[str, dict]) -> QueueItem:
    """A queue admin picks the final value of each disputed field ({pointer: {"verdict":
    "ok"} or {"verdict": "corrected", "value": ...}}); with the fields the reviewers
    agreed on, they become the corrections of record."""
    require_queue_admin(membership)
    if membership.workspace_id != item.workspace_id:
        raise PermissionDenied("Not a member of this queue's workspace.")
    queue, execution = item.queue, item.execution
    field_list = rubric.review_fields(queue.fields, execution.output)
    with transaction.atomic():
        item = QueueItem.objects.select_for_update(of=("self",)).get(pk=item.pk)
        if item.state != QueueItem.State.DISPUTED:
            raise QueueError({"": "Only disputed items are resolved."})
        reviews = list(item.reviews.filter(submitted_at__isnull=False, skipped=False))
        disputed = disputed_fields(field_list, reviews)
        chosen, errors = rubric.clean_verdicts(disputed, values or {})
        errors = {f"field:{k}": v for k, v in errors.items()}
        for ptr in disputed:
            if ptr not in chosen and f"field:{ptr}" not in errors:
                errors[f"field:{ptr}"] = "Pick the final value of this field."
        if errors:
            raise QueueError(errors)
        final = agreed_values(field_list, reviews)
        final.update({p: v["value"] for p, v in chosen.items() if v["verdict"] == "corrected"})
        _apply(execution, membership, final)
        item.state = QueueItem.State.RESOLVED
        item.resolution = chosen
        item.resolved_by = membership.user
        item.save(update_fields=["state", "resolution", "resolved_by"])
    return item


__all__ = [
    "LockLost",
    "QueueError",
    "claim_next",
    "item_resolve",
    "items_add",
    "queue_create",
    "queue_update",
    "review_renew",
    "review_skip",
    "review_submit",
]
