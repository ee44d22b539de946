"""PostgreSQL covering indexes led by version and by source, like 0010's by agent and
by status: a measure sort over one version's or one source's runs sorts its matches
from the index alone (plans.py). Measured before them on the reference set: one
version sorted by cost walked the cost index for 2.3 s, or visited its 39,874 rows
for 0.4 s; runs from schedules sorted by cost, 3.3 s.

Built CONCURRENTLY, so adding them to a live table does not lock writers out;
SQLite skips them.
"""

from django.db import migrations

MEASURES = "duration_ms, step_count, total_tokens, cost_usd, credits, agent_name"
INDEXES = {
    "exec_ws_version_cover": "(workspace_id, agent_version_id, status, created_at DESC, id DESC) "
    f"INCLUDE ({MEASURES})",
    "exec_ws_source_cover": "(workspace_id, source, status, created_at DESC, id DESC) "
    f"INCLUDE ({MEASURES})",
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

    dependencies = [("executions", "0014_step_kinds_pending_span_events")]

    operations = [migrations.RunPython(forward, backward, atomic=False)]
