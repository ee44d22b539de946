"""PostgreSQL indexes for the executions table's sorts, feedback filters and batch groups.

Every sort of the table ends in id so that pages are a total order, and a measure
that may be NULL (duration, credits: not yet calculated) sorts last in both
directions. Each index below serves one of those orders and, read backwards, its
mirror image (which the table reads to reach the last pages cheaply). The
indexes Execution.Meta declares lack the id or the NULLS LAST, so PostgreSQL
would sort a whole workspace for them.

Built CONCURRENTLY so that adding them to a live million-row table does not lock
writers out. SQLite, the embedded default, does not take NULLS LAST in an index
and does not need these at its scale.
"""

from django.db import migrations

INDEXES = {
    "exec_ws_duration_desc": "(workspace_id, duration_ms DESC NULLS LAST, id DESC)",
    "exec_ws_duration_asc": "(workspace_id, duration_ms ASC NULLS LAST, id ASC)",
    "exec_ws_credits_desc": "(workspace_id, credits DESC NULLS LAST, id DESC)",
    "exec_ws_credits_asc": "(workspace_id, credits ASC NULLS LAST, id ASC)",
    "exec_ws_steps_id": "(workspace_id, step_count DESC, id DESC)",
    "exec_ws_tokens_id": "(workspace_id, total_tokens DESC, id DESC)",
    "exec_ws_cost_id": "(workspace_id, cost_usd DESC, id DESC)",
    # Feedback is rare: these stay small and list it newest first.
    "exec_ws_feedback": "(workspace_id, created_at DESC, id DESC) "
    "WHERE (correction_count > 0 OR note_count > 0)",
    "exec_ws_corrected": "(workspace_id, created_at DESC, id DESC) WHERE correction_count > 0",
    # Batch groups: which batches hold matching executions, from the index alone.
    "exec_ws_batched": "(workspace_id, batch_id) INCLUDE (status, agent_name) "
    "WHERE batch_id IS NOT NULL",
}
BATCH_INDEX = ("batch_ws_created", "executions_batch", "(workspace_id, created_at DESC, id DESC)")


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, columns in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON executions_execution {columns}"
        )
    name, table, columns = BATCH_INDEX
    schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} {columns}")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in [*INDEXES, BATCH_INDEX[0]]:
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("executions", "0003_feedback_approval_counters_views_deliveries")]

    operations = [migrations.RunPython(forward, backward, atomic=False)]
