"""Writes of tags: add and remove on many runs at once, scoped to one workspace."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction

from agents.models import Membership
from executions.models import Execution

from .models import TAG_RE, ExecutionTag

MAX_TAGS_PER_CALL = 20
MAX_RUNS_PER_CALL = 100_000


class TagError(ValueError):
    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def clean_tags(names) -> list[str]:
    if isinstance(names, str):
        names = [names]
    cleaned = []
    for raw in names or []:
        name = str(raw).strip().lower()
        if not TAG_RE.match(name):
            raise TagError(
                "tags",
                f"{raw!r} is not a tag: 1 to 50 of a-z 0-9 - _ . :, starting with a letter "
                "or digit.",
            )
        if name not in cleaned:
            cleaned.append(name)
    if not cleaned:
        raise TagError("tags", "Name at least one tag.")
    if len(cleaned) > MAX_TAGS_PER_CALL:
        raise TagError("tags", f"At most {MAX_TAGS_PER_CALL} tags at once.")
    return cleaned


def require_tagger(membership: Membership | None) -> None:
    if membership is None or not (membership.can_operate or membership.can_review):
        raise PermissionDenied("Only operators, reviewers and admins can tag runs.")


def _ids(workspace, executions) -> list:
    runs = Execution.objects.filter(workspace=workspace)
    if hasattr(executions, "values"):
        runs = runs.filter(pk__in=executions.values("pk"))
    else:
        runs = runs.filter(pk__in=list(executions))
    ids = list(runs.order_by().values_list("pk", flat=True)[: MAX_RUNS_PER_CALL + 1])
    if len(ids) > MAX_RUNS_PER_CALL:
        raise TagError("ids", f"At most {MAX_RUNS_PER_CALL:,} runs at once.")
    return ids


def tags_add(*, workspace, executions, names, user=None) -> int:
    """Put each tag on each run (runs of other workspaces are never touched; a tag a
    run already has stays as it was). Returns how many tags were added."""
    names = clean_tags(names)
    ids = _ids(workspace, executions)
    with transaction.atomic():
        before = ExecutionTag.objects.filter(execution_id__in=ids, name__in=names).count()
        ExecutionTag.objects.bulk_create(
            [
                ExecutionTag(workspace=workspace, execution_id=pk, name=n, created_by=user)
                for pk in ids
                for n in names
            ],
            batch_size=2000,
            ignore_conflicts=True,
        )
        after = ExecutionTag.objects.filter(execution_id__in=ids, name__in=names).count()
    return after - before


def tags_remove(*, workspace, executions, names) -> int:
    names = clean_tags(names)
    ids = _ids(workspace, executions)
    deleted, _ = ExecutionTag.objects.filter(
        workspace=workspace, execution_id__in=ids, name__in=names
    ).delete()
    return deleted
