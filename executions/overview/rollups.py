"""The triggers that keep the rollups (models.py) exact, and their rebuild.

Triggers rather than Python, so that no write path can forget them: the ORM,
lifecycle's UPDATEs, bulk_create, load_bench's COPY, raw SQL, Django's deletion
collector (and its SET NULL updates when a version or schedule goes), retention.
Each trigger runs in the writer's transaction, so a rollback undoes its rollup too.

PostgreSQL: statement-level triggers with transition tables, so a COPY of a
million executions updates the rollups with one grouped upsert rather than a
million. An UPDATE moves only the rows whose rolled-up columns changed: it takes
the old row away and adds the new one, which also handles a status change.

SQLite: row-level triggers. Django rebuilds a table to alter it on SQLite and the
rebuild drops its triggers, so a migration that alters executions_execution must
call `install_sqlite_triggers` again (tests/executions/test_search_table.py checks
that every trigger survives the migrations).
"""

from dataclasses import dataclass

from django.db import connection, transaction

from .histogram import bucket_sql
from .models import DAY_KEY, KEY

RUNS = "executions_runrollup"
DURATIONS = "executions_durationrollup"
STATUS_HOURS = "executions_statushour"
AGENT_HOURS = "executions_agenthour"
DURATION_HOURS = "executions_durationhour"
ERROR_GROUPS = "executions_errorgrouphour"
RUNS_DAYS = "executions_runrollupday"
DURATIONS_DAYS = "executions_durationrollupday"
STATUS_DAYS = "executions_statusday"
AGENT_DAYS = "executions_agentday"
DURATION_DAYS = "executions_durationday"
# Each hourly table's daily twin (selectors.py reads the daily one for whole UTC days).
DAILY = {
    RUNS: RUNS_DAYS,
    DURATIONS: DURATIONS_DAYS,
    STATUS_HOURS: STATUS_DAYS,
    AGENT_HOURS: AGENT_DAYS,
    DURATION_HOURS: DURATION_DAYS,
}

# What the rollups read from an execution: an UPDATE touching none of these
# (output, step_count, summary...) leaves them alone.
WATCHED = [
    "workspace_id",
    "created_at",
    "agent_name",
    "version_name",
    "agent_version_id",
    "source",
    "schedule_id",
    "status",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "credits",
    "error",
]

# (rollup column, expression over an execution row `r` with a `sign` of +1 or -1)
SUMS = [
    ("runs", "sign"),
    ("timed_runs", "sign * (CASE WHEN r.duration_ms IS NULL THEN 0 ELSE 1 END)"),
    ("duration_ms", "sign * COALESCE(r.duration_ms, 0)"),
    ("prompt_tokens", "sign * r.prompt_tokens"),
    ("completion_tokens", "sign * r.completion_tokens"),
    ("total_tokens", "sign * r.total_tokens"),
    ("cost_usd", "sign * r.cost_usd"),
    ("credits", "sign * COALESCE(r.credits, 0)"),
    ("credited_runs", "sign * (CASE WHEN r.credits IS NULL THEN 0 ELSE 1 END)"),
]


def _hour(vendor: str) -> str:
    if vendor == "postgresql":
        # UTC whatever the session's time zone: rollup hours are UTC hours.
        return "date_trunc('hour', r.created_at, 'UTC')"
    # Django stores SQLite datetimes as UTC text, 'YYYY-MM-DD HH:MM:SS[.ffffff]'.
    return "strftime('%Y-%m-%d %H:00:00', r.created_at)"


def _day(vendor: str) -> str:
    if vendor == "postgresql":
        return "date_trunc('day', r.created_at, 'UTC')"
    return "strftime('%Y-%m-%d 00:00:00', r.created_at)"


def _key_value(column: str, vendor: str) -> str:
    return {
        "workspace_id": "r.workspace_id",
        "hour": _hour(vendor),
        "day": _day(vendor),
        "agent_name": "r.agent_name",
        "version_name": "r.version_name",
        "agent_version_id": "COALESCE(r.agent_version_id, 0)",
        "source": "r.source",
        "schedule_id": "COALESCE(r.schedule_id, 0)",
        "status": "r.status",
        "bucket": bucket_sql("r.duration_ms", vendor),
        # errors.py: a SQL function on PostgreSQL, a registered Python one on SQLite.
        "error_group": "runboard_error_group(r.error)",
    }[column]


@dataclass(frozen=True)
class Target:
    """One rollup table: its key (columns of the execution, or its duration bucket)
    and its sums (names in SUMS)."""

    table: str
    key: tuple[str, ...]
    sums: tuple[str, ...]
    where: str | None = None


SUM_EXPRESSIONS = dict(SUMS)
ALL_SUMS = tuple(name for name, _ in SUMS)
# The full rollups serve every filter; the narrow ones (no version, source or
# schedule) serve the unfiltered views with a tenth of the rows to read.
TARGETS = {
    "runs": Target(RUNS, (*KEY, "status"), ALL_SUMS),
    "durations": Target(DURATIONS, (*KEY, "bucket"), ("runs",), "r.duration_ms IS NOT NULL"),
    "status_hours": Target(STATUS_HOURS, ("workspace_id", "hour", "status"), ALL_SUMS),
    "agent_hours": Target(
        AGENT_HOURS, ("workspace_id", "hour", "agent_name"), ("runs", "total_tokens", "cost_usd")
    ),
    "duration_hours": Target(
        DURATION_HOURS, ("workspace_id", "hour", "bucket"), ("runs",), "r.duration_ms IS NOT NULL"
    ),
    "error_groups": Target(
        ERROR_GROUPS,
        ("workspace_id", "hour", "agent_name", "error_group"),
        ("runs",),
        "r.error <> ''",
    ),
    # The daily tier (0023): the same keys with the UTC day instead of the hour.
    "runs_days": Target(RUNS_DAYS, (*DAY_KEY, "status"), ALL_SUMS),
    "durations_days": Target(
        DURATIONS_DAYS, (*DAY_KEY, "bucket"), ("runs",), "r.duration_ms IS NOT NULL"
    ),
    "status_days": Target(STATUS_DAYS, ("workspace_id", "day", "status"), ALL_SUMS),
    "agent_days": Target(
        AGENT_DAYS, ("workspace_id", "day", "agent_name"), ("runs", "total_tokens", "cost_usd")
    ),
    "duration_days": Target(
        DURATION_DAYS, ("workspace_id", "day", "bucket"), ("runs",), "r.duration_ms IS NOT NULL"
    ),
}
# What migration 0007 installed, before the narrow tables existed (0008).
FIRST_TARGETS = ("runs", "durations")
# What migrations 0013 to 0022 installed, before the daily tier (0023).
HOURLY_TARGETS = (
    "runs",
    "durations",
    "status_hours",
    "agent_hours",
    "duration_hours",
    "error_groups",
)
DAILY_TARGETS = ("runs_days", "durations_days", "status_days", "agent_days", "duration_days")


def upsert(target: Target, rows: str, vendor: str, grouped: bool) -> str:
    """Add the executions of `rows` (each with a `sign` column, aliased r) to a target.

    `grouped` sums many rows per key (PostgreSQL statements, rebuilds); a row-level
    SQLite trigger inserts its one row as it is.
    """
    key = [_key_value(c, vendor) for c in target.key]
    sums = [SUM_EXPRESSIONS[name] for name in target.sums]
    select = _select(key, sums, rows, grouped, where=target.where)
    updates = ", ".join(f"{c} = {target.table}.{c} + excluded.{c}" for c in target.sums)
    return (
        f"INSERT INTO {target.table} ({', '.join([*target.key, *target.sums])}) {select} "
        f"ON CONFLICT ({', '.join(target.key)}) DO UPDATE SET {updates}"
    )


def _select(key: list[str], sums: list[str], rows: str, grouped: bool, where: str | None) -> str:
    # "WHERE" is always present: SQLite needs it to tell ON CONFLICT from a join.
    condition = where or "true"
    if not grouped:
        return f"SELECT {', '.join([*key, *sums])} FROM {rows} WHERE {condition}"
    positions = ", ".join(str(i + 1) for i in range(len(key)))
    return (
        f"SELECT {', '.join([*key, *(f'SUM({s})' for s in sums)])} FROM {rows} "
        f"WHERE {condition} GROUP BY {positions} ORDER BY {positions}"
    )


def _changed(old: str, new: str) -> str:
    cols = lambda row: ", ".join(f"{row}.{c}" for c in WATCHED)  # noqa: E731
    return f"({cols(old)}) IS DISTINCT FROM ({cols(new)})"


def _postgres_function(name: str, rows: str, targets) -> str:
    body = "".join(f"{upsert(t, rows, 'postgresql', grouped=True)};\n" for t in targets)
    return f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {body}
            RETURN NULL;
        END $$
    """


# Ordered upserts (GROUP BY ... ORDER BY the key) take row locks in one order,
# so two writers touching the same hours wait for each other instead of deadlocking.
PG_UPDATED_ROWS = (
    "(SELECT -1 AS sign, o.* FROM old_rows o JOIN new_rows n ON n.id = o.id "
    f"WHERE {_changed('o', 'n')} "
    "UNION ALL SELECT 1 AS sign, n.* FROM old_rows o JOIN new_rows n ON n.id = o.id "
    f"WHERE {_changed('o', 'n')}) r"
)


def postgres_triggers(targets) -> list[str]:
    deletes = "".join(f"DELETE FROM {t.table};\n" for t in targets)
    return [
        _postgres_function(
            "overview_rollup_insert", "(SELECT 1 AS sign, * FROM new_rows) r", targets
        ),
        _postgres_function(
            "overview_rollup_delete", "(SELECT -1 AS sign, * FROM old_rows) r", targets
        ),
        _postgres_function("overview_rollup_update", PG_UPDATED_ROWS, targets),
        # DELETE, not TRUNCATE: Django's flush truncates these tables in the same statement.
        f"""
        CREATE FUNCTION overview_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            {deletes}
            RETURN NULL;
        END $$
        """,
        "CREATE TRIGGER overview_rollup_insert AFTER INSERT ON executions_execution "
        "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION overview_rollup_insert()",
        "CREATE TRIGGER overview_rollup_delete AFTER DELETE ON executions_execution "
        "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION overview_rollup_delete()",
        "CREATE TRIGGER overview_rollup_update AFTER UPDATE ON executions_execution "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
        "EXECUTE FUNCTION overview_rollup_update()",
        "CREATE TRIGGER overview_rollup_truncate AFTER TRUNCATE ON executions_execution "
        "FOR EACH STATEMENT EXECUTE FUNCTION overview_rollup_truncate()",
    ]


POSTGRES_DROP = [
    *(
        f"DROP TRIGGER IF EXISTS overview_rollup_{op} ON executions_execution"
        for op in ("insert", "delete", "update", "truncate")
    ),
    *(
        f"DROP FUNCTION IF EXISTS overview_rollup_{op}()"
        for op in ("insert", "delete", "update", "truncate")
    ),
]


def _sqlite_body(row: str, sign: str, targets) -> str:
    rows = f"(SELECT {sign} AS sign, {', '.join(f'{row}.{c} AS {c}' for c in WATCHED)}) r"
    return " ".join(f"{upsert(t, rows, 'sqlite', grouped=False)};" for t in targets)


def sqlite_triggers(targets) -> list[str]:
    return [
        "CREATE TRIGGER overview_rollup_insert AFTER INSERT ON executions_execution BEGIN "
        f"{_sqlite_body('NEW', '1', targets)} END",
        "CREATE TRIGGER overview_rollup_delete AFTER DELETE ON executions_execution BEGIN "
        f"{_sqlite_body('OLD', '-1', targets)} END",
        f"CREATE TRIGGER overview_rollup_update AFTER UPDATE OF {', '.join(WATCHED)} "
        "ON executions_execution "
        f"WHEN ({', '.join(f'OLD.{c}' for c in WATCHED)}) IS NOT "
        f"({', '.join(f'NEW.{c}' for c in WATCHED)}) BEGIN "
        f"{_sqlite_body('OLD', '-1', targets)} {_sqlite_body('NEW', '1', targets)} END",
    ]


SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS overview_rollup_{op}" for op in ("insert", "delete", "update")
]

TRIGGER_NAMES = {"overview_rollup_insert", "overview_rollup_update", "overview_rollup_delete"}


def _targets(names) -> list[Target]:
    return [TARGETS[name] for name in (names or TARGETS)]


def install_triggers(schema_editor, names=None) -> None:
    """Create the triggers that keep the rollups `names` (default: all of them)."""
    vendor = schema_editor.connection.vendor
    builders = {"postgresql": postgres_triggers, "sqlite": sqlite_triggers}
    if vendor not in builders:
        raise NotImplementedError(f"No rollup triggers for {vendor}.")
    for statement in builders[vendor](_targets(names)):
        schema_editor.execute(statement)


def uninstall_triggers(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for statement in {"postgresql": POSTGRES_DROP, "sqlite": SQLITE_DROP}.get(vendor, []):
        schema_editor.execute(statement)


def install_sqlite_triggers(schema_editor) -> None:
    """For a later migration that rebuilt executions_execution on SQLite (which drops
    its triggers): call it from a RunPython after the AlterField. No-op elsewhere."""
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    # Only the rollups whose tables exist at this point of the migration history.
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
    targets = [t for t in TARGETS.values() if t.table in tables]
    for statement in SQLITE_DROP + sqlite_triggers(targets):
        schema_editor.execute(statement)
    # The steps' rollups too: a migration that rebuilt executions_step needs them back.
    from .step_rollups import install_sqlite_triggers as install_step_triggers

    install_step_triggers(schema_editor)


def rebuild(workspace_id: int | None = None, *, using=None, names=None) -> None:
    """Recompute the rollups (of one workspace, or all) from the executions table.

    On PostgreSQL the executions are locked against writers (readers go on) for the
    length of the recount, so no write falls between the delete and the refill.
    """
    conn = connection if using is None else using
    vendor = conn.vendor
    where = "true" if workspace_id is None else "workspace_id = %s"
    params = [] if workspace_id is None else [int(workspace_id)]
    rows = f"(SELECT 1 AS sign, * FROM executions_execution WHERE {where}) r"
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("LOCK TABLE executions_execution IN SHARE MODE")
        for target in _targets(names):
            cursor.execute(f"DELETE FROM {target.table} WHERE {where}", params)
            cursor.execute(upsert(target, rows, vendor, grouped=True), params)
        if vendor == "postgresql":
            # Fresh statistics: the planner must know these tables are big now.
            for target in _targets(names):
                cursor.execute(f"ANALYZE {target.table}")
