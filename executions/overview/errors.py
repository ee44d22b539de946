"""Error groups: an error message with its variable parts (quoted values, ids,
numbers) normalized away, so "504 after 10012 ms" and "504 after 10062 ms" count
as one error.

The same normalization exists twice: as the SQL function runboard_error_group()
(PostgreSQL, created by migration 0012; IMMUTABLE, so an index can hold it) and as
`normalize` below, which Django registers under the same name on every SQLite
connection. The rollup triggers and the table's error_group filter call the SQL
name, so a group's link finds exactly the runs the group counted.
"""

import re

MAX_CHARS = 200
# (pattern, replacement), applied in order. Plain POSIX classes: PostgreSQL's and
# Python's regular expressions read them the same way.
RULES = [
    (r"'[^']*'", "'?'"),
    (r'"[^"]*"', '"?"'),
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<id>"),
    (r"[0-9a-fA-F]{12,}", "<id>"),
    (r"[0-9]+", "N"),
]
_COMPILED = [(re.compile(p), r) for p, r in RULES]


def normalize(message: str | None) -> str | None:
    if message is None:
        return None
    for pattern, replacement in _COMPILED:
        message = pattern.sub(replacement, message)
    return message[:MAX_CHARS]


def _pg_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pg_body() -> str:
    expression = "message"
    for pattern, replacement in RULES:
        expression = (
            f"regexp_replace({expression}, {_pg_literal(pattern)}, {_pg_literal(replacement)}, 'g')"
        )
    return f"left({expression}, {MAX_CHARS})"


POSTGRES_FUNCTION = (
    "CREATE OR REPLACE FUNCTION runboard_error_group(message text) RETURNS text "
    f"LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT {_pg_body()} $$"
)
POSTGRES_DROP = "DROP FUNCTION IF EXISTS runboard_error_group(text)"
# The table's error_group filter: the failures of a workspace by their group.
POSTGRES_INDEX = (
    "CREATE INDEX IF NOT EXISTS exec_ws_error_group ON executions_execution "
    "(workspace_id, runboard_error_group(error), created_at) WHERE error <> ''"
)


def register_sqlite_function(sender, connection, **kwargs) -> None:
    """connection_created: give SQLite the function PostgreSQL has in SQL."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "runboard_error_group", 1, normalize, deterministic=True
        )
