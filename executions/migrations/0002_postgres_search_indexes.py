"""PostgreSQL-only indexes for the executions table's metadata and text filters.

SQLite has no GIN: there the same filters run unindexed, which is fine at the
embedded default's scale.
"""

from django.db import migrations

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS exec_metadata_gin ON executions_execution "
    "USING gin (metadata jsonb_path_ops)",
    "CREATE INDEX IF NOT EXISTS exec_error_trgm ON executions_execution "
    "USING gin (upper(error) gin_trgm_ops)",
    "CREATE INDEX IF NOT EXISTS exec_summary_trgm ON executions_execution "
    "USING gin (upper(summary) gin_trgm_ops)",
]
BACKWARD = [
    "DROP INDEX IF EXISTS exec_summary_trgm",
    "DROP INDEX IF EXISTS exec_error_trgm",
    "DROP INDEX IF EXISTS exec_metadata_gin",
]


def run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for sql in statements:
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("executions", "0001_initial")]

    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD))]
