"""PostgreSQL indexes that put the table's common equality filters before its sort key.

The sort indexes of 0004 are led by the workspace alone: with a filter, PostgreSQL
walks one of them and throws away every row that does not match. When the filter
is rare along that order (an agent whose runs are cheap, sorted by cost) it read
709,305 rows to find 20. Two kinds of index here fix that:

- status before each measure (a status is the most common filter; "failed, most
  expensive first" is a daily question): the walk meets only matching rows, and a
  deep page (OFFSET 10,000) skips index entries, not heap rows. NULL measures sort
  last both ways, as in 0004, so duration and credits need an index per direction.
- covering indexes led by (agent, status) and by status, over time, that carry every
  sortable measure: when the counters say a filter matches a few thousand runs,
  selectors.py sorts just those, read from the index alone (no heap visit), instead
  of walking a measure's index (see plans.py for the choice and its threshold).

Built CONCURRENTLY, so adding them to a live million-row table does not lock writers
out. SQLite, the embedded default, does not need them at its scale and skips them.
"""

from django.db import migrations

MEASURES = "duration_ms, step_count, total_tokens, cost_usd, credits"
INDEXES = {
    "exec_ws_status_duration_desc": "(workspace_id, status, duration_ms DESC NULLS LAST, id DESC)",
    "exec_ws_status_duration_asc": "(workspace_id, status, duration_ms ASC NULLS LAST, id ASC)",
    "exec_ws_status_credits_desc": "(workspace_id, status, credits DESC NULLS LAST, id DESC)",
    "exec_ws_status_credits_asc": "(workspace_id, status, credits ASC NULLS LAST, id ASC)",
    "exec_ws_status_steps": "(workspace_id, status, step_count DESC, id DESC)",
    "exec_ws_status_tokens": "(workspace_id, status, total_tokens DESC, id DESC)",
    "exec_ws_status_cost": "(workspace_id, status, cost_usd DESC, id DESC)",
    "exec_ws_agent_cover": "(workspace_id, agent_name, status, created_at DESC, id DESC) "
    f"INCLUDE ({MEASURES})",
    "exec_ws_status_cover": "(workspace_id, status, created_at DESC, id DESC) "
    f"INCLUDE ({MEASURES}, agent_name)",
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

    dependencies = [("executions", "0009_stop_and_pause")]

    operations = [migrations.RunPython(forward, backward, atomic=False)]
