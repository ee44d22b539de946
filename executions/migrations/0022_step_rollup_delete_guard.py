"""SQLite: the step-delete rollup trigger skips steps whose execution is already gone
(a flush empties tables in any order); PostgreSQL's statement-level triggers join the
executions and are unchanged."""

from django.db import migrations

from executions.overview import step_rollups


def reinstall(apps, schema_editor):
    step_rollups.install_sqlite_triggers(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0021_notify_triggers"),
    ]

    operations = [
        migrations.RunPython(reinstall, migrations.RunPython.noop),
    ]
