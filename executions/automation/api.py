"""Automation rules in the JSON API.

GET  /api/v1/rules                  the workspace's rules
POST /api/v1/rules                  create one (admins' keys)
GET  /api/v1/rules/{id}/log         what it decided on each run, newest first
POST /api/v1/rules/{id}/backfill    apply it to past runs, on the task queue
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from ninja import Field, Query, Router, Schema
from ninja import Status as Answer
from pydantic import StringConstraints

from agents.models import Membership, Role
from agents.validation import url_problem
from executions.models import SavedView
from executions.tags.services import TagError, clean_tags
from feedback.queues.models import Queue

from .models import Rule, RuleRun, Trigger

router = Router(tags=["automation rules"])


class RuleIn(Schema):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    trigger: Trigger
    saved_view_id: int | None = None
    sample_percent: Decimal = Field(Decimal(100), ge=0, le=100, decimal_places=2)
    queue_id: int | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)
    webhook_url: Annotated[str, StringConstraints(max_length=2000)] = ""
    webhook_secret: Annotated[str, StringConstraints(max_length=200)] = ""
    enabled: bool = True


class RuleOut(Schema):
    id: int
    name: str
    trigger: str
    enabled: bool
    saved_view_id: int | None
    sample_percent: Decimal
    queue_id: int | None
    tags: list[str]
    webhook_url: str


class RuleRunOut(Schema):
    execution_id: UUID
    outcome: str
    detail: dict[str, Any]
    backfill: bool
    created_at: datetime


class ErrorOut(Schema):
    detail: str


class FieldErrorOut(Schema):
    field: str
    message: str


class ValidationErrorOut(Schema):
    detail: str
    errors: list[FieldErrorOut]


def _out(rule: Rule) -> dict:
    return {
        "id": rule.pk,
        "name": rule.name,
        "trigger": rule.trigger,
        "enabled": rule.enabled,
        "saved_view_id": rule.saved_view_id,
        "sample_percent": rule.sample_percent,
        "queue_id": rule.queue_id,
        "tags": rule.tags,
        "webhook_url": rule.webhook_url,
    }


def _invalid(errors: dict[str, str]):
    return Answer(
        422,
        {
            "detail": "Invalid rule: " + "; ".join(f"{k}: {v}" for k, v in errors.items()),
            "errors": [{"field": k, "message": v} for k, v in errors.items()],
        },
    )


def _is_admin(request) -> bool:
    return Membership.objects.filter(
        workspace=request.workspace, user_id=request.api_key.created_by_id, role=Role.ADMIN
    ).exists()


def _rule(request, rule_id: int) -> Rule:
    from django.http import Http404

    rule = Rule.objects.filter(workspace=request.workspace, pk=rule_id).first()
    if rule is None:
        raise Http404("No such rule in this workspace.")
    return rule


@router.get("/rules", response={200: list[RuleOut], 401: ErrorOut}, summary="List rules")
def rule_list(request):
    return [_out(r) for r in Rule.objects.filter(workspace=request.workspace).order_by("name")]


@router.post(
    "/rules",
    response={201: RuleOut, 401: ErrorOut, 403: ErrorOut, 422: ValidationErrorOut},
    summary="Create a rule",
)
def rule_create(request, payload: RuleIn):
    if not _is_admin(request):
        return Answer(403, {"detail": "Only keys created by workspace admins can create rules."})
    ws = request.workspace
    errors: dict[str, str] = {}
    view = queue = None
    if payload.saved_view_id is not None:
        view = SavedView.objects.filter(workspace=ws, pk=payload.saved_view_id).first()
        if view is None:
            errors["saved_view_id"] = "No such saved view in this workspace."
    if payload.queue_id is not None:
        queue = Queue.objects.filter(workspace=ws, pk=payload.queue_id).first()
        if queue is None:
            errors["queue_id"] = "No such review queue in this workspace."
    tags = []
    if payload.tags:
        try:
            tags = clean_tags(payload.tags)
        except TagError as exc:
            errors["tags"] = exc.message
    if payload.webhook_url and (problem := url_problem(payload.webhook_url)):
        errors["webhook_url"] = f"Webhook URL {problem}."
    if not (queue or tags or payload.webhook_url) and not errors:
        errors["actions"] = "Give at least one action: queue_id, tags or webhook_url."
    if errors:
        return _invalid(errors)
    rule = Rule(
        workspace=ws,
        name=payload.name.strip(),
        trigger=payload.trigger,
        saved_view=view,
        sample_percent=payload.sample_percent,
        queue=queue,
        tags=tags,
        webhook_url=payload.webhook_url,
        webhook_secret=payload.webhook_secret,
        enabled=payload.enabled,
        created_by=request.api_key.created_by,
    )
    try:
        rule.full_clean(exclude=["workspace", "saved_view", "queue", "created_by"])
        with transaction.atomic():
            rule.save()
    except ValidationError as exc:
        return _invalid({k: " ".join(v) for k, v in exc.message_dict.items()})
    except IntegrityError:
        return _invalid({"name": "A rule with this name exists."})
    return Answer(201, _out(rule))


@router.get(
    "/rules/{rule_id}/log",
    response={200: list[RuleRunOut], 401: ErrorOut, 404: ErrorOut},
    summary="A rule's log",
)
def rule_log(
    request, rule_id: int, limit: Annotated[int, Query(ge=1, le=1000, description="Rows.")] = 100
):
    rule = _rule(request, rule_id)
    runs = RuleRun.objects.filter(rule=rule).order_by("-created_at", "-id")[:limit]
    return [
        {
            "execution_id": r.execution_id,
            "outcome": r.outcome,
            "detail": r.detail,
            "backfill": r.backfill,
            "created_at": r.created_at,
        }
        for r in runs
    ]


@router.post(
    "/rules/{rule_id}/backfill",
    response={202: dict, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut},
    summary="Backfill a rule over past runs",
)
def rule_backfill(request, rule_id: int):
    """Queued: each past run is decided at most once; the log shows what it did."""
    rule = _rule(request, rule_id)
    if not _is_admin(request):
        return Answer(403, {"detail": "Only keys created by workspace admins can backfill."})
    from .tasks import backfill

    transaction.on_commit(lambda: backfill.enqueue(rule.pk))
    return Answer(202, {"queued": True, "rule_id": rule.pk})
