"""PostgreSQL covering partial indexes for the feedback filters, like 0010 and 0015: a
measure sort over the runs with feedback (about 50,000 of a million) sorts them from
the index alone (plans.py), where it walked a measure's index with a filter (0.3 to
0.8 s on a busy machine for "with feedback, by duration", deep pages worst). They
carry status, agent and source too, so those filters combine.

Built CONCURRENTLY; SQLite skips them.
"""

from django.db import migrations

INCLUDE = "duration_ms, step_count, total_tokens, cost_usd, credits, agent_name, status, source"
INDEXES = {
    "exec_ws_feedback_cover": f"(workspace_id, created_at DESC, id DESC) INCLUDE ({INCLUDE}) "
    "WHERE (correction_count > 0 OR note_count > 0)",
    "exec_ws_corrected_cover": f"(workspace_id, created_at DESC, id DESC) INCLUDE ({INCLUDE}) "
    "WHERE correction_count > 0",
}


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, columns in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON executions_execution {columns}"
        )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("executions", "0018_alerts")]

    operations = [migrations.RunPython(forward, backward, atomic=False)]
