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
# Per run dimensions too (0024): the execution's agent, version, source and schedule,
# so the lists honour the page's filters; read only when a filter is set.
STEP_RUN_HOURS = "executions_steprunhour"
STEP_RUN_DURATIONS = "executions_steprundurationhour"
STEP_RUN_DAYS = "executions_steprunday"
STEP_RUN_DURATION_DAYS = "executions_steprundurationday"
DAILY = {
    STEP_HOURS: STEP_DAYS,
    STEP_DURATIONS: STEP_DURATION_DAYS,
    STEP_RUN_HOURS: STEP_RUN_DAYS,
    STEP_RUN_DURATIONS: STEP_RUN_DURATION_DAYS,
}
RUN_KEY = ("agent_name", "agent_version_id", "source", "schedule_id")
# The execution's columns, as the step rows `r` carry them (joined under these names).
RUN_VALUES = (
    "r.run_agent_name",
    "COALESCE(r.run_version_id, 0)",
    "r.run_source",
    "COALESCE(r.run_schedule_id, 0)",
)
RUN_COLUMNS = (
    "{e}.workspace_id AS workspace_id, {e}.agent_name AS run_agent_name, "
    "{e}.agent_version_id AS run_version_id, {e}.source AS run_source, "
    "{e}.schedule_id AS run_schedule_id"
)
# What moves a run's steps between the per-run rollups when it changes.
RUN_WATCHED = ("agent_name", "agent_version_id", "source", "schedule_id")
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


GRAINS = {
    "hour": (STEP_HOURS, STEP_DURATIONS),
    "day": (STEP_DAYS, STEP_DURATION_DAYS),
    "run_hour": (STEP_RUN_HOURS, STEP_RUN_DURATIONS),
    "run_day": (STEP_RUN_DAYS, STEP_RUN_DURATION_DAYS),
}
ALL_GRAINS = tuple(GRAINS)
RUN_GRAINS = ("run_hour", "run_day")


def tables(grains=ALL_GRAINS) -> tuple[str, ...]:
    return tuple(t for g in grains for t in GRAINS[g])


def upserts(rows: str, vendor: str, grouped: bool, grains=ALL_GRAINS) -> list[str]:
    where = f"r.kind IN {_KINDS_SQL}"
    statements = []
    for grain in grains:
        sums_table, durations_table = GRAINS[grain]
        time = grain.removeprefix("run_")
        key = tuple("day" if c == "hour" else c for c in KEY) if time == "day" else KEY
        key_sql = _key(vendor, time)
        if grain.startswith("run_"):
            # (workspace, time, agent, version, source, schedule, kind, name, model)
            key = (*key[:2], *RUN_KEY, *key[2:])
            key_sql = [*key_sql[:2], *RUN_VALUES, *key_sql[2:]]
        statements += [
            _upsert(sums_table, key_sql, key, SUMS, rows, grouped, where),
            _upsert(
                durations_table,
                [*key_sql, bucket_sql("r.duration_ms", vendor)],
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
        f"(SELECT {sign} AS sign, s.*, {RUN_COLUMNS.format(e='e')} FROM {table} s "
        "JOIN executions_execution e ON e.id = s.execution_id) r"
    )


def _changed(old: str, new: str) -> str:
    cols = lambda row: ", ".join(f"{row}.{c}" for c in WATCHED)  # noqa: E731
    return f"({cols(old)}) IS DISTINCT FROM ({cols(new)})"


PG_UPDATED = (
    f"(SELECT -1 AS sign, o.*, {RUN_COLUMNS.format(e='e')} FROM old_rows o "
    "JOIN new_rows n ON n.id = o.id "
    f"JOIN executions_execution e ON e.id = o.execution_id WHERE {_changed('o', 'n')} "
    f"UNION ALL SELECT 1 AS sign, n.*, {RUN_COLUMNS.format(e='e')} FROM old_rows o "
    "JOIN new_rows n ON n.id = o.id JOIN executions_execution e ON e.id = n.execution_id "
    f"WHERE {_changed('o', 'n')}) r"
)


def _run_changed(old: str, new: str) -> str:
    cols = lambda row: ", ".join(f"{row}.{c}" for c in RUN_WATCHED)  # noqa: E731
    return f"({cols(old)}) IS DISTINCT FROM ({cols(new)})"


# An execution whose agent, version, source or schedule changed (a deleted version or
# schedule sets NULL): its steps leave the per-run rollups under the old values and
# come back under the new ones. One join per UPDATE statement on the executions.
PG_RUN_MOVED = (
    f"(SELECT -1 AS sign, s.*, {RUN_COLUMNS.format(e='o')} FROM old_rows o "
    "JOIN new_rows n ON n.id = o.id JOIN executions_step s ON s.execution_id = o.id "
    f"WHERE {_run_changed('o', 'n')} "
    f"UNION ALL SELECT 1 AS sign, s.*, {RUN_COLUMNS.format(e='n')} FROM old_rows o "
    "JOIN new_rows n ON n.id = o.id JOIN executions_step s ON s.execution_id = n.id "
    f"WHERE {_run_changed('o', 'n')}) r"
)


def _pg_function(name: str, rows: str, grains) -> str:
    body = "".join(f"{s};\n" for s in upserts(rows, "postgresql", grouped=True, grains=grains))
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n"
        f"{body} RETURN NULL; END $$"
    )


def postgres_triggers(grains=ALL_GRAINS) -> list[str]:
    deletes = " ".join(f"DELETE FROM {t};" for t in tables(grains))
    statements = [
        _pg_function("overview_step_insert", _pg_rows("new_rows", 1), grains),
        _pg_function("overview_step_delete", _pg_rows("old_rows", -1), grains),
        _pg_function("overview_step_update", PG_UPDATED, grains),
        "CREATE FUNCTION overview_step_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"{deletes} RETURN NULL; END $$",
        *PG_TRIGGER_STATEMENTS,
    ]
    run_grains = [g for g in grains if g in RUN_GRAINS]
    if run_grains:
        statements += [
            _pg_function("overview_steprun_move", PG_RUN_MOVED, run_grains),
            "CREATE TRIGGER overview_steprun_move AFTER UPDATE ON executions_execution "
            "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
            "EXECUTE FUNCTION overview_steprun_move()",
        ]
    return statements


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
    "DROP TRIGGER IF EXISTS overview_steprun_move ON executions_execution",
    "DROP FUNCTION IF EXISTS overview_steprun_move()",
    *(
        f"DROP TRIGGER IF EXISTS overview_step_{op} ON executions_step"
        for op in ("insert", "delete", "update", "truncate")
    ),
    *(
        f"DROP FUNCTION IF EXISTS overview_step_{op}()"
        for op in ("insert", "delete", "update", "truncate")
    ),
]


def _sqlite_body(row: str, sign: str, grains) -> str:
    columns = ", ".join(f"{row}.{c} AS {c}" for c in WATCHED)
    run = ", ".join(
        f"(SELECT {column} FROM executions_execution WHERE id = {row}.execution_id) AS {alias}"
        for column, alias in (
            ("workspace_id", "workspace_id"),
            ("agent_name", "run_agent_name"),
            ("agent_version_id", "run_version_id"),
            ("source", "run_source"),
            ("schedule_id", "run_schedule_id"),
        )
    )
    rows = f"(SELECT {sign} AS sign, {columns}, {run}) r"
    return " ".join(f"{s};" for s in upserts(rows, "sqlite", grouped=False, grains=grains))


def _sqlite_moved(row: str, sign: str, grains) -> str:
    rows = (
        f"(SELECT {sign} AS sign, s.*, {RUN_COLUMNS.format(e=row)} FROM executions_step s "
        f"WHERE s.execution_id = {row}.id) r"
    )
    return " ".join(f"{s};" for s in upserts(rows, "sqlite", grouped=True, grains=grains))


def sqlite_triggers(grains=ALL_GRAINS) -> list[str]:
    statements = [
        "CREATE TRIGGER overview_step_insert AFTER INSERT ON executions_step BEGIN "
        f"{_sqlite_body('NEW', '1', grains)} END",
        # Only while the step's execution exists: the ORM deletes steps before their run,
        # but a flush empties tables in any order, and a step orphaned that way has no
        # workspace to subtract from (its rollup rows are being emptied too).
        "CREATE TRIGGER overview_step_delete AFTER DELETE ON executions_step "
        "WHEN EXISTS (SELECT 1 FROM executions_execution WHERE id = OLD.execution_id) BEGIN "
        f"{_sqlite_body('OLD', '-1', grains)} END",
        f"CREATE TRIGGER overview_step_update AFTER UPDATE OF {', '.join(WATCHED)} "
        f"ON executions_step WHEN ({', '.join(f'OLD.{c}' for c in WATCHED)}) IS NOT "
        f"({', '.join(f'NEW.{c}' for c in WATCHED)}) BEGIN "
        f"{_sqlite_body('OLD', '-1', grains)} {_sqlite_body('NEW', '1', grains)} END",
    ]
    run_grains = [g for g in grains if g in RUN_GRAINS]
    if run_grains:
        statements.append(
            f"CREATE TRIGGER overview_steprun_move AFTER UPDATE OF {', '.join(RUN_WATCHED)} "
            f"ON executions_execution WHEN ({', '.join(f'OLD.{c}' for c in RUN_WATCHED)}) "
            f"IS NOT ({', '.join(f'NEW.{c}' for c in RUN_WATCHED)}) BEGIN "
            f"{_sqlite_moved('OLD', '-1', run_grains)} {_sqlite_moved('NEW', '1', run_grains)} "
            "END"
        )
    return statements


SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS overview_steprun_move",
    *(f"DROP TRIGGER IF EXISTS overview_step_{op}" for op in ("insert", "delete", "update")),
]


def install_triggers(schema_editor, grains=ALL_GRAINS) -> None:
    vendor = schema_editor.connection.vendor
    builders = {"postgresql": postgres_triggers, "sqlite": sqlite_triggers}
    if vendor not in builders:
        raise NotImplementedError(f"No step rollup triggers for {vendor}.")
    for statement in builders[vendor](grains):
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
    grains = [g for g in ALL_GRAINS if GRAINS[g][0] in existing]
    for statement in SQLITE_DROP + sqlite_triggers(grains):
        schema_editor.execute(statement)


def rebuild(workspace_id: int | None = None, *, using=None, grains=ALL_GRAINS) -> None:
    """Recompute the step rollups (of one workspace, or all; of the grains) from the steps."""
    conn = connection if using is None else using
    where = "true" if workspace_id is None else "e.workspace_id = %s"
    params = [] if workspace_id is None else [int(workspace_id)]
    rows = (
        f"(SELECT 1 AS sign, s.*, {RUN_COLUMNS.format(e='e')} FROM executions_step s "
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
