"""Load the reference benchmark data set into PostgreSQL with COPY.

1,000,000 executions with 10 steps each over 90 days and 20 agents, in a few minutes:
rows are generated as COPY text from precomputed pieces (bench_rows.py), secondary
indexes and foreign keys are dropped for the load and rebuilt after it (sorting once
is far cheaper than updating 40 indexes row by row), and everything happens in one
transaction, so a failed load leaves the database as it was.
"""

import random
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection, models, transaction
from django.utils import timezone
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from agents.models import Agent, AgentVersion, Membership, ModelPrice, Role, Schedule, Workspace
from executions import counters
from executions.models import Batch, Execution, Step
from feedback.models import ExecutionNote, FieldCorrection

from .bench_rows import (
    AGENTS,
    DAY_MS,
    NULL,
    PROFILES,
    Clock,
    Pools,
    build_profiles,
    esc,
    jtext,
    last_chain,
)
from .catalog import MODEL_PRICES

DAYS = 90
BATCHES = 40
SCHEDULED_AGENTS = ["daily-sales-report", "email-triage", "price-monitor"]
CHUNK = 2000  # executions per write to the COPY stream
TIME_LIMIT_MS = 600_000
TIMEOUT_ERROR = f"TimeoutError: the execution ran past its time limit of {TIME_LIMIT_MS // 1000} s"

# Status codes, in the order the generator uses them.
COMPLETED, FAILED, TIMED_OUT, CANCELLED, REJECTED, AWAITING, RUNNING, QUEUED, PENDING = range(9)
STATUS = [
    "completed",
    "failed",
    "timed_out",
    "cancelled",
    "rejected",
    "awaiting_approval",
    "running",
    "queued",
    "pending",
]
# Finished long ago: mostly completed. In the last two hours: many still in flight.
OLD = {COMPLETED: 865, FAILED: 85, TIMED_OUT: 15, CANCELLED: 25, REJECTED: 10}
WEEK = {**OLD, COMPLETED: 835, AWAITING: 30}
RECENT = {COMPLETED: 520, FAILED: 60, CANCELLED: 20, RUNNING: 250, QUEUED: 90, PENDING: 60}


def _table(weights: dict[int, int]) -> bytes:
    return bytes(code for code, n in weights.items() for _ in range(n))


class NeedsPostgres(Exception):
    pass


class AlreadyLoaded(Exception):
    pass


@dataclass
class LoadReport:
    executions: int = 0
    steps: int = 0
    corrections: int = 0
    notes: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)


def _constant(f: models.Field) -> str:
    """COPY text for a column the generator does not know: its model default."""
    value = f.get_default()
    if value is None:
        return NULL
    if isinstance(f, models.JSONField):
        return jtext(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return esc(str(value))


def _columns(model, known: list[str]) -> tuple[sql.Composed, str]:
    """The COPY column list: ours, then any column added since, filled with its default."""
    extra = [
        f
        for f in model._meta.concrete_fields
        if f.column not in known and not (f.primary_key and f.column not in known)
    ]
    if any(f.column == "id" for f in extra):
        extra = [f for f in extra if f.column != "id"]
    names = sql.SQL(", ").join(sql.Identifier(c) for c in [*known, *(f.column for f in extra)])
    suffix = "".join("\t" + _constant(f) for f in extra) + "\n"
    return names, suffix


EXECUTION_COLUMNS = [
    "id", "workspace_id", "agent_id", "agent_version_id", "agent_name", "version_name",
    "status", "priority", "source", "input", "output", "summary", "error", "failure_reason",
    "metadata", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "credits",
    "step_count", "created_at", "queued_at", "started_at", "completed_at", "duration_ms",
    "updated_at", "trace_id", "session_id", "idempotency_key", "triggered_by_id", "request",
    "rerun_of_id", "batch_id", "schedule_id", "correction_count", "note_count",
    "approval_request", "approval_note", "decided_by_id", "decided_at",
]  # fmt: skip
STEP_COLUMNS = [
    "id", "execution_id", "parent_id", "sequence", "span_id", "parent_span_id", "kind",
    "name", "status", "started_at", "ended_at", "duration_ms", "input", "output", "error",
    "model", "prompt_tokens", "completion_tokens", "cost_usd", "attributes", "created_at",
]  # fmt: skip
CORRECTION_COLUMNS = [
    "workspace_id", "execution_id", "path", "op", "value_before", "value_after",
    "author_id", "comment", "created_at",
]  # fmt: skip
NOTE_COLUMNS = ["workspace_id", "execution_id", "author_id", "rating", "text", "created_at"]
LOADED_TABLES = [Execution, Step, FieldCorrection, ExecutionNote]


@dataclass
class Setup:
    workspace: Workspace
    user_id: int
    agents: list[tuple[int, list[int], list[str], list[int]]]  # id, version ids, names, since
    schedules: dict[int, int]  # agent index -> schedule id
    batches: list[str]


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
        tables.append(ExecutionNote._meta.db_table)
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
    creates = [sql.SQL(definition) for _, definition in indexes] + [
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} " + definition.replace("%", "%%")).format(
            sql.SQL(t), sql.Identifier(n)
        )
        for n, t, definition, kind in sorted(constraints, key=lambda c: c[3] != "u")
    ]
    return drops, creates


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
    began = time.monotonic()
    rng = random.Random(seed)
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        setup = _setup(slug, now, rng)
        existing = Execution.objects.filter(workspace=setup.workspace).exists()
        if existing and not reset:
            raise AlreadyLoaded(
                f"Workspace '{slug}' already has executions; pass --reset to replace them."
            )
        cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
        cursor.execute("SET LOCAL synchronous_commit = off")
        frozen = _clear(cursor, setup.workspace)
        _batches(setup, now, rng)
        tables = [m._meta.db_table for m in (Execution, Step)]
        drops, creates = _secondary_structures(cursor, tables)
        # Check the setup rows' deferred foreign keys now: a table with pending trigger
        # events cannot lose a constraint that points at it.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for statement in drops:
            cursor.execute(statement)
        report.timings["prepare"] = time.monotonic() - began

        generator = _Generator(setup, executions, steps, now, rng)
        raw = connection.connection
        with raw.cursor() as pg:
            generator.copy_executions(pg, frozen, progress, report)
            report.timings["executions"] = time.monotonic() - began
            generator.copy_steps(pg, frozen, progress, report)
            report.timings["steps"] = time.monotonic() - began
            generator.copy_feedback(pg, frozen, report)
            pg.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                "GREATEST((SELECT max(id) FROM executions_step), 1))",
                [Step._meta.db_table],
            )
        progress(f"rebuilding {len(creates)} indexes and constraints…")
        took = []
        for statement in creates:
            at = time.monotonic()
            cursor.execute(statement)
            took.append((time.monotonic() - at, statement.as_string(cursor.connection)))
        for seconds, statement in sorted(took, reverse=True)[:8]:
            progress(f"  {seconds:5.1f} s  {statement[:110]}")
        report.timings["indexes"] = time.monotonic() - began
        counters.rebuild(setup.workspace)
    for model in LOADED_TABLES:
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(model._meta.db_table))
            )
    report.timings["analyze"] = time.monotonic() - began
    return report


class _Generator:
    """Writes executions, then their steps, then feedback, each as one COPY stream."""

    def __init__(self, setup: Setup, n: int, steps: int, now: datetime, rng: random.Random):
        self.setup, self.n, self.steps, self.rng = setup, n, steps, rng
        self.now_ms = int(now.timestamp() * 1000)
        self.first_ms = self.now_ms - DAYS * DAY_MS
        self.clock = Clock(self.first_ms - DAY_MS, self.now_ms + 2 * TIME_LIMIT_MS)
        self.agents = build_profiles(steps, rng.randint(0, 2**31))
        self.pools = Pools(rng, self.agents)
        bits = rng.getrandbits
        self.id_base = f"{bits(32):08x}-{bits(16):04x}-4{bits(12):03x}-a{bits(12):03x}-"
        self.trace_base = f"{rng.getrandbits(80):020x}"
        self.step_base = 0
        self.started = array("q")
        self.agent_of = array("B")
        self.profile_of = array("H")
        self.status_of = array("B")
        self.corrections: list[str] = []
        self.notes: list[str] = []

    def execution_id(self, i: int) -> str:
        # A bijection on 48 bits: unique, but spread like random UUIDs.
        return f"{self.id_base}{(i * 0x9E3779B97F4B + 0x5DEECE66D) & 0xFFFFFFFFFFFF:012x}"

    def _created_times(self) -> list[int]:
        rand = self.rng.random
        span = self.now_ms - 60_000 - self.first_ms
        weights = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 10, 9, 10, 10, 10, 9, 7, 5, 4, 3, 2, 2, 1]
        times = []
        while len(times) < self.n:
            # More recent days are busier (the product is growing), office hours busiest.
            t = self.first_ms + int(span * rand() ** 0.8)
            if rand() * 10 < weights[(t % DAY_MS) // 3_600_000]:
                times.append(t)
        times.sort()
        return times

    def copy_executions(self, pg, frozen: bool, progress, report: LoadReport) -> None:
        s, rand, clock = self.setup, self.rng.random, self.clock
        ws, user = s.workspace.id, s.user_id
        columns, suffix = _columns(Execution, EXECUTION_COLUMNS)
        tables = {name: _table(w) for name, w in (("old", OLD), ("week", WEEK), ("recent", RECENT))}
        chat_old = _table({**OLD})
        plain_old = _table({k: v for k, v in OLD.items() if k != REJECTED})
        pick = bytes(i for i, a in enumerate(AGENTS) for _ in range(a[3]))
        pools = self.pools
        batch_blocks = sorted(
            (self.rng.randrange(max(1, self.n)), self.rng.randint(50, 500), b) for b in s.batches
        )
        created = self._created_times()
        statuses = [0] * 9
        lines: list[str] = []
        block_index, block_end, batch = 0, -1, NULL
        began = time.monotonic()
        with pg.copy(
            sql.SQL("COPY {} ({}) FROM STDIN{}").format(
                sql.Identifier(Execution._meta.db_table),
                columns,
                sql.SQL(" WITH (FREEZE)" if frozen else ""),
            ),
            writer=QueuedLibpqWriter(pg),
        ) as copy:
            for i, created_ms in enumerate(created):
                a = pick[int(rand() * len(pick))]
                name, family = AGENTS[a][0], AGENTS[a][1]
                agent_id, version_ids, version_names, since = s.agents[a]
                age = self.now_ms - created_ms
                if age < 7_200_000:
                    table = tables["recent"]
                elif age < 7 * DAY_MS and family == "chat":
                    table = tables["week"]
                else:
                    table = chat_old if family == "chat" else plain_old
                status = table[int(rand() * len(table))]
                statuses[status] += 1
                p = int(rand() * PROFILES)
                profile = self.agents[a].profiles[p]
                v = len(since) - 1
                while v and since[v] > created_ms:
                    v -= 1
                if v and rand() < 0.05:
                    v -= 1  # a client pinned to the previous version

                # Where it came from.
                starts_batch = block_index < len(batch_blocks)
                if i > block_end and starts_batch and i >= batch_blocks[block_index][0]:
                    _, size, batch = batch_blocks[block_index]
                    block_end, block_index = i + size, block_index + 1
                if i > block_end:
                    batch = NULL
                roll = rand()
                schedule = rerun = triggered = NULL
                if batch != NULL:
                    source = "batch"
                elif a in s.schedules and roll < 0.4:
                    source, schedule = "schedule", str(s.schedules[a])
                elif roll < 0.06:
                    source, triggered = "dashboard", str(user)
                elif roll < 0.065 and i > 10:
                    source, rerun = (
                        "rerun",
                        self.execution_id(i - 1 - int(rand() * min(i - 1, 2000))),
                    )
                elif roll < 0.16 and family != "document":
                    source = "otlp"
                else:
                    source = "api"

                # When it ran, and what it cost.
                queued = created_ms + 20 + int(rand() * 1500)
                started = completed = NULL
                started_ms = -1
                steps_n = 0
                prompt = completion = 0
                cost = 0.0
                duration = NULL
                if status not in (PENDING, QUEUED):
                    started_ms = queued + 100 + int(rand() * 5000)
                    started = clock(started_ms)
                    steps_n = self.steps
                    prompt, completion, cost = profile.prompt, profile.completion, profile.cost
                    if status != COMPLETED:
                        prompt -= profile.last_prompt
                        completion -= profile.last_completion
                        cost -= profile.last_cost
                    if status == TIMED_OUT:
                        end = started_ms + TIME_LIMIT_MS + (i * 37) % 400
                    else:
                        end = started_ms + profile.offsets[-1] + 5 + (i * 13) % 200
                    if status not in (RUNNING, AWAITING):
                        completed = clock(end)
                        duration = str(end - started_ms)
                updated = (
                    completed
                    if completed != NULL
                    else (started if started != NULL else clock(queued))
                )
                terminal = status <= REJECTED
                billed = terminal and not (age < DAY_MS and rand() < 0.4)
                credits = f"{cost * 100 + profile.tools * 0.1:.4f}" if billed else NULL
                output = pools.outputs[a][p % 64] if status == COMPLETED else NULL
                summary = pools.summaries[a][p % 256] if status == COMPLETED else ""
                error = reason = ""
                if status in (FAILED, TIMED_OUT):
                    error, reason = pools.errors[family][i % 64]
                    if status == TIMED_OUT:
                        error = TIMEOUT_ERROR
                        reason = "It ran longer than the version's time limit and was stopped."
                elif status == CANCELLED:
                    reason = "Cancelled by operator."
                elif status == REJECTED:
                    reason = "Rejected by reviewer: not covered by the refund policy."

                meta = pools.metadata(i, family, rand)
                approval = decided_by = decided_at = NULL
                note = ""
                if status in (AWAITING, REJECTED):
                    approval = pools.approval
                    if status == REJECTED:
                        decided_by, decided_at, note = (
                            str(user),
                            completed,
                            "Not covered by policy.",
                        )
                corrections = notes = 0
                if status == COMPLETED and rand() < 0.03:
                    corrections = self._feedback(i, created_ms, rand, pools)
                if terminal and rand() < 0.01:
                    notes = 1
                    self.notes.append(
                        f"{ws}\t{self.execution_id(i)}\t{user}\t{'up' if rand() < 0.7 else 'down'}"
                        f"\tChecked by the bench reviewer.\t{clock(created_ms + 3_600_000)}\n"
                    )
                label = f"{name}:{version_names[v]}"
                inp = pools.inputs[a][p % 64]
                request = pools.request(source, label, inp)
                lines.append(
                    f"{self.execution_id(i)}\t{ws}\t{agent_id}\t{version_ids[v]}\t{name}\t"
                    f"{version_names[v]}\t{STATUS[status]}\t{pools.priority[i % 20]}\t{source}\t"
                    f"{inp}\t{output}\t{summary}\t{esc(error)}\t{esc(reason)}\t{meta}\t"
                    f"{prompt}\t{completion}\t{prompt + completion}\t{cost:.6f}\t{credits}\t"
                    f"{steps_n}\t{clock(created_ms)}\t{clock(queued)}\t{started}\t{completed}\t"
                    f"{duration}\t{updated}\t"
                    f"{'' if source == 'dashboard' else self.trace_base + format(i, '012x')}\t"
                    f"{pools.session(family, rand)}\t"
                    f"{'bench-' + str(i) if source == 'api' and i % 10 == 0 else NULL}\t"
                    f"{triggered}\t{request}\t{rerun}\t{batch}\t{schedule}\t{corrections}\t"
                    f"{notes}\t{approval}\t{note}\t{decided_by}\t{decided_at}{suffix}"
                )
                self.started.append(started_ms)
                self.agent_of.append(a)
                self.profile_of.append(p)
                self.status_of.append(status)
                if len(lines) >= CHUNK:
                    copy.write("".join(lines))
                    lines.clear()
                if (i + 1) % 100_000 == 0:
                    rate = (i + 1) / (time.monotonic() - began)
                    progress(f"executions: {i + 1:,} of {self.n:,} ({rate:,.0f}/s)")
            if lines:
                copy.write("".join(lines))
        report.executions = self.n
        report.statuses = {STATUS[c]: n for c, n in enumerate(statuses) if n}

    def _feedback(self, i: int, created_ms: int, rand, pools) -> int:
        count = 1 + int(rand() * 2.2)
        at = self.clock(min(created_ms + 7_200_000, self.now_ms))
        for n in range(count):
            path = pools.paths[(i + n) % len(pools.paths)]
            before = 100 + (i % 900)
            self.corrections.append(
                f"{self.setup.workspace.id}\t{self.execution_id(i)}\t{path}\treplace\t{before}\t"
                f"{before + 1 + n}\t{self.setup.user_id}\t\t{at}\n"
            )
        return count

    def copy_steps(self, pg, frozen: bool, progress, report: LoadReport) -> None:
        pg.execute(
            sql.SQL("SELECT COALESCE(max(id), 0) FROM {}").format(
                sql.Identifier(Step._meta.db_table)
            )
        )
        sid = pg.fetchone()[0]
        columns, suffix = _columns(Step, STEP_COLUMNS)
        clock, steps = self.clock, self.steps
        chains = last_chain(self.agents, steps)
        lines: list[str] = []
        began = time.monotonic()
        total = 0
        with pg.copy(
            sql.SQL("COPY {} ({}) FROM STDIN{}").format(
                sql.Identifier(Step._meta.db_table),
                columns,
                sql.SQL(" WITH (FREEZE)" if frozen else ""),
            ),
            writer=QueuedLibpqWriter(pg),
        ) as copy:
            for i in range(self.n):
                started_ms = self.started[i]
                if started_ms < 0:
                    continue
                status = self.status_of[i]
                a = self.agent_of[i]
                profile = self.agents[a].profiles[self.profile_of[i]]
                eid = self.execution_id(i)
                ts = [clock(started_ms + o) for o in profile.offsets]
                heads, tails, parents, spans = (
                    profile.heads,
                    profile.tails,
                    profile.parents,
                    profile.spans,
                )
                special = () if status == COMPLETED else chains[a]
                for k in range(steps):
                    sid += 1
                    back = parents[k]
                    if back:
                        pid, pspan = sid - back, format(sid - back, "016x")
                    else:
                        pid, pspan = NULL, ""
                    b0, b1 = spans[k]
                    if k in special:
                        lines.append(
                            self._unfinished(i, sid, pid, k, pspan, profile, status, ts, suffix)
                        )
                        continue
                    t0 = ts[b0]
                    lines.append(
                        f"{sid}\t{eid}\t{pid}\t{k + 1}\t{sid:016x}\t{pspan}\t{heads[k]}completed\t"
                        f"{t0}\t{ts[b1]}\t{tails[k]}{t0}{suffix}"
                    )
                total += steps
                if len(lines) >= CHUNK * steps:
                    copy.write("".join(lines))
                    lines.clear()
                if (i + 1) % 100_000 == 0:
                    rate = total / (time.monotonic() - began)
                    progress(f"steps: {total:,} for {i + 1:,} executions ({rate:,.0f}/s)")
            if lines:
                copy.write("".join(lines))
        report.steps = total

    def _unfinished(self, i, sid, pid, k, pspan, profile, status, ts, suffix):
        """A step on the chain that ended the run: the last leaf and the blocks around it."""
        eid, started_ms = self.execution_id(i), self.started[i]
        head = profile.heads[k]
        leaf = k == self.steps - 1
        b0, b1 = profile.spans[k]
        start = started_ms + profile.offsets[b0]
        fields = profile.tails[k].split("\t")
        step_input, model, attrs = fields[1], fields[4], fields[8]
        error = ""
        if status in (RUNNING, AWAITING):
            state, end, duration = "running", NULL, NULL
        else:
            end_ms = started_ms + profile.offsets[b1]
            if status == TIMED_OUT:
                end_ms = started_ms + TIME_LIMIT_MS + (i * 37) % 400
            end, duration = self.clock(end_ms), str(end_ms - start)
            state = "skipped" if status == CANCELLED else "failed"
            if leaf:
                error = {
                    CANCELLED: "Cancelled by operator",
                    REJECTED: "Rejected by reviewer: not covered by the refund policy.",
                    TIMED_OUT: TIMEOUT_ERROR,
                }.get(status, "")
                if status == FAILED:
                    # The same message as the execution's error: the failing step holds it.
                    error = esc(self.pools.errors[self.agents[self.agent_of[i]].family][i % 64][0])
        if leaf and status in (AWAITING, REJECTED):
            head = "approval\tapprove action\t"
        return (
            f"{sid}\t{eid}\t{pid}\t{k + 1}\t{sid:016x}\t{pspan}\t{head}{state}\t{ts[b0]}\t{end}\t"
            f"{duration}\t{step_input}\t{NULL}\t{error}\t{model}\t0\t0\t0\t{attrs}\t{ts[b0]}{suffix}"
        )

    def copy_feedback(self, pg, frozen: bool, report: LoadReport) -> None:
        for model, known, rows in (
            (FieldCorrection, CORRECTION_COLUMNS, self.corrections),
            (ExecutionNote, NOTE_COLUMNS, self.notes),
        ):
            columns, suffix = _columns(model, known)
            if suffix != "\n":
                rows = [r[:-1] + suffix for r in rows]
            with pg.copy(
                sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(model._meta.db_table), columns
                )
            ) as copy:
                for start in range(0, len(rows), 10_000):
                    copy.write("".join(rows[start : start + 10_000]))
        report.corrections, report.notes = len(self.corrections), len(self.notes)
