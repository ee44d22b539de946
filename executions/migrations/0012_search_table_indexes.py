"""PostgreSQL indexes on the search table's partitions: by status over time, and its
batched rows.

- (workspace, status, created_at): "order" + failed walked the no-error partition's
  trigram matches of a common word (370,000 rows, 250 ms) to find the failed runs
  it holds, which are none. By status, that partition answers at once.
- its batched rows (partial): which batches hold matches, for a page whose total
  comes late, reads these 11,000 narrow rows instead of every match
  (selectors._late_batch_matches).

Built CONCURRENTLY on each partition (PostgreSQL cannot build an index on a
partitioned table concurrently); the partitions are fixed (0006), so no index on
the parent is needed. SQLite's search table is a plain table at its small scale and
skips them.
"""

from django.db import migrations

COLUMNS = {
    "exec_search_status": "(workspace_id, status, created_at DESC, execution_id DESC)",
    "exec_search_batched": "(workspace_id, batch_id) INCLUDE (status, agent_name, created_at) "
    "WHERE batch_id IS NOT NULL",
}
PARTITIONS = {
    "errors": "executions_executionsearch_errors",
    "others": "executions_executionsearch_others",
}


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, columns in COLUMNS.items():
        for suffix, table in PARTITIONS.items():
            schema_editor.execute(
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name}_{suffix} ON {table} {columns}"
            )


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in COLUMNS:
        for suffix in PARTITIONS:
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}_{suffix}")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("executions", "0011_overview_narrow_rollups")]

    operations = [migrations.RunPython(forward, backward, atomic=False)]
