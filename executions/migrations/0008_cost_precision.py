"""Costs to 12 decimal places: per-token prices are fractions of a millionth of a
dollar ($0.15 per million tokens is $0.00000015 a token), and 6 places rounded a
two-call run's $0.00004095 to $0.000041.

On SQLite, altering executions_execution rebuilds it and drops its triggers (the
search table's, 0006, and the overview rollups', 0007): they are installed again
(no backfill needed, no row changed). The rollups keep the same scale, so their
sums stay exact.
"""

import importlib

from django.db import migrations, models

from executions.overview import rollups

search = importlib.import_module("executions.migrations.0006_execution_search")


def reinstall_sqlite_triggers(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for statement in search.DROP_TRIGGERS["sqlite"] + search.TRIGGERS["sqlite"]:
        schema_editor.execute(statement)
    rollups.install_sqlite_triggers(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("executions", "0007_overview_rollups"),
    ]

    operations = [
        migrations.AlterField(
            model_name="execution",
            name="cost_usd",
            field=models.DecimalField(decimal_places=12, default=0, max_digits=20),
        ),
        migrations.AlterField(
            model_name="step",
            name="cost_usd",
            field=models.DecimalField(decimal_places=12, default=0, max_digits=20),
        ),
        migrations.AlterField(
            model_name="runrollup",
            name="cost_usd",
            field=models.DecimalField(decimal_places=12, default=0, max_digits=30),
        ),
        migrations.RunPython(reinstall_sqlite_triggers, migrations.RunPython.noop),
    ]
