"""Load the reference benchmark data set into PostgreSQL with COPY.

1,000,000 executions with 10 steps each over 90 days and 20 agents, in a few minutes:
rows are generated from precomputed pieces (bench_rows.py) and streamed with COPY
(bench_copy.py); secondary indexes and foreign keys are dropped for the load and rebuilt
after it (sorting once is far cheaper than updating 40 indexes row by row); and it all
happens in one transaction, so a failed load leaves the database as it was.
"""

import os
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from agents.models import Agent, AgentVersion, Membership, ModelPrice, Role, Schedule, Workspace
from executions import counters
from executions.models import Batch, Execution, ExecutionSearch, Step
from feedback.models import ExecutionNote, FieldCorrection

from .bench_copy import (
    CORRECTION_COLUMNS,
    EXECUTION_COLUMNS,
    NOTE_COLUMNS,
    STEP_COLUMNS,
    Generator,
    LoadReport,
    Setup,
    fill_defaults,
)
from .bench_rows import AGENTS, DAYS
from .catalog import MODEL_PRICES

BATCHES = 40
SCHEDULED_AGENTS = ["daily-sales-report", "email-triage", "price-monitor"]
LOADED = [
    (Execution, EXECUTION_COLUMNS),
    (Step, STEP_COLUMNS),
    (FieldCorrection, CORRECTION_COLUMNS),
    (ExecutionNote, NOTE_COLUMNS),
]


class NeedsPostgres(Exception):
    pass


class AlreadyLoaded(Exception):
    pass


def _setup(slug: str, now: datetime, rng: random.Random) -> Setup:
    workspace, _ = Workspace.objects.get_or_create(
        slug=slug, defaults={"name": f"Benchmark workspace ({slug})"}
    )
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username="bench", defaults={"email": "bench@bench.runboard.example"}
    )
    if created:
        user.set_password("bench")
        user.save(update_fields=["password"])
    Membership.objects.get_or_create(user=user, workspace=workspace, defaults={"role": Role.ADMIN})
    for model, (provider, inp, out, credits) in MODEL_PRICES.items():
        ModelPrice.objects.get_or_create(
            model=model,
            defaults={
                "provider": provider,
                "input_per_million": inp,
                "output_per_million": out,
                "credits_per_million": credits,
            },
        )
    start = now - timedelta(days=DAYS)
    agents, by_name = [], {}
    for name, family, model, _, count in AGENTS:
        agent, _ = Agent.objects.get_or_create(
            workspace=workspace,
            name=name,
            defaults={
                "slug": name,
                "description": f"Benchmark {family} agent.",
                "created_at": start,
            },
        )
        ids, names, since = [], [], []
        for n in range(count):
            # Versions ship at even intervals through the 90 days.
            released = start + timedelta(days=DAYS * n / count)
            version, _ = AgentVersion.objects.get_or_create(
                agent=agent,
                version=f"v{n + 1}",
                defaults={
                    "config": {"model": model, "prompt": f"You are {name}."},
                    "input_schema": {"type": "object"},
                    "output_schema": {"type": "object"},
                    "created_at": released,
                },
            )
            ids.append(version.id)
            names.append(version.version)
            since.append(int(released.timestamp() * 1000))
        by_name[name] = len(agents)
        agents.append((agent.id, ids, names, since))
    schedules = {}
    for name in SCHEDULED_AGENTS:
        index = by_name[name]
        schedule, _ = Schedule.objects.get_or_create(
            workspace=workspace,
            name=f"{name} (scheduled)",
            defaults={"agent_version_id": agents[index][1][-1], "cron": "0 7 * * 1-5"},
        )
        schedules[index] = schedule.id
    return Setup(workspace, user.id, agents, schedules, [])


def _batches(setup: Setup, now: datetime, rng: random.Random) -> None:
    # Only once the executions are gone: deleting batches first would update every
    # execution that points at one.
    Batch.objects.filter(workspace=setup.workspace).delete()
    start = now - timedelta(days=DAYS)
    batches = Batch.objects.bulk_create(
        [
            Batch(
                workspace=setup.workspace,
                name=f"Bench batch {n + 1}",
                created_by_id=setup.user_id,
                created_at=start + timedelta(seconds=rng.randint(0, DAYS * 86400)),
            )
            for n in range(BATCHES)
        ]
    )
    setup.batches = [str(b.id) for b in batches]


def _referencing(cursor, table: str) -> list[tuple[str, str]]:
    cursor.execute(
        """
        SELECT c.conrelid::regclass::text, a.attname
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.contype = 'f' AND c.confrelid = %s::regclass AND c.conrelid <> c.confrelid
        """,
        [table],
    )
    return cursor.fetchall()


def _clear(cursor, workspace: Workspace) -> bool:
    """Remove the workspace's executions and all that hangs off them. True if truncated."""
    table = Execution._meta.db_table
    if not Execution.objects.exclude(workspace=workspace).exists():
        # Nobody else's rows are there, so TRUNCATE is safe and lets COPY write frozen rows.
        tables = [table, Step._meta.db_table, FieldCorrection._meta.db_table]
        tables += [ExecutionNote._meta.db_table, ExecutionSearch._meta.db_table]
        cursor.execute(
            sql.SQL("TRUNCATE {} CASCADE").format(
                sql.SQL(", ").join(sql.Identifier(t) for t in tables)
            )
        )
        return True
    for ref_table, column in _referencing(cursor, table):
        cursor.execute(
            sql.SQL(
                "DELETE FROM {} WHERE {} IN (SELECT id FROM {} WHERE workspace_id = %s)"
            ).format(sql.SQL(ref_table), sql.Identifier(column), sql.Identifier(table)),
            [workspace.id],
        )
    cursor.execute(
        sql.SQL("DELETE FROM {} WHERE workspace_id = %s").format(sql.Identifier(table)),
        [workspace.id],
    )
    return False


def _secondary_structures(cursor, tables: list[str]) -> tuple[list, list]:
    """Statements that drop, and then recreate, every index and constraint but the keys."""
    cursor.execute(
        """
        SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid), contype
        FROM pg_constraint
        WHERE conrelid = ANY (%s::regclass[]) AND contype IN ('f', 'u')
        ORDER BY contype
        """,
        [tables],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid = ANY (%s::regclass[]) AND NOT i.indisprimary
          AND NOT EXISTS (
            SELECT 1 FROM pg_constraint c
            WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
              AND c.contype IN ('p', 'u', 'x'))
        """,
        [tables],
    )
    indexes = cursor.fetchall()
    drops = [
        sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.SQL(t), sql.Identifier(n))
        for n, t, _, _ in constraints
    ] + [sql.SQL("DROP INDEX {}").format(sql.SQL(name)) for name, _ in indexes]
    # A partitioned table's index reads "ON ONLY parent", which would build no index
    # on its partitions; without ONLY it builds them all.
    creates = [sql.SQL(d.replace(" ON ONLY ", " ON ", 1)) for _, d in indexes] + [
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} " + definition.replace("%", "%%")).format(
            sql.SQL(t), sql.Identifier(n)
        )
        for n, t, definition, kind in sorted(constraints, key=lambda c: c[3] != "u")
    ]
    return drops, creates


class _Meter:
    """Wall and CPU time per phase. On a shared machine the wall clock says more about the
    neighbours than about the loader; CPU (ours, and the database backend's when it runs
    on this machine) is the figure that compares between runs."""

    def __init__(self, cursor, report: LoadReport, progress: Callable[[str], None]):
        cursor.execute("SELECT pg_backend_pid()")
        self.pid = cursor.fetchone()[0]
        self.report, self.progress = report, progress
        self.last = self._now()

    def _server_cpu(self) -> float | None:
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None  # the database runs elsewhere
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _now(self) -> tuple[float, float, float | None]:
        return time.monotonic(), time.process_time(), self._server_cpu()

    def lap(self, name: str) -> None:
        now = self._now()
        wall, python = now[0] - self.last[0], now[1] - self.last[1]
        server = now[2] - self.last[2] if now[2] is not None and self.last[2] is not None else None
        self.report.phases.append((name, wall, python, server))
        cpu = f"python CPU {python:.1f} s" + (
            f", database CPU {server:.1f} s" if server is not None else ""
        )
        self.progress(f"{name} done in {wall:.1f} s ({cpu})")
        self.last = now


def load(
    *,
    executions: int,
    steps: int,
    slug: str = "bench",
    reset: bool = False,
    seed: int = 1,
    progress: Callable[[str], None] = print,
) -> LoadReport:
    if connection.vendor != "postgresql":
        raise NeedsPostgres("load_bench needs PostgreSQL: set DATABASE_URL=postgres://...")
    report = LoadReport()
    rng = random.Random(seed)
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        meter = _Meter(cursor, report, progress)
        setup = _setup(slug, now, rng)
        if Execution.objects.filter(workspace=setup.workspace).exists() and not reset:
            raise AlreadyLoaded(
                f"Workspace '{slug}' already has executions; pass --reset to replace them."
            )
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cursor.execute("SET LOCAL synchronous_commit = off")
        frozen = _clear(cursor, setup.workspace)
        _batches(setup, now, rng)
        # The search table is filled by its triggers as the executions arrive; its
        # indexes, like the others, are built once at the end.
        drops, creates = _secondary_structures(
            cursor,
            [Execution._meta.db_table, Step._meta.db_table, ExecutionSearch._meta.db_table],
        )
        # Check the setup rows' deferred foreign keys now: a table with pending trigger
        # events cannot lose a constraint that points at it.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for statement in drops:
            cursor.execute(statement)
        undo = [u for model, known in LOADED for u in fill_defaults(cursor, model, known)]
        meter.lap("prepare")

        generator = Generator(setup, executions, steps, now, rng)
        with connection.connection.cursor() as pg:
            generator.copy_executions(pg, frozen, progress, report)
            meter.lap("executions")
            generator.copy_steps(pg, frozen, progress, report)
            meter.lap("steps")
            generator.copy_feedback(pg, report)
            pg.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                    "GREATEST((SELECT max(id) FROM {}), 1))"
                ).format(sql.Identifier(Step._meta.db_table)),
                [Step._meta.db_table],
            )
        for statement in undo:
            cursor.execute(statement)

        progress(f"rebuilding {len(creates)} indexes and constraints…")
        took = []
        for statement in creates:
            at = time.monotonic()
            cursor.execute(statement)
            took.append((time.monotonic() - at, statement.as_string(cursor.connection)))
        for seconds, statement in sorted(took, reverse=True)[:5]:
            progress(f"  {seconds:5.1f} s  {statement[:100]}")
        counters.rebuild(setup.workspace)
        meter.lap("indexes")
    # COPY FREEZE already set the visibility map, so VACUUM mostly gathers statistics.
    # It cannot run inside a transaction (a caller's, as in tests): there, ANALYZE alone.
    command = "ANALYZE {}" if connection.in_atomic_block else "VACUUM (ANALYZE) {}"
    with connection.cursor() as cursor:
        for model in [*(m for m, _ in LOADED), ExecutionSearch]:
            cursor.execute(sql.SQL(command).format(sql.Identifier(model._meta.db_table)))
        meter.lap("vacuum analyze")
    return report
