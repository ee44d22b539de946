"""Tags in the JSON API.

GET  /api/v1/executions/{id}/tags     the run's tags
POST /api/v1/executions/{id}/tags     {"add": [...], "remove": [...]}
"""

from __future__ import annotations

from uuid import UUID

from ninja import Field, Router, Schema
from ninja import Status as Answer

from executions.selectors import execution_get

from . import services
from .models import ExecutionTag

router = Router(tags=["tags"])


class TagsIn(Schema):
    add: list[str] = Field(default_factory=list, max_length=20)
    remove: list[str] = Field(default_factory=list, max_length=20)


class TagsOut(Schema):
    execution_id: UUID
    tags: list[str]


class ErrorOut(Schema):
    detail: str


class FieldErrorOut(Schema):
    field: str
    message: str


class ValidationErrorOut(Schema):
    detail: str
    errors: list[FieldErrorOut]


def _out(execution) -> dict:
    names = ExecutionTag.objects.filter(
        workspace_id=execution.workspace_id, execution=execution
    ).values_list("name", flat=True)
    return {"execution_id": execution.pk, "tags": sorted(names)}


@router.get(
    "/executions/{execution_id}/tags",
    response={200: TagsOut, 401: ErrorOut, 404: ErrorOut},
    summary="Get a run's tags",
)
def tags_get(request, execution_id: UUID):
    return _out(execution_get(workspace=request.workspace, pk=execution_id))


@router.post(
    "/executions/{execution_id}/tags",
    response={200: TagsOut, 401: ErrorOut, 404: ErrorOut, 422: ValidationErrorOut},
    summary="Tag a run",
)
def tags_set(request, execution_id: UUID, payload: TagsIn):
    """Add and remove tags (lower-case, 1 to 50 of a-z 0-9 - _ . :). 422 names the
    list (`add` or `remove`) holding a bad tag."""
    execution = execution_get(workspace=request.workspace, pk=execution_id)
    for field, names in (("add", payload.add), ("remove", payload.remove)):
        if not names:
            continue
        try:
            services.clean_tags(names)
        except services.TagError as exc:
            return Answer(
                422,
                {
                    "detail": f"Invalid tags: {field}: {exc.message}",
                    "errors": [{"field": field, "message": exc.message}],
                },
            )
    if payload.add:
        services.tags_add(
            workspace=request.workspace,
            executions=[execution.pk],
            names=payload.add,
            user=request.api_key.created_by,
        )
    if payload.remove:
        services.tags_remove(
            workspace=request.workspace, executions=[execution.pk], names=payload.remove
        )
    return _out(execution)
