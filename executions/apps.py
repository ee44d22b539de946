from django.apps import AppConfig
from django.db.backends.signals import connection_created


class ExecutionsConfig(AppConfig):
    name = "executions"

    def ready(self):
        # The overview's error groups: SQLite has no regexp_replace, so the SQL
        # function the triggers call is registered from Python on each connection.
        from executions.overview.errors import register_sqlite_function

        connection_created.connect(register_sqlite_function, dispatch_uid="runboard_error_group")
