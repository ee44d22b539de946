"""The COPY writers of load_bench: executions as text, steps in binary, then feedback.

Executions are written first, remembering per row only what their steps need (start,
agent, profile, status) in compact arrays; the steps follow in a second stream.

Just over 500 lines: the two COPY streams share their column lists and row encoders.
"""

import random
import struct
import time
from array import array
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, models
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from agents.models import Workspace
from executions.models import Execution, Step
from feedback.models import ExecutionNote, FieldCorrection

from . import pgbinary
from .bench_rows import (
    AGENTS,
    DAY_MS,
    DAYS,
    NULL,
    PROFILES,
    Clock,
    Pools,
    build_profiles,
    esc,
    last_chain,
)

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


@dataclass
class LoadReport:
    executions: int = 0
    steps: int = 0
    corrections: int = 0
    notes: int = 0
    phases: list[tuple[str, float, float, float | None]] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass
class Setup:
    workspace: Workspace
    user_id: int
    agents: list[tuple[int, list[int], list[str], list[int]]]  # id, version ids, names, since
    schedules: dict[int, int]  # agent index -> schedule id
    batches: list[str]


EXECUTION_COLUMNS = [
    "id", "workspace_id", "agent_id", "agent_version_id", "agent_name", "version_name",
    "status", "priority", "source", "input", "output", "summary", "error", "failure_reason",
    "metadata", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd", "credits",
    "step_count", "created_at", "queued_at", "started_at", "completed_at", "duration_ms",
    "updated_at", "trace_id", "session_id", "idempotency_key", "triggered_by_id", "request",
    "rerun_of_id", "batch_id", "schedule_id", "correction_count", "note_count",
    "approval_request", "approval_note", "decided_by_id", "decided_at",
]  # fmt: skip
# Steps go in binary: the fields that vary per row first, then the precomputed rest.
STEP_COLUMNS = [
    "id", "execution_id", "parent_id", "span_id", "parent_span_id", "started_at", "ended_at",
    "created_at", "sequence", "kind", "name", "status", "duration_ms", "input", "output",
    "error", "model", "prompt_tokens", "completion_tokens", "cost_usd", "attributes",
]  # fmt: skip
STEP_TYPES = {
    "id": "bigint", "execution_id": "uuid", "parent_id": "bigint", "sequence": "integer",
    "duration_ms": "bigint", "prompt_tokens": "integer", "completion_tokens": "integer",
    "cost_usd": "numeric(20, 12)", "input": "jsonb", "output": "jsonb", "attributes": "jsonb",
}  # fmt: skip
CORRECTION_COLUMNS = [
    "workspace_id", "execution_id", "path", "op", "value_before", "value_after",
    "author_id", "comment", "created_at",
]  # fmt: skip
NOTE_COLUMNS = ["workspace_id", "execution_id", "author_id", "rating", "text", "created_at"]
LOADED_TABLES = [Execution, Step, FieldCorrection, ExecutionNote]


ZERO_COST = pgbinary.numeric(0, 6)


def _columns(known: list[str]) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c) for c in known)


def _check_step_types() -> None:
    """The binary writer encodes each column by hand: stop loudly if the schema moved on."""
    for name, expected in STEP_TYPES.items():
        field_ = next(f for f in Step._meta.concrete_fields if f.column == name)
        if field_.is_relation:
            actual = field_.target_field.rel_db_type(connection)
        else:
            actual = field_.db_type(connection)
        if actual != expected:
            raise RuntimeError(
                f"Step.{name} is now {actual}, not {expected}: update STEP_TYPES and the "
                "binary step writer in executions/demo/bench_copy.py."
            )


def fill_defaults(cursor, model: type[models.Model], known: list[str]) -> list[sql.Composed]:
    """Give columns the writers do not know (added since) their model default for the load.

    Returns the statements that take the defaults away again.
    """
    undo = []
    for f in model._meta.concrete_fields:
        if f.column in known or f.primary_key or f.db_default is not models.NOT_PROVIDED:
            continue
        value = f.get_default()
        if value is None and f.null:
            continue
        target = sql.SQL("ALTER TABLE {} ALTER COLUMN {}").format(
            sql.Identifier(model._meta.db_table), sql.Identifier(f.column)
        )
        literal = sql.Literal(f.get_db_prep_save(value, connection))
        cursor.execute(sql.SQL("{} SET DEFAULT {}").format(target, literal))
        undo.append(sql.SQL("{} DROP DEFAULT").format(target))
    return undo


class Generator:
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
        self.id_prefix = bytes.fromhex(self.id_base.replace("-", ""))
        self.trace_base = f"{rng.getrandbits(80):020x}"
        self.started = array("q")
        self.agent_of = array("B")
        self.profile_of = array("H")
        self.status_of = array("B")
        self.corrections: list[str] = []
        self.notes: list[str] = []

    def execution_id(self, i: int) -> str:
        # A bijection on 48 bits: unique, but spread like random UUIDs.
        return f"{self.id_base}{(i * 0x9E3779B97F4B + 0x5DEECE66D) & 0xFFFFFFFFFFFF:012x}"

    def execution_uuid(self, i: int) -> bytes:
        return self.id_prefix + ((i * 0x9E3779B97F4B + 0x5DEECE66D) & 0xFFFFFFFFFFFF).to_bytes(6)

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
        columns = _columns(EXECUTION_COLUMNS)
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
                credits = f"{cost * 100 + self.agents[a].tools * 0.1:.4f}" if billed else NULL
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

                if error:
                    error = esc(error)
                if reason:
                    reason = esc(reason)
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
                    f"{inp}\t{output}\t{summary}\t{error}\t{reason}\t{meta}\t"
                    f"{prompt}\t{completion}\t{prompt + completion}\t{cost:.6f}\t{credits}\t"
                    f"{steps_n}\t{clock(created_ms)}\t{clock(queued)}\t{started}\t{completed}\t"
                    f"{duration}\t{updated}\t"
                    f"{'' if source == 'dashboard' else self.trace_base + format(i, '012x')}\t"
                    f"{pools.session(family, rand)}\t"
                    f"{'bench-' + str(i) if source == 'api' and i % 10 == 0 else NULL}\t"
                    f"{triggered}\t{request}\t{rerun}\t{batch}\t{schedule}\t{corrections}\t"
                    f"{notes}\t{approval}\t{note}\t{decided_by}\t{decided_at}\n"
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
        _check_step_types()
        pg.execute(
            sql.SQL("SELECT COALESCE(max(id), 0) FROM {}").format(
                sql.Identifier(Step._meta.db_table)
            )
        )
        sid = pg.fetchone()[0]
        steps = self.steps
        chains = last_chain(self.agents, steps)
        # id, execution_id, parent_id, span_id, parent_span_id, started, ended, created_at
        child = struct.Struct(">hiqi16siqi16si16siqiqiq").pack
        root = struct.Struct(">hiqi16sii16siiqiqiq").pack
        fields = len(STEP_COLUMNS)
        chunk: list[bytes] = []
        began = time.monotonic()
        total = 0
        with pg.copy(
            sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT BINARY{})").format(
                sql.Identifier(Step._meta.db_table),
                _columns(STEP_COLUMNS),
                sql.SQL(", FREEZE" if frozen else ""),
            ),
            writer=QueuedLibpqWriter(pg),
        ) as copy:
            copy.write(pgbinary.SIGNATURE)
            for i in range(self.n):
                started_ms = self.started[i]
                if started_ms < 0:
                    continue
                status = self.status_of[i]
                agent = self.agents[self.agent_of[i]]
                profile = agent.profiles[self.profile_of[i]]
                blobs, parents, spans = profile.blobs, agent.parents, agent.spans
                eid = self.execution_uuid(i)
                base = pgbinary.timestamp_us(started_ms)
                ts = [base + offset * 1000 for offset in profile.offsets]
                special = () if status == COMPLETED else chains[self.agent_of[i]]
                for k in range(steps):
                    sid += 1
                    if k in special:
                        chunk.append(self._unfinished(i, sid, k, agent, profile, ts, eid))
                        continue
                    b0, b1 = spans[k]
                    t0 = ts[b0]
                    back = parents[k]
                    if back:
                        pid = sid - back
                        head = child(
                            fields, 8, sid, 16, eid, 8, pid, 16, b"%016x" % sid,
                            16, b"%016x" % pid, 8, t0, 8, ts[b1], 8, t0,
                        )  # fmt: skip
                    else:
                        head = root(
                            fields, 8, sid, 16, eid, -1, 16, b"%016x" % sid, 0,
                            8, t0, 8, ts[b1], 8, t0,
                        )  # fmt: skip
                    chunk.append(head + blobs[k])
                total += steps
                if len(chunk) >= CHUNK * steps:
                    copy.write(b"".join(chunk))
                    chunk.clear()
                if (i + 1) % 100_000 == 0:
                    rate = total / (time.monotonic() - began)
                    progress(f"steps: {total:,} for {i + 1:,} executions ({rate:,.0f}/s)")
            chunk.append(pgbinary.TRAILER)
            copy.write(b"".join(chunk))
        report.steps = total

    def _unfinished(self, i, sid, k, agent, profile, ts, eid) -> bytes:
        """A step on the chain that ended the run: the last leaf and the blocks around it."""
        status = self.status_of[i]
        leaf = k == self.steps - 1
        b0, b1 = agent.spans[k]
        back = agent.parents[k]
        kind, name = agent.kinds[k], agent.names[k]
        if leaf and status in (AWAITING, REJECTED):
            kind, name = "approval", "approve action"
        error = ""
        end = duration = pgbinary.NULL
        state = "running"
        if status not in (RUNNING, AWAITING):
            end_us = ts[b1]
            if status == TIMED_OUT:
                end_us = pgbinary.timestamp_us(self.started[i] + TIME_LIMIT_MS + (i * 37) % 400)
            end, duration = pgbinary.int8(end_us), pgbinary.int8((end_us - ts[b0]) // 1000)
            state = "skipped" if status == CANCELLED else "failed"
            if leaf:
                error = {
                    CANCELLED: "Cancelled by operator",
                    REJECTED: "Rejected by reviewer: not covered by the refund policy.",
                    TIMED_OUT: TIMEOUT_ERROR,
                    # The same message as the execution's: the failing step holds the error.
                    FAILED: self.pools.errors[agent.family][i % 64][0],
                }[status]
        return b"".join(
            [
                struct.pack(">h", len(STEP_COLUMNS)),
                pgbinary.int8(sid),
                struct.pack(">i", 16) + eid,
                pgbinary.int8(sid - back) if back else pgbinary.NULL,
                pgbinary.text(f"{sid:016x}"),
                pgbinary.text(f"{sid - back:016x}" if back else ""),
                pgbinary.int8(ts[b0]),
                end,
                pgbinary.int8(ts[b0]),
                pgbinary.int4(k + 1),
                pgbinary.text(kind),
                pgbinary.text(name),
                pgbinary.text(state),
                duration,
                profile.inputs[k],
                pgbinary.NULL,
                pgbinary.text(error),
                pgbinary.text(agent.models[k]),
                pgbinary.int4(0),
                pgbinary.int4(0),
                ZERO_COST,
                agent.attributes[k],
            ]
        )

    def copy_feedback(self, pg, report: LoadReport) -> None:
        for model, known, rows in (
            (FieldCorrection, CORRECTION_COLUMNS, self.corrections),
            (ExecutionNote, NOTE_COLUMNS, self.notes),
        ):
            columns = _columns(known)
            with pg.copy(
                sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(model._meta.db_table), columns
                )
            ) as copy:
                for start in range(0, len(rows), 10_000):
                    copy.write("".join(rows[start : start + 10_000]))
        report.corrections, report.notes = len(self.corrections), len(self.notes)
