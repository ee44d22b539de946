"""Retention: deleting ended runs older than their workspace (or agent) keeps them.

Owns which runs retention deletes and the deleting itself:

- A workspace's `retention_days` applies to every agent whose own `retention_days` is
  empty; an agent's setting wins for its runs. Empty everywhere: runs are kept.
- Only ended runs go (a run still pending, running or awaiting approval stays, so a
  pending approval is never lost). While `retention_keep_marked` is ticked (the
  default) runs with corrections, notes or a pin stay too.
- Deletion runs in batches, each its own short transaction, sized so one batch takes
  about TARGET_BATCH_SECONDS: ingestion and the table wait at most that long on any
  lock retention holds. Artifacts' files are deleted once their rows are committed.
- Exact counts stay exact: the per-status counters are decremented in each batch's
  transaction; the search rows and the overview rollups follow the deletes through
  their database triggers.

The scheduler (`runboard_scheduler`) applies it daily per workspace; `manage.py
apply_retention` applies it now, or with `--dry-run` says what it would delete.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from agents.models import Agent, Workspace
from feedback.models import ExecutionNote, FieldCorrection

from . import counters
from .models import TERMINAL_STATUSES, Artifact, Execution, ExecutionPin, Step

logger = logging.getLogger(__name__)

TARGET_BATCH_SECONDS = 0.25
SLOW_BATCH_SECONDS = 1.0
MIN_BATCH, MAX_BATCH = 1, 5000
# Small, then doubled while batches stay quick: a first batch of 500 took 1.3 s on a
# cold cache under load (30,000-run set, load average 6), past the 1 s.
FIRST_BATCH = 50
EVERY = timedelta(days=1)


@dataclass
class Report:
    workspace: str
    executions: int = 0
    steps: int = 0
    artifacts: int = 0
    kept_marked: int = 0
    batches: int = 0
    seconds: float = 0.0
    slowest_batch: float = 0.0
    finished: bool = True
    batch_sizes: list[int] = field(default_factory=list)

    def line(self, dry_run: bool) -> str:
        verb = "would delete" if dry_run else "deleted"
        text = (
            f"{self.workspace}: {verb} {self.executions} run(s), {self.steps} step(s), "
            f"{self.artifacts} artifact(s); kept {self.kept_marked} marked run(s) "
            "(corrections, notes, pins)"
        )
        if not dry_run:
            text += (
                f" in {self.batches} batch(es), {self.seconds:.1f} s, "
                f"slowest batch {self.slowest_batch * 1000:.0f} ms"
            )
            if not self.finished:
                text += "; more remain (time budget reached)"
        return text


def _expired(workspace: Workspace, now: datetime) -> QuerySet[Execution]:
    """Ended runs past their retention, marked or not."""
    overrides = dict(
        Agent.objects.filter(workspace=workspace, retention_days__isnull=False).values_list(
            "pk", "retention_days"
        )
    )
    condition = Q()
    for agent_id, days in overrides.items():
        condition |= Q(agent_id=agent_id, created_at__lt=now - timedelta(days=days))
    if workspace.retention_days is not None:
        condition |= Q(created_at__lt=now - timedelta(days=workspace.retention_days)) & ~Q(
            agent_id__in=list(overrides)
        )
    if not condition:
        return Execution.objects.none()
    return Execution.objects.filter(workspace=workspace, status__in=TERMINAL_STATUSES).filter(
        condition
    )


def _unmarked(runs: QuerySet[Execution]) -> QuerySet[Execution]:
    marks = (FieldCorrection, ExecutionNote, ExecutionPin)
    for model in marks:
        runs = runs.exclude(Exists(model.objects.filter(execution_id=OuterRef("pk"))))
    return runs


def candidates(workspace: Workspace, now: datetime | None = None) -> QuerySet[Execution]:
    """The runs retention deletes in `workspace` now."""
    runs = _expired(workspace, now or timezone.now())
    return _unmarked(runs) if workspace.retention_keep_marked else runs


def _delete_batch(workspace: Workspace, runs: QuerySet[Execution], size: int) -> tuple[int, int]:
    """Deletes up to `size` of `runs` in one transaction; (runs, steps) deleted."""
    with transaction.atomic():
        ids = list(runs.order_by().values_list("pk", flat=True)[:size])
        if not ids:
            return 0, 0
        # Rows, not the ids read above: a run marked meanwhile is no longer in `runs`.
        batch = runs.filter(pk__in=ids)
        tally = Counter(
            {
                (row["agent_name"], row["status"]): row["n"]
                for row in batch.values("agent_name", "status").annotate(n=Count("pk"))
            }
        )
        files = [
            name
            for name in Artifact.objects.filter(execution_id__in=ids).values_list("file", flat=True)
            if name
        ]
        pks = list(batch.values_list("pk", flat=True))
        # Artifacts, then steps in one DELETE per batch: Step has a self-cascade and the
        # artifacts' SET_NULL, so Django's collector cannot fast-delete it and would read
        # every step id into Python and delete them in chunks (measured: ~140 runs/s with
        # 10 steps each). The triggers (search rows, rollups) still fire per row.
        Artifact.objects.filter(execution_id__in=pks).delete()
        steps = Step.objects.filter(execution_id__in=pks)._raw_delete(Step.objects.db)
        # Only the ids: the collector needs nothing else (no delete signals on runs), and
        # it read whole rows, inputs and outputs included (190 ms for one run at load 20).
        _, deleted = Execution.objects.filter(pk__in=pks).only("pk").delete()
        for (agent_name, status), n in tally.items():
            counters._bump(workspace.pk, agent_name, status, -n)
        transaction.on_commit(lambda: _delete_files(files))
    return deleted.get("executions.Execution", 0), steps


def next_batch_size(size: int, took: float, overhead: float) -> int:
    """The next batch's size, from how long a batch of `size` took.

    A batch costs a fixed part (its ~20 statements, the Python around them) plus a part
    per run, and only the second shrinks with the batch. So the size aims the per-run
    part at what the aim leaves after the fixed part (estimated as the quickest batch so
    far): TARGET_BATCH_SECONDS, or twice the fixed part when a starved CPU makes that
    more than half the target. Halving on every batch over the target collapsed to one
    run per batch there (1.5 runs/s on the 1,000,000-run set at load average 16). A
    batch over SLOW_BATCH_SECONDS (the issue's 1 s) is halved whatever the estimate; a
    size changes by at most a factor of 2 per batch.
    """
    aim = TARGET_BATCH_SECONDS
    if overhead > aim / 2:
        aim = min(2 * overhead, 0.8 * SLOW_BATCH_SECONDS)
    if took > SLOW_BATCH_SECONDS:
        wanted = size // 2
    elif took <= overhead or overhead >= aim:
        # All fixed cost: a smaller batch would not be quicker, only do less.
        wanted = size * 2 if took < aim else size
    else:
        per_run = (took - overhead) / size
        wanted = int((aim - overhead) / per_run)
    return max(MIN_BATCH, min(MAX_BATCH, size * 2, max(size // 2, wanted)))


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            # The row is gone; a file that cannot be removed now is logged, not fatal.
            logger.warning("retention: could not delete the file %s", name, exc_info=True)


def apply(
    workspace: Workspace,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = FIRST_BATCH,
    budget_seconds: float | None = None,
) -> Report:
    """Applies retention to one workspace (or, dry, counts what it would delete)."""
    now = now or timezone.now()
    report = Report(workspace=workspace.slug)
    runs = candidates(workspace, now)
    if workspace.retention_keep_marked:
        expired = _expired(workspace, now)
        report.kept_marked = expired.count() - runs.count()
    if dry_run:
        totals = runs.aggregate(n=Count("pk"), steps=Sum("step_count"))
        report.executions, report.steps = totals["n"], totals["steps"] or 0
        report.artifacts = Artifact.objects.filter(execution__in=runs).count()
        return report
    report.artifacts = Artifact.objects.filter(execution__in=runs).count()
    started = time.perf_counter()
    size = max(MIN_BATCH, min(batch_size, MAX_BATCH))
    overhead = float("inf")  # the quickest batch so far: what any batch costs
    while True:
        if budget_seconds is not None and time.perf_counter() - started > budget_seconds:
            report.finished = not runs.exists()
            break
        batch_started = time.perf_counter()
        deleted, steps = _delete_batch(workspace, runs, size)
        if not deleted:
            break
        took = time.perf_counter() - batch_started
        report.executions += deleted
        report.steps += steps
        report.batches += 1
        report.batch_sizes.append(size)
        report.slowest_batch = max(report.slowest_batch, took)
        overhead = min(overhead, took)
        size = next_batch_size(size, took, overhead)
    report.seconds = time.perf_counter() - started
    return report


def _configured() -> QuerySet[Workspace]:
    return Workspace.objects.filter(
        Q(retention_days__isnull=False)
        | Exists(Agent.objects.filter(workspace=OuterRef("pk"), retention_days__isnull=False))
    )


def sweep(*, now: datetime | None = None, budget_seconds: float = 2.0) -> list[Report]:
    """The scheduler's daily pass: each workspace with retention whose turn has come is
    claimed for a day (compare-and-set, so two schedulers never both take it) and
    applied within the round's time budget; one left unfinished is due again next round."""
    now = now or timezone.now()
    due = Q(retention_next_at__isnull=True) | Q(retention_next_at__lte=now)
    reports = []
    started = time.perf_counter()
    for workspace in _configured().filter(due):
        left = budget_seconds - (time.perf_counter() - started)
        if left <= 0:
            break
        if not Workspace.objects.filter(due, pk=workspace.pk).update(retention_next_at=now + EVERY):
            continue
        report = apply(workspace, now=now, budget_seconds=left)
        if not report.finished:
            Workspace.objects.filter(pk=workspace.pk).update(retention_next_at=now)
        reports.append(report)
    return reports
