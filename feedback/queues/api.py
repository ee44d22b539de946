"""Review queues in the JSON API.

    GET  /api/v1/queues                       the workspace's queues with their counts
    POST /api/v1/queues                       create one (name, rubric, reviewers per item)
    POST /api/v1/queues/{id}/items            add runs by id (already there: left alone)
    POST /api/v1/queues/{id}/claim            claim the next item (204: nothing left)
    POST /api/v1/reviews/{id}/submit          verdicts per field and answers
    POST /api/v1/reviews/{id}/skip            pass on the item

A workspace API key acts as the member who created it, with that member's role (a key
whose creator has left the workspace is refused): the same rules as the pages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from django.core.exceptions import PermissionDenied
from ninja import Field, Router, Schema
from ninja import Status as Answer
from pydantic import StringConstraints

from agents.models import Membership

from . import rubric, selectors, services
from .models import Queue, Review

router = Router(tags=["review queues"])


class QueueIn(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    instructions: Annotated[str, StringConstraints(max_length=10_000)] = ""
    reviewers_per_item: int = Field(1, description="1 to 10 reviews before an item is done.")
    lock_seconds: int = Field(1800, description="How long a claim holds an item (60 to 86400).")
    fields: list[str] = Field(
        default_factory=list, description="JSON Pointers to check; empty: every output leaf."
    )
    questions: list[dict[str, Any]] = Field(
        default_factory=list,
        description='[{"key", "label", "kind": "choice"|"number"|"text", "choices": [...]}]',
    )
    assignees: list[str] = Field(
        default_factory=list, description="Usernames of reviewers; empty: every reviewer."
    )


class QueueOut(Schema):
    id: int
    name: str
    instructions: str
    reviewers_per_item: int
    lock_seconds: int
    fields: list[str]
    questions: list[dict[str, Any]]
    open_items: int | None = None


class ItemsIn(Schema):
    execution_ids: list[UUID] = Field(max_length=10_000)


class ItemsOut(Schema):
    added: int


class ClaimOut(Schema):
    review_id: int
    execution_id: UUID
    expires_at: datetime
    fields: list[str]
    questions: list[dict[str, Any]]


class VerdictIn(Schema):
    verdict: str = Field(description='"ok" or "corrected"')
    value: Any = None


class SubmitIn(Schema):
    fields: dict[str, VerdictIn] = Field(default_factory=dict)
    answers: dict[str, Any] = Field(default_factory=dict)


class ReviewOut(Schema):
    review_id: int
    item_state: str
    submitted_at: datetime | None
    skipped: bool


class ErrorOut(Schema):
    detail: str


class FieldErrorOut(Schema):
    field: str
    message: str


class ValidationErrorOut(Schema):
    detail: str
    errors: list[FieldErrorOut]


def _membership(request) -> Membership:
    key = request.api_key
    member = (
        Membership.objects.select_related("user", "workspace")
        .filter(workspace=request.workspace, user_id=key.created_by_id)
        .first()
    )
    if member is None:
        raise PermissionDenied("This API key's creator is no longer a member of the workspace.")
    return member


def _queue_out(q: Queue) -> dict:
    return {
        "id": q.pk,
        "name": q.name,
        "instructions": q.instructions,
        "reviewers_per_item": q.reviewers_per_item,
        "lock_seconds": q.lock_seconds,
        "fields": q.fields,
        "questions": q.questions,
        "open_items": getattr(q, "open_items", None),
    }


def _invalid(exc: services.QueueError):
    detail = "; ".join(f"{f or 'request'}: {m}" for f, m in exc.errors.items())
    return Answer(
        409 if isinstance(exc, services.LockLost) else 422,
        {
            "detail": f"Invalid: {detail}",
            "errors": [{"field": f or "request", "message": m} for f, m in exc.errors.items()],
        },
    )


def _review_out(review: Review) -> dict:
    review.item.refresh_from_db(fields=["state"])
    return {
        "review_id": review.pk,
        "item_state": review.item.state,
        "submitted_at": review.submitted_at,
        "skipped": review.skipped,
    }


ERRORS = {
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ValidationErrorOut,
    422: ValidationErrorOut,
}


@router.get("/queues", response={200: list[QueueOut], **ERRORS}, summary="List review queues")
def queue_list(request):
    try:
        member = _membership(request)
    except PermissionDenied as exc:
        return Answer(403, {"detail": str(exc)})
    return [_queue_out(q) for q in selectors.queue_list(membership=member)]


@router.post("/queues", response={201: QueueOut, **ERRORS}, summary="Create a review queue")
def queue_create(request, payload: QueueIn):
    try:
        member = _membership(request)
        assignees = list(
            Membership.objects.filter(
                workspace=request.workspace, user__username__in=payload.assignees
            )
        )
        missing = set(payload.assignees) - {m.user.username for m in assignees}
        if missing:
            raise services.QueueError(
                {"assignees": f"Not members of this workspace: {', '.join(sorted(missing))}."}
            )
        queue = services.queue_create(
            membership=member,
            name=payload.name,
            instructions=payload.instructions,
            reviewers_per_item=payload.reviewers_per_item,
            lock_seconds=payload.lock_seconds,
            fields=payload.fields,
            questions=payload.questions,
            assignees=assignees,
        )
    except PermissionDenied as exc:
        return Answer(403, {"detail": str(exc)})
    except services.QueueError as exc:
        return _invalid(exc)
    return Answer(201, _queue_out(queue))


@router.post(
    "/queues/{queue_id}/items", response={200: ItemsOut, **ERRORS}, summary="Add runs to a queue"
)
def items_add(request, queue_id: int, payload: ItemsIn):
    queue = selectors.queue_get(workspace=request.workspace, pk=queue_id)
    try:
        added = services.items_add(
            queue=queue, membership=_membership(request), executions=payload.execution_ids
        )
    except PermissionDenied as exc:
        return Answer(403, {"detail": str(exc)})
    except services.QueueError as exc:
        return _invalid(exc)
    return {"added": added}


@router.post(
    "/queues/{queue_id}/claim",
    response={200: ClaimOut, 204: None, **ERRORS},
    summary="Claim the next item",
)
def claim(request, queue_id: int):
    """The caller's current claim in this queue (renewed) or the next free item. 204
    when nothing is left for the caller."""
    queue = selectors.queue_get(workspace=request.workspace, pk=queue_id)
    try:
        review = services.claim_next(queue=queue, membership=_membership(request))
    except PermissionDenied as exc:
        return Answer(403, {"detail": str(exc)})
    if review is None:
        return Answer(204, None)
    return {
        "review_id": review.pk,
        "execution_id": review.item.execution_id,
        "expires_at": review.expires_at,
        "fields": rubric.review_fields(queue.fields, review.item.execution.output),
        "questions": queue.questions,
    }


@router.post(
    "/reviews/{review_id}/submit", response={200: ReviewOut, **ERRORS}, summary="Submit a review"
)
def submit(request, review_id: int, payload: SubmitIn):
    """409 when the claim lapsed and another reviewer took the item; 422 naming each
    field (`field:/path`) or answer (`answer:key`) that is wrong."""
    try:
        member = _membership(request)
        review = selectors.review_get(membership=member, pk=review_id)
        services.review_submit(
            review=review,
            membership=member,
            fields={p: v.dict() for p, v in payload.fields.items()},
            answers=payload.answers,
        )
    except PermissionDenied as exc:
        return Answer(403, {"detail": str(exc)})
    except services.QueueError as exc:
        return _invalid(exc)
    return _review_out(review)


@router.post("/reviews/{review_id}/skip", response={200: ReviewOut, **ERRORS}, summary="Skip")
def skip(request, review_id: int):
    try:
        member = _membership(request)
        review = selectors.review_get(membership=member, pk=review_id)
        services.review_skip(review=review, membership=member)
    except PermissionDenied as exc:
        return Answer(403, {"detail": str(exc)})
    except services.QueueError as exc:
        return _invalid(exc)
    return _review_out(review)
