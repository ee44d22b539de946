"""PostgreSQL indexes led by (workspace, agent) before each sort measure, as 0010's are
led by status: a measure sort over one agent's runs (or one version's, which belong to
one agent) walks its own index instead of sorting the agent's matches.

Sorting the matches (0010, 0015 and plans.py) is cheap for page 1, a top-N sort that
keeps 20 rows; a deep page must keep every row before it, a full sort: the middle page
of an agent with 39,883 runs sorted by cost took 386 ms on the reference set, and the
walk of an index like these (skipping 19,960 index entries) 18 ms. Status, time,
version and source are carried in the index, so the agent's other common filters are
checked in it too (no visit to the rows): a walk never reads more index entries than
the agent has runs. NULL measures sort last both ways, so duration and credits need an
index per direction, as in 0010.

Two more for deep pages in time order (jump.py): the hourly rollup rows of one
version, source or schedule (the rollup's key leads by hour, so summing one source's
hours read all 157,000 rows of the workspace), and the batched executions by time,
which a grouped page's jump counts past its boundary (it visited 11,000 rows to check
their time).

Built CONCURRENTLY, so adding them to a live table does not lock writers out; SQLite
skips them.
"""

from django.db import migrations

INCLUDE = "INCLUDE (status, created_at, agent_version_id, source)"
INDEXES = {
    "exec_ws_agent_duration_desc": "duration_ms DESC NULLS LAST, id DESC",
    "exec_ws_agent_duration_asc": "duration_ms ASC NULLS LAST, id ASC",
    "exec_ws_agent_credits_desc": "credits DESC NULLS LAST, id DESC",
    "exec_ws_agent_credits_asc": "credits ASC NULLS LAST, id ASC",
    "exec_ws_agent_steps": "step_count DESC, id DESC",
    "exec_ws_agent_tokens": "total_tokens DESC, id DESC",
    "exec_ws_agent_cost": "cost_usd DESC, id DESC",
}


ROLLUP_INCLUDE = "INCLUDE (status, agent_name, runs)"
OTHERS = {
    "runrollup_ws_version_hour": "executions_runrollup "
    f"(workspace_id, agent_version_id, hour) {ROLLUP_INCLUDE}",
    "runrollup_ws_source_hour": "executions_runrollup "
    f"(workspace_id, source, hour) {ROLLUP_INCLUDE}",
    "runrollup_ws_schedule_hour": "executions_runrollup "
    f"(workspace_id, schedule_id, hour) {ROLLUP_INCLUDE}",
    "exec_ws_batched_time": "executions_execution (workspace_id, created_at DESC) "
    "INCLUDE (batch_id, status, agent_name, agent_version_id, source, schedule_id) "
    "WHERE batch_id IS NOT NULL",
}


def statements():
    for name, order in INDEXES.items():
        yield (
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON executions_execution "
            f"(workspace_id, agent_name, {order}) {INCLUDE}"
        )
    for name, definition in OTHERS.items():
        yield f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {definition}"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in statements():
        schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in (*INDEXES, *OTHERS):
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("executions", "0027_alertrule_view_restrict")]

    operations = [migrations.RunPython(forward, backward, atomic=False)]
