"""The narrow search table (ExecutionSearch) and the triggers that keep it.

Triggers rather than Python, so that every write path (the ORM, lifecycle's
UPDATEs, COPY, raw SQL, admin) keeps it exact. On PostgreSQL the table is
partitioned on has_error, so that a search for an error reads only the failures.
On SQLite, Django rebuilds a table to alter it and the rebuild drops its triggers:
a migration that alters executions_execution must run TRIGGERS["sqlite"] again
(tests/executions/test_search_table.py fails if it does not).
"""

import django.db.models.deletion
from django.db import migrations, models

# Copied as they are; has_error and the document are made of the error and summary.
COPIED = ["workspace_id", "batch_id", "agent_name", "status", "created_at"]
WATCHED = [*COPIED, "error", "summary"]
COLUMNS = ", ".join(["execution_id", "has_error", *COPIED, "document"])
NEWLINE = {"postgresql": "chr(10)", "sqlite": "char(10)"}


def values(row: str, vendor: str) -> list[str]:
    """The search row of the execution `row`, in COLUMNS order."""
    return [
        f"{row}.id",
        f"{row}.error <> ''",
        *(f"{row}.{c}" for c in COPIED),
        f"upper({row}.error || {NEWLINE[vendor]} || {row}.summary)",
    ]


def watched(row: str) -> str:
    return ", ".join(f"{row}.{c}" for c in WATCHED)


NEW_ROW = values("NEW", "postgresql")
ASSIGN = ", ".join(f"{c} = {v}" for c, v in zip(COLUMNS.split(", ")[1:], NEW_ROW[1:]))

# The key must hold the partition column; the triggers keep one row per execution.
# An UPDATE that changes has_error moves the row to the other partition.
POSTGRES_TABLE = [
    """
    CREATE TABLE executions_executionsearch (
        execution_id uuid NOT NULL,
        has_error boolean NOT NULL,
        workspace_id bigint NOT NULL,
        batch_id uuid NULL,
        agent_name varchar(200) NOT NULL,
        status varchar(20) NOT NULL,
        created_at timestamp with time zone NOT NULL,
        document text NOT NULL,
        PRIMARY KEY (execution_id, has_error)
    ) PARTITION BY LIST (has_error)
    """,
    "CREATE TABLE executions_executionsearch_errors PARTITION OF executions_executionsearch "
    "FOR VALUES IN (true)",
    "CREATE TABLE executions_executionsearch_others PARTITION OF executions_executionsearch "
    "FOR VALUES IN (false)",
    # The model's index (exec_search_created) comes from CreateModel's deferred SQL,
    # which runs at the end of this migration, on this table.
]

TRIGGERS = {
    "postgresql": [
        # Ingestion inserts executions all day: a new one is a plain INSERT, with no
        # look for a row to update first.
        f"""
        CREATE FUNCTION exec_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO executions_executionsearch ({COLUMNS}) VALUES ({", ".join(NEW_ROW)});
            RETURN NULL;
        END $$
        """,
        f"""
        CREATE FUNCTION exec_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE executions_executionsearch SET {ASSIGN} WHERE execution_id = NEW.id;
            IF NOT FOUND THEN
                INSERT INTO executions_executionsearch ({COLUMNS})
                VALUES ({", ".join(NEW_ROW)});
            END IF;
            RETURN NULL;
        END $$
        """,
        """
        CREATE FUNCTION exec_search_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM executions_executionsearch WHERE execution_id = OLD.id;
            RETURN NULL;
        END $$
        """,
        # DELETE, not TRUNCATE: a TRUNCATE naming both tables (Django's flush does)
        # has emptied this one already, and a nested TRUNCATE of it would be refused.
        """
        CREATE FUNCTION exec_search_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM executions_executionsearch;
            RETURN NULL;
        END $$
        """,
        "CREATE TRIGGER exec_search_insert AFTER INSERT ON executions_execution "
        "FOR EACH ROW EXECUTE FUNCTION exec_search_insert()",
        # Every save() rewrites every column: copy only when a watched one changed.
        "CREATE TRIGGER exec_search_update AFTER UPDATE ON executions_execution "
        f"FOR EACH ROW WHEN (({watched('OLD')}) IS DISTINCT FROM ({watched('NEW')})) "
        "EXECUTE FUNCTION exec_search_update()",
        "CREATE TRIGGER exec_search_delete AFTER DELETE ON executions_execution "
        "FOR EACH ROW EXECUTE FUNCTION exec_search_delete()",
        "CREATE TRIGGER exec_search_truncate AFTER TRUNCATE ON executions_execution "
        "FOR EACH STATEMENT EXECUTE FUNCTION exec_search_truncate()",
    ],
    "sqlite": [
        "CREATE TRIGGER exec_search_insert AFTER INSERT ON executions_execution BEGIN "
        f"INSERT OR REPLACE INTO executions_executionsearch ({COLUMNS}) "
        f"VALUES ({', '.join(values('NEW', 'sqlite'))}); END",
        f"CREATE TRIGGER exec_search_update AFTER UPDATE OF {', '.join(WATCHED)} "
        "ON executions_execution BEGIN "
        f"INSERT OR REPLACE INTO executions_executionsearch ({COLUMNS}) "
        f"VALUES ({', '.join(values('NEW', 'sqlite'))}); END",
        "CREATE TRIGGER exec_search_delete AFTER DELETE ON executions_execution BEGIN "
        "DELETE FROM executions_executionsearch WHERE execution_id = OLD.id; END",
    ],
}
DROP_TRIGGERS = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS exec_search_truncate ON executions_execution",
        "DROP TRIGGER IF EXISTS exec_search_delete ON executions_execution",
        "DROP TRIGGER IF EXISTS exec_search_update ON executions_execution",
        "DROP TRIGGER IF EXISTS exec_search_insert ON executions_execution",
        "DROP FUNCTION IF EXISTS exec_search_truncate()",
        "DROP FUNCTION IF EXISTS exec_search_delete()",
        "DROP FUNCTION IF EXISTS exec_search_update()",
        "DROP FUNCTION IF EXISTS exec_search_insert()",
    ],
    "sqlite": [
        "DROP TRIGGER IF EXISTS exec_search_delete",
        "DROP TRIGGER IF EXISTS exec_search_update",
        "DROP TRIGGER IF EXISTS exec_search_insert",
    ],
}


def backfill(vendor: str) -> str:
    return (
        f"INSERT INTO executions_executionsearch ({COLUMNS}) "
        f"SELECT {', '.join(values('executions_execution', vendor))} FROM executions_execution"
    )


# LIKE '%...%' on the document, for PostgreSQL (SQLite has no trigram index and
# needs none at its scale). Built after the backfill: faster than row by row.
TRIGRAM_INDEX = (
    "CREATE INDEX IF NOT EXISTS exec_search_document_trgm ON executions_executionsearch "
    "USING gin (document gin_trgm_ops)"
)


def partition(apps, schema_editor):
    """On PostgreSQL, replace the (still empty) plain table with the partitioned one."""
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("DROP TABLE executions_executionsearch")
    for statement in POSTGRES_TABLE:
        schema_editor.execute(statement)


def install(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor not in TRIGGERS:
        raise NotImplementedError(f"No search triggers for {vendor}.")
    for statement in TRIGGERS[vendor]:
        schema_editor.execute(statement)
    # After the triggers: creating them locks out writers until this migration
    # commits, so no execution falls between the copy and the triggers.
    schema_editor.execute(backfill(vendor))
    if vendor == "postgresql":
        schema_editor.execute(TRIGRAM_INDEX)


def uninstall(apps, schema_editor):
    for statement in DROP_TRIGGERS.get(schema_editor.connection.vendor, []):
        schema_editor.execute(statement)


SEARCH_MODEL = migrations.CreateModel(
    name='ExecutionSearch',
    fields=[
        ('execution', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='executions.execution')),
        ('has_error', models.BooleanField()),
        ('agent_name', models.CharField(max_length=200)),
        ('status', models.CharField(choices=[('pending', 'Pending'), ('queued', 'Queued'), ('running', 'Running'), ('awaiting_approval', 'Awaiting approval'), ('completed', 'Completed'), ('failed', 'Failed'), ('timed_out', 'Timed out'), ('cancelled', 'Cancelled'), ('rejected', 'Rejected')], max_length=20)),
        ('created_at', models.DateTimeField()),
        ('document', models.TextField(blank=True)),
        ('batch', models.ForeignKey(db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='executions.batch')),
        ('workspace', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='agents.workspace')),
    ],
    options={
        'indexes': [models.Index(fields=['workspace', '-created_at', '-execution'], name='exec_search_created')],
    },
)

class Migration(migrations.Migration):

    dependencies = [
        ('agents', '0001_initial'),
        ('executions', '0005_admin_created_index'),
    ]

    operations = [
        SEARCH_MODEL,
        # Django cannot declare a partitioned table; its reverse is CreateModel's DROP.
        migrations.RunPython(partition, migrations.RunPython.noop),
        migrations.RunPython(install, uninstall),
    ]
