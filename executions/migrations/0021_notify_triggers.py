"""PostgreSQL: NOTIFY 'runboard' when an execution or a step is written, from triggers,
so every write path (API, OTLP, control plane, admin) tells the web processes'
listeners (executions/notify.py) in its own transaction: delivered at commit, never
for a rolled-back write. Payload: "<workspace id>:<execution id>:<what>"; a step's
has no workspace id. SQLite has no NOTIFY: its streams keep polling."""

from django.db import migrations

FORWARD = [
    """
    CREATE OR REPLACE FUNCTION runboard_notify_execution() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('runboard', NEW.workspace_id::text || ':' || NEW.id::text || ':'
            || CASE WHEN TG_OP = 'INSERT' THEN 'created' ELSE 'changed' END);
        RETURN NULL;
    END $$
    """,
    """
    CREATE OR REPLACE FUNCTION runboard_notify_step() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        -- Identical payloads in one transaction are delivered once: a batch of 100
        -- steps tells each listener once.
        PERFORM pg_notify('runboard', ':' || NEW.execution_id::text || ':step');
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER runboard_notify_execution AFTER INSERT OR UPDATE ON executions_execution "
    "FOR EACH ROW EXECUTE FUNCTION runboard_notify_execution()",
    "CREATE TRIGGER runboard_notify_step AFTER INSERT OR UPDATE ON executions_step "
    "FOR EACH ROW EXECUTE FUNCTION runboard_notify_step()",
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS runboard_notify_execution ON executions_execution",
    "DROP TRIGGER IF EXISTS runboard_notify_step ON executions_step",
    "DROP FUNCTION IF EXISTS runboard_notify_execution()",
    "DROP FUNCTION IF EXISTS runboard_notify_step()",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in FORWARD:
            schema_editor.execute(sql)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for sql in BACKWARD:
            schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("executions", "0020_overview_step_rollups")]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
