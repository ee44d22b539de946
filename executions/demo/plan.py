"""Which runs the demo workspace has: agent, status, time, source, batch, schedule.

Cheap and deterministic: the plan is drawn from one seeded Random, and each run's
details are later drawn from a Random seeded by the run's own key. So a second
`seed_demo` can see that every planned run already exists without building any of
them, and a run built alone is the same as when built with all the others.
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from random import Random

from executions.models import Priority, Source, Status

from .catalog import CUSTOMERS, DELETED_AGENT, ENVIRONMENTS, REGIONS

NAMESPACE = uuid.UUID("6f1c1b55-5d7e-4c59-9d55-2d0a6cbb3e51")
SEED = 20240611


def demo_uuid(*parts: object) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, ":".join(str(p) for p in parts))


@dataclass
class RunSpec:
    key: str
    agent: str
    version: str
    status: str
    # None for runs still in flight: they are placed relative to now once their steps
    # (and so how far along they are) are known.
    created_at: datetime | None
    source: str
    subject: str
    metadata: dict
    priority: int = Priority.NORMAL
    batch: str | None = None
    schedule: str | None = None
    rerun_of: str | None = None
    triggered_by: str | None = None
    needs_approval: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> uuid.UUID:
        return demo_uuid("execution", self.key)


@dataclass
class BatchSpec:
    key: str
    name: str
    agent: str
    version: str
    size: int
    days_ago: int

    @property
    def id(self) -> uuid.UUID:
        return demo_uuid("batch", self.key)


S = Status
# Mostly completed, as in any healthy system; the in-flight ones are few and recent.
DEFAULT_WEIGHTS = {
    S.COMPLETED: 150,
    S.FAILED: 22,
    S.TIMED_OUT: 6,
    S.CANCELLED: 8,
    S.RUNNING: 2,
    S.QUEUED: 1,
    S.PENDING: 1,
}
APPROVAL_WEIGHTS = {**DEFAULT_WEIGHTS, S.COMPLETED: 130, S.AWAITING_APPROVAL: 12, S.REJECTED: 8}
ACTIVE = {S.RUNNING, S.QUEUED, S.PENDING, S.AWAITING_APPROVAL}
# Few runs are in flight at any moment; these make sure the demo shows each such status.
FORCED = {
    "support-agent-000": S.PENDING,
    "invoice-extractor-000": S.QUEUED,
    "web-browser-000": S.RUNNING,
    "support-agent-001": S.AWAITING_APPROVAL,
    "support-agent-002": S.REJECTED,
    # Stopped by the system: the browser agent ran past its step budget.
    "web-browser-002": S.TERMINATED,
}

# (agent, how many runs, status weights); versions come from VERSIONS
AGENT_RUNS = [
    ("invoice-extractor", 140, DEFAULT_WEIGHTS),
    ("receipt-reader", 60, DEFAULT_WEIGHTS),
    ("web-browser", 50, DEFAULT_WEIGHTS),
    ("support-agent", 130, APPROVAL_WEIGHTS),
    ("sql-writer", 40, DEFAULT_WEIGHTS),
    (DELETED_AGENT, 36, DEFAULT_WEIGHTS),
]
VERSIONS = {
    "invoice-extractor": "v2",
    "receipt-reader": "v1",
    "web-browser": "v3",
    "support-agent": "v1",
    "daily-sales-report": "v1",
    "sql-writer": "v1",
    DELETED_AGENT: "v1",
}
# invoice-extractor:v2 went live this many days ago; older runs used v1.
INVOICE_V2_DAYS = 16
DELETED_AGENT_DAYS = (14, 30)

BATCHES = [
    BatchSpec("march-invoices", "March supplier invoices", "invoice-extractor", "v2", 12, 3),
    BatchSpec("q1-backfill", "Q1 invoice backfill", "invoice-extractor", "v1", 18, 20),
    BatchSpec("offsite-receipts", "Team offsite receipts", "receipt-reader", "v1", 8, 9),
]
SCHEDULE_KEY = "weekday-sales-report"
SCHEDULE_CRON = "0 7 * * 1-5"
SCHEDULE_RUNS = 21  # about a month of weekdays

# Work happens in office hours, with a long tail at night.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 3, 5, 9, 11, 12, 11, 9, 10, 11, 11, 10, 8, 6, 4, 3, 2, 2, 1]
CHANNELS = ["email", "chat", "chat", "web", "whatsapp"]


def _weighted(rng: Random, weights: dict) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _run_rng(key: str) -> Random:
    # One stream per run: a retry while placing one run in time never shifts what the
    # next run draws, so the same keys get the same agent and status on any day.
    return Random(f"{SEED}:{key}")


def _when(rng: Random, now: datetime, *, days: tuple[int, int] = (0, 30)) -> datetime:
    """A plausible past time `days` ago, weighted to weekdays and office hours.

    Only this run's own time depends on the date and hour it is seeded at.
    """
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    while True:
        day = midnight - timedelta(days=rng.randint(days[0], days[1] - 1))
        if day.weekday() < 5 or rng.random() < 0.35:
            break
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    at = day + timedelta(
        hours=hour,
        minutes=rng.randint(0, 59),
        seconds=rng.randint(0, 59),
        milliseconds=rng.randint(0, 999),
    )
    # Finished runs finished before now (a timed-out one ran ten minutes), whatever the
    # hour it is now.
    return min(at, now - timedelta(minutes=rng.randint(12, 90)))


def _metadata(rng: Random, agent: str) -> dict:
    # Customers are skewed: a few big ones send most of the work.
    customer = rng.choices(CUSTOMERS, weights=[40, 25, 15, 12, 9, 7, 5, 4, 3, 2, 2, 1])[0]
    data = {
        "customer": customer,
        "environment": rng.choices(*zip(*ENVIRONMENTS, strict=True))[0],
        "region": rng.choice(REGIONS),
    }
    if agent == "support-agent":
        data["channel"] = rng.choice(CHANNELS)
        if rng.random() < 0.4:
            data["ticket_id"] = f"ZD-{rng.randint(100000, 999999)}"
    elif agent in {"invoice-extractor", "receipt-reader"}:
        data["document_type"] = "invoice" if agent == "invoice-extractor" else "receipt"
        if rng.random() < 0.3:
            data["cost_center"] = rng.choice(["CC-100 Finance", "CC-240 Ops", "CC-310 Sales"])
    elif agent == "web-browser":
        data["run_reason"] = rng.choice(["month-end close", "vendor follow-up", "audit request"])
    if rng.random() < 0.06:
        data["experiment"] = rng.choice(["prompt-v2-ab", "temperature-0"])
    if rng.random() < 0.04:
        data["priority_customer"] = True
    return data


def _source(rng: Random, agent: str) -> tuple[str, str | None]:
    roll = rng.random()
    if roll < 0.2:
        return Source.DASHBOARD, rng.choice(["demo", "operator"])
    if roll < 0.4 and agent in {"support-agent", "web-browser"}:
        return Source.OTLP, None
    return Source.API, None


def build_plan(now: datetime) -> tuple[list[RunSpec], list[BatchSpec]]:
    """Every run of the demo. The keys, agents and statuses never depend on `now`; the
    times do, so a workspace seeded on any day reads as "the last 30 days"."""
    runs: list[RunSpec] = []
    for agent, count, weights in AGENT_RUNS:
        for i in range(count):
            key = f"{agent}-{i:03d}"
            rng = _run_rng(key)
            status = FORCED.get(key) or _weighted(rng, weights)
            days = (0, 30)
            if agent == DELETED_AGENT:
                days = DELETED_AGENT_DAYS
                if status in ACTIVE:
                    status = S.COMPLETED
            source, user = _source(rng, agent)
            metadata = _metadata(rng, agent)
            priority = rng.choices(list(Priority), weights=[10, 75, 15])[0]
            created = None if status in ACTIVE else _when(rng, now, days=days)
            version = VERSIONS[agent]
            if agent == "invoice-extractor" and created is not None:
                old = created < now - timedelta(days=INVOICE_V2_DAYS)
                version = "v1" if old or rng.random() < 0.1 else "v2"
            runs.append(
                RunSpec(
                    key=key,
                    agent=agent,
                    version=version,
                    status=status,
                    created_at=created,
                    source=source,
                    subject=f"{agent}:{i}",
                    metadata=metadata,
                    priority=priority,
                    triggered_by=user,
                    needs_approval=status in {S.AWAITING_APPROVAL, S.REJECTED},
                )
            )

    for batch in BATCHES:
        start = _when(_run_rng(batch.key), now, days=(batch.days_ago, batch.days_ago + 1))
        offset = timedelta(0)
        for i in range(batch.size):
            key = f"{batch.key}-{i:02d}"
            rng = _run_rng(key)
            # Submitted together: a couple of seconds apart.
            offset += timedelta(milliseconds=rng.randint(200, 2500))
            runs.append(
                RunSpec(
                    key=key,
                    agent=batch.agent,
                    version=batch.version,
                    status=rng.choices([S.COMPLETED, S.FAILED], weights=[88, 12])[0],
                    created_at=start + offset,
                    source=Source.BATCH,
                    subject=f"{batch.key}:{i}",
                    metadata={**_metadata(rng, batch.agent), "batch_file": f"{batch.key}.zip"},
                    batch=batch.key,
                    triggered_by="demo",
                )
            )

    # The 07:00 weekday schedule: its last SCHEDULE_RUNS firings, newest first.
    at = now.replace(hour=7, minute=0, second=0, microsecond=0)
    for n in range(SCHEDULE_RUNS):
        while at.weekday() >= 5 or at > now - timedelta(minutes=5):
            at -= timedelta(days=1)
        key = f"{SCHEDULE_KEY}-{n:02d}"
        rng = _run_rng(key)
        runs.append(
            RunSpec(
                key=key,
                agent="daily-sales-report",
                version="v1",
                status=rng.choices([S.COMPLETED, S.FAILED, S.TIMED_OUT], weights=[90, 6, 4])[0],
                created_at=at + timedelta(milliseconds=rng.randint(5, 900)),
                source=Source.SCHEDULE,
                subject=f"report:{n}",
                metadata={"environment": "production", "region": "eu-west-1", "team": "sales"},
                schedule=SCHEDULE_KEY,
            )
        )
        at -= timedelta(days=1)

    # Operators rerun some failures; most reruns then succeed.
    rerunnable = [
        r
        for r in runs
        if r.status == S.FAILED
        and r.agent in {"invoice-extractor", "support-agent", "receipt-reader", "web-browser"}
        and r.created_at is not None
    ]
    for original in _run_rng("reruns").sample(rerunnable, min(10, len(rerunnable))):
        key = f"rerun-{original.key}"
        rng = _run_rng(key)
        later = original.created_at + timedelta(minutes=rng.randint(15, 240))
        runs.append(
            RunSpec(
                key=key,
                agent=original.agent,
                version=original.version,
                status=rng.choices([S.COMPLETED, S.FAILED], weights=[85, 15])[0],
                created_at=min(later, now - timedelta(minutes=10)),
                source=Source.RERUN,
                subject=original.subject,
                metadata=dict(original.metadata),
                priority=original.priority,
                rerun_of=original.key,
                triggered_by="operator",
            )
        )
    return runs, BATCHES
