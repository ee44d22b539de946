"""PostgreSQL covering partial indexes for the table's budget filter (runs over a soft
limit, runs stopped by a limit), like 0019's for feedback. Few runs are flagged or
stopped: without them the filter's count and page read every run of the workspace
and looked into its JSON; with them, only the flagged or stopped ones, from the index.

The predicates are the SQL Django writes for budget__flagged=True and
budget__has_key="stop", so the planner can match them. Built CONCURRENTLY; SQLite
skips them.
"""

from django.db import migrations

INCLUDE = "duration_ms, step_count, total_tokens, cost_usd, credits, agent_name, status, source"
INDEXES = {
    "exec_ws_budget_flagged": f"(workspace_id, created_at DESC, id DESC) INCLUDE ({INCLUDE}) "
    "WHERE (budget -> 'flagged') = 'true'::jsonb",
    "exec_ws_budget_stopped": f"(workspace_id, created_at DESC, id DESC) INCLUDE ({INCLUDE}) "
    "WHERE budget ? 'stop'",
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

    dependencies = [("executions", "0023_overview_daily_tier")]

    operations = [migrations.RunPython(forward, backward, atomic=False)]
