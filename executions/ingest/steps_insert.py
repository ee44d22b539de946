"""Writing a planned batch of steps: COPY on PostgreSQL, one INSERT per tree level
elsewhere, then the updates and late parent links (the plan comes from steps.py)."""

import json
from decimal import Decimal

import orjson
from django.db import connection
from django.utils import timezone

from executions.models import Step

from .steps import Plan, _NewStep, money

INSERT_BATCH = 1000  # 22 columns a row stays well under PostgreSQL's 65,535 parameters


def _row(new: _NewStep) -> Step:
    r = new.record
    return Step(
        execution_id=new.execution_id,
        parent_id=new.resolved_parent_id,
        sequence=new.sequence,
        span_id=r.span_id or None,
        parent_span_id=r.parent_span_id or "",
        kind=r.kind,
        name=r.name,
        status=r.status,
        started_at=r.started_at,
        ended_at=r.ended_at,
        duration_ms=r.duration_ms,
        input=r.input,
        output=r.output,
        error=r.error,
        model=r.model,
        prompt_tokens=r.prompt_tokens,
        completion_tokens=r.completion_tokens,
        cost_usd=money(r.cost_usd) if r.cost_usd is not None else Decimal(0),
        attributes=r.attributes,
    )


COPY_COLUMNS = (
    "id",
    "execution_id",
    "parent_id",
    "sequence",
    "span_id",
    "parent_span_id",
    "kind",
    "name",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "input",
    "output",
    "error",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "attributes",
    "created_at",
)


def json_dumps(value) -> bytes:
    """orjson, several times faster than json for the kilobytes of input and output each
    step carries; json only for what orjson refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


def copy_models(model, objects: list) -> None:
    """PostgreSQL COPY of model instances whose primary keys are already set.

    Values go to psycopg as they are (it adapts UUIDs, decimals and aware datetimes
    itself); only JSON fields are wrapped, which is all the preparation these models'
    fields need.
    """
    from psycopg.types.json import Jsonb

    fields = list(model._meta.concrete_fields)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    plan = [(f.attname, f.get_internal_type() == "JSONField") for f in fields]
    # COPY goes to psycopg directly: wrap_database_errors turns its errors into Django's
    # (an IntegrityError from a racing writer is what traces_ingest retries on).
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objects:
            values = obj.__dict__
            copy.write_row(
                [
                    (None if values[name] is None else Jsonb(values[name], dumps=json_dumps))
                    if is_json
                    else values[name]
                    for name, is_json in plan
                ]
            )


def _copy_insert(steps: list[_NewStep]) -> None:
    """PostgreSQL: ids taken from the sequence up front, then one COPY for every level.

    Knowing the ids before writing lets a child name its parent in the same COPY (the
    foreign key is checked at commit), and COPY is several times faster than an
    INSERT of the same rows: this is what keeps span ingestion in the thousands per
    second.
    """
    from psycopg.types.json import Jsonb

    def as_json(value):
        return None if value is None else Jsonb(value, dumps=json_dumps)

    table = connection.ops.quote_name(Step._meta.db_table)
    with connection.cursor() as cursor:
        if any(new.pk is None for new in steps):
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [Step._meta.db_table, len(steps)],
            )
            for new, (pk,) in zip(steps, cursor.fetchall(), strict=True):
                new.pk = pk
        now = timezone.now()
        zero = Decimal(0)
        columns = ", ".join(COPY_COLUMNS)
        with (
            connection.wrap_database_errors,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for new in steps:
                r = new.record
                copy.write_row(
                    (
                        new.pk,
                        new.execution_id,
                        new.resolved_parent_id,
                        new.sequence,
                        r.span_id or None,
                        r.parent_span_id or "",
                        r.kind,
                        r.name,
                        r.status,
                        r.started_at,
                        r.ended_at,
                        r.duration_ms,
                        as_json(r.input),
                        as_json(r.output),
                        r.error,
                        r.model,
                        r.prompt_tokens,
                        r.completion_tokens,
                        money(r.cost_usd) if r.cost_usd is not None else zero,
                        as_json(r.attributes),
                        now,
                    )
                )


def _insert_by_level(steps: list[_NewStep]) -> None:
    """Elsewhere (SQLite): one INSERT per tree level, so each parent has its id first."""
    levels: dict[int, list[_NewStep]] = {}
    for new in steps:
        levels.setdefault(new.depth or 0, []).append(new)
    for depth in sorted(levels):
        level = levels[depth]
        rows = [_row(new) for new in level]
        Step.objects.bulk_create(rows, batch_size=INSERT_BATCH)
        for new, row in zip(level, rows, strict=True):
            new.obj = row
            new.pk = row.pk


def apply_plan(plan: Plan) -> None:
    """Write a plan: the new steps, then the updates and the late parent links."""
    if plan.new:
        if connection.vendor == "postgresql":
            _copy_insert(plan.new)
        else:
            _insert_by_level(plan.new)
    if plan.updates:
        Step.objects.bulk_update(plan.updates, sorted(plan.update_fields), batch_size=500)
    if plan.links:
        # Children stored before their parent: only the parent column changes.
        linked = [Step(pk=child.pk, parent_id=parent.pk) for child, parent in plan.links]
        Step.objects.bulk_update(linked, ["parent"], batch_size=500)
