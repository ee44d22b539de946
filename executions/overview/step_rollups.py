"""Hourly rollups of tool and model calls (steps), kept by triggers on executions_step.

Same scheme as rollups.py (statement-level triggers with transition tables on
PostgreSQL, so a COPY of ten million steps is one grouped upsert; row triggers on
SQLite), for the overview's "slowest and most failing tools and model calls" and
"models by calls, tokens and cost". A step has no workspace of its own: the
triggers read it from the step's execution, which exists whenever its steps are
written or deleted (Django deletes children first).
"""

from django.db import connection, transaction

from .histogram import bucket_sql

STEP_HOURS = "executions_stephour"
STEP_DURATIONS = "executions_stepdurationhour"
# The daily tier (0023), read for the whole UTC days of a range (selectors.py).
STEP_DAYS = "executions_stepday"
STEP_DURATION_DAYS = "executions_stepdurationday"
DAILY = {STEP_HOURS: STEP_DAYS, STEP_DURATIONS: STEP_DURATION_DAYS}
KINDS = ("tool_call", "model_call")
FAILED = ("failed", "timed_out")
KEY = ("workspace_id", "hour", "kind", "name", "model")
WATCHED = [
    "execution_id",
    "created_at",
    "kind",
    "name",
    "model",
    "status",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
]
_FAILED_SQL = "(" + ", ".join(f"'{s}'" for s in FAILED) + ")"
_KINDS_SQL = "(" + ", ".join(f"'{k}'" for k in KINDS) + ")"
SUMS = [
    ("calls", "sign"),
    ("failed", f"sign * (CASE WHEN r.status IN {_FAILED_SQL} THEN 1 ELSE 0 END)"),
    ("timed_calls", "sign * (CASE WHEN r.duration_ms IS NULL THEN 0 ELSE 1 END)"),
    ("duration_ms", "sign * COALESCE(r.duration_ms, 0)"),
    ("prompt_tokens", "sign * r.prompt_tokens"),
    ("completion_tokens", "sign * r.completion_tokens"),
    ("cost_usd", "sign * r.cost_usd"),
]
TRIGGER_NAMES = {"overview_step_insert", "overview_step_update", "overview_step_delete"}


def _key(vendor: str, grain: str = "hour") -> list[str]:
    if vendor == "postgresql":
        time = f"date_trunc('{grain}', r.created_at, 'UTC')"
    else:
        time = f"strftime('%Y-%m-%d {'%H' if grain == 'hour' else '00'}:00:00', r.created_at)"
    # Names are cut to 200 characters so the key stays indexable.
    name = "left(r.name, 200)" if vendor == "postgresql" else "substr(r.name, 1, 200)"
    return ["r.workspace_id", time, "r.kind", name, "r.model"]


def _upsert(
    table: str,
    key_sql: list[str],
    key: tuple,
    sums: list[tuple[str, str]],
    rows: str,
    grouped: bool,
    where: str,
) -> str:
    exprs = [e for _, e in sums]
    if grouped:
        positions = ", ".join(str(i + 1) for i in range(len(key_sql)))
        select = (
            f"SELECT {', '.join([*key_sql, *(f'SUM({e})' for e in exprs)])} FROM {rows} "
            f"WHERE {where} GROUP BY {positions} ORDER BY {positions}"
        )
    else:
        select = f"SELECT {', '.join([*key_sql, *exprs])} FROM {rows} WHERE {where}"
    names = [n for n, _ in sums]
    updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in names)
    return (
        f"INSERT INTO {table} ({', '.join([*key, *names])}) {select} "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


GRAINS = {"hour": (STEP_HOURS, STEP_DURATIONS), "day": (STEP_DAYS, STEP_DURATION_DAYS)}


def _grains(daily: bool) -> tuple[str, ...]:
    # Without the daily tier: as migrations 0020-0022 had them.
    return ("hour", "day") if daily else ("hour",)


def tables(grains=("hour", "day")) -> tuple[str, ...]:
    return tuple(t for g in grains for t in GRAINS[g])


def upserts(rows: str, vendor: str, grouped: bool, grains=("hour", "day")) -> list[str]:
    where = f"r.kind IN {_KINDS_SQL}"
    statements = []
    for grain in grains:
        sums_table, durations_table = GRAINS[grain]
        key = tuple("day" if c == "hour" else c for c in KEY) if grain == "day" else KEY
        statements += [
            _upsert(sums_table, _key(vendor, grain), key, SUMS, rows, grouped, where),
            _upsert(
                durations_table,
                [*_key(vendor, grain), bucket_sql("r.duration_ms", vendor)],
                (*key, "bucket"),
                [("calls", "sign")],
                rows,
                grouped,
                f"{where} AND r.duration_ms IS NOT NULL",
            ),
        ]
    return statements


def _pg_rows(table: str, sign: int) -> str:
    return (
        f"(SELECT {sign} AS sign, s.*, e.workspace_id FROM {table} s "
        "JOIN executions_execution e ON e.id = s.execution_id) r"
    )


def _changed(old: str, new: str) -> str:
    cols = lambda row: ", ".join(f"{row}.{c}" for c in WATCHED)  # noqa: E731
    return f"({cols(old)}) IS DISTINCT FROM ({cols(new)})"


PG_UPDATED = (
    "(SELECT -1 AS sign, o.*, e.workspace_id FROM old_rows o JOIN new_rows n ON n.id = o.id "
    f"JOIN executions_execution e ON e.id = o.execution_id WHERE {_changed('o', 'n')} "
    "UNION ALL SELECT 1 AS sign, n.*, e.workspace_id FROM old_rows o JOIN new_rows n "
    f"ON n.id = o.id JOIN executions_execution e ON e.id = n.execution_id "
    f"WHERE {_changed('o', 'n')}) r"
)


def _pg_function(name: str, rows: str, daily: bool) -> str:
    body = "".join(
        f"{s};\n" for s in upserts(rows, "postgresql", grouped=True, grains=_grains(daily))
    )
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n"
        f"{body} RETURN NULL; END $$"
    )


def postgres_triggers(daily: bool = True) -> list[str]:
    deletes = " ".join(f"DELETE FROM {t};" for t in tables(_grains(daily)))
    return [
        _pg_function("overview_step_insert", _pg_rows("new_rows", 1), daily),
        _pg_function("overview_step_delete", _pg_rows("old_rows", -1), daily),
        _pg_function("overview_step_update", PG_UPDATED, daily),
        "CREATE FUNCTION overview_step_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"{deletes} RETURN NULL; END $$",
        *PG_TRIGGER_STATEMENTS,
    ]


PG_TRIGGER_STATEMENTS = [
    "CREATE TRIGGER overview_step_insert AFTER INSERT ON executions_step "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION overview_step_insert()",
    "CREATE TRIGGER overview_step_delete AFTER DELETE ON executions_step "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION overview_step_delete()",
    "CREATE TRIGGER overview_step_update AFTER UPDATE ON executions_step "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION overview_step_update()",
    "CREATE TRIGGER overview_step_truncate AFTER TRUNCATE ON executions_step "
    "FOR EACH STATEMENT EXECUTE FUNCTION overview_step_truncate()",
]
POSTGRES_DROP = [
    *(
        f"DROP TRIGGER IF EXISTS overview_step_{op} ON executions_step"
        for op in ("insert", "delete", "update", "truncate")
    ),
    *(
        f"DROP FUNCTION IF EXISTS overview_step_{op}()"
        for op in ("insert", "delete", "update", "truncate")
    ),
]


def _sqlite_body(row: str, sign: str, daily: bool) -> str:
    columns = ", ".join(f"{row}.{c} AS {c}" for c in WATCHED)
    rows = (
        f"(SELECT {sign} AS sign, {columns}, (SELECT workspace_id FROM executions_execution "
        f"WHERE id = {row}.execution_id) AS workspace_id) r"
    )
    return " ".join(f"{s};" for s in upserts(rows, "sqlite", grouped=False, grains=_grains(daily)))


def sqlite_triggers(daily: bool = True) -> list[str]:
    return [
        "CREATE TRIGGER overview_step_insert AFTER INSERT ON executions_step BEGIN "
        f"{_sqlite_body('NEW', '1', daily)} END",
        # Only while the step's execution exists: the ORM deletes steps before their run,
        # but a flush empties tables in any order, and a step orphaned that way has no
        # workspace to subtract from (its rollup rows are being emptied too).
        "CREATE TRIGGER overview_step_delete AFTER DELETE ON executions_step "
        "WHEN EXISTS (SELECT 1 FROM executions_execution WHERE id = OLD.execution_id) BEGIN "
        f"{_sqlite_body('OLD', '-1', daily)} END",
        f"CREATE TRIGGER overview_step_update AFTER UPDATE OF {', '.join(WATCHED)} "
        f"ON executions_step WHEN ({', '.join(f'OLD.{c}' for c in WATCHED)}) IS NOT "
        f"({', '.join(f'NEW.{c}' for c in WATCHED)}) BEGIN "
        f"{_sqlite_body('OLD', '-1', daily)} {_sqlite_body('NEW', '1', daily)} END",
    ]


SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS overview_step_{op}" for op in ("insert", "delete", "update")
]


def install_triggers(schema_editor, daily: bool = True) -> None:
    vendor = schema_editor.connection.vendor
    builders = {"postgresql": postgres_triggers, "sqlite": sqlite_triggers}
    if vendor not in builders:
        raise NotImplementedError(f"No step rollup triggers for {vendor}.")
    for statement in builders[vendor](daily):
        schema_editor.execute(statement)


def uninstall_triggers(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": POSTGRES_DROP, "sqlite": SQLITE_DROP}.get(vendor, []):
        schema_editor.execute(statement)


def install_sqlite_triggers(schema_editor) -> None:
    """For a later migration that rebuilt executions_step on SQLite (which drops its
    triggers); a no-op elsewhere, or before the step rollup tables exist."""
    conn = schema_editor.connection
    if conn.vendor != "sqlite":
        return
    with conn.cursor() as cursor:
        existing = set(conn.introspection.table_names(cursor))
    if STEP_HOURS not in existing:
        return
    for statement in SQLITE_DROP + sqlite_triggers(daily=STEP_DAYS in existing):
        schema_editor.execute(statement)


def rebuild(workspace_id: int | None = None, *, using=None, grains=("hour", "day")) -> None:
    """Recompute the step rollups (of one workspace, or all; of the grains) from the steps."""
    conn = connection if using is None else using
    where = "true" if workspace_id is None else "e.workspace_id = %s"
    params = [] if workspace_id is None else [int(workspace_id)]
    rows = (
        "(SELECT 1 AS sign, s.*, e.workspace_id FROM executions_step s "
        f"JOIN executions_execution e ON e.id = s.execution_id WHERE {where}) r"
    )
    plain = "true" if workspace_id is None else "workspace_id = %s"
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        if conn.vendor == "postgresql":
            cursor.execute("LOCK TABLE executions_step IN SHARE MODE")
        for table in tables(grains):
            cursor.execute(f"DELETE FROM {table} WHERE {plain}", params)
        for statement in upserts(rows, conn.vendor, grouped=True, grains=grains):
            cursor.execute(statement, params)
        if conn.vendor == "postgresql":
            for table in tables(grains):
                cursor.execute(f"ANALYZE {table}")
