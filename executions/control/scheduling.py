"""The control plane's periodic work, done by each round of `manage.py runboard_scheduler`:
time out executions past their version's time limit, fire due schedules (with the
missed-runs policy), and put webhook tasks abandoned by dead workers back in the queue.
"""

import logging
from datetime import datetime, timedelta

from croniter import croniter
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents.models import AgentVersion, Schedule
from executions import counters, lifecycle
from executions.models import Execution, Priority, Source, Status

from . import dispatch
from . import services as control

logger = logging.getLogger(__name__)

# Runs that fell due more than this long ago count as missed rather than just late.
SCHEDULE_GRACE = timedelta(seconds=60)
# Counting missed cron runs stops here, so a minutely cron down for a year stays cheap.
MISSED_COUNT_CAP = 10_000


def timeouts_sweep(*, now: datetime | None = None) -> int:
    """Time out executions that have worked past their version's time limit.

    The clock runs from when the runtime started (or, while still queued, from when
    it was queued) and restarts at an approval decision: time spent waiting for a
    person is not the runtime's time. Executions awaiting approval are left alone.
    """
    now = now or timezone.now()
    active = Execution.objects.filter(
        status__in=[Status.QUEUED, Status.RUNNING], agent_version__isnull=False
    ).annotate(clock=Coalesce("decided_at", "started_at", "queued_at", "created_at"))
    limits = (
        AgentVersion.objects.filter(executions__status__in=[Status.QUEUED, Status.RUNNING])
        .values_list("pk", "time_limit_seconds")
        .distinct()
    )
    timed_out = 0
    for version_id, limit in limits:
        cutoff = now - timedelta(seconds=limit)
        overdue = active.filter(agent_version_id=version_id, clock__lt=cutoff).select_related(
            "agent_version"
        )
        for execution in overdue.iterator(chunk_size=500):
            was = execution.status
            reason = (
                f"Timed out: {'ran' if was == Status.RUNNING else 'waited in the queue'} "
                f"longer than the time limit of {limit} s of {execution.agent_label}."
            )
            try:
                with transaction.atomic():
                    notify = control._has_reached_runtime(execution)
                    lifecycle.transition(
                        execution, Status.TIMED_OUT, at=now, failure_reason=reason, by="time limit"
                    )
                    if notify:
                        # Tell the runtime to stop working on it, as for a cancel.
                        dispatch.enqueue_delivery(execution, dispatch.Event.CANCEL)
            except lifecycle.IllegalTransition:
                continue  # finished while we looked: its own status stands
            timed_out += 1
    return timed_out


def schedule_next_after(schedule: Schedule, after: datetime) -> datetime:
    """The first run strictly after `after` (cron in the server's time zone)."""
    if schedule.cron:
        base = timezone.localtime(after)
        return croniter(schedule.cron, base).get_next(datetime)
    return after + timedelta(seconds=schedule.interval_seconds or 60)


def schedule_validate(*, cron: str = "", interval_seconds: int | None = None) -> None:
    if cron and not croniter.is_valid(cron):
        raise control.InvalidRequest(f"cron: {cron!r} is not a cron expression (e.g. 0 7 * * 1-5).")
    if not cron and not interval_seconds:
        raise control.InvalidRequest(
            "A schedule needs a cron expression or an interval in seconds."
        )
    if interval_seconds is not None and interval_seconds < 1:
        raise control.InvalidRequest("interval_seconds: must be at least 1.")


def schedule_set_enabled(*, schedule: Schedule, enabled: bool) -> Schedule:
    """Enable or disable; enabling starts the clock afresh, so time spent disabled is
    never caught up (disabled means not wanted, unlike a scheduler that was down)."""
    schedule.enabled = enabled
    schedule.next_run_at = schedule_next_after(schedule, timezone.now()) if enabled else None
    schedule.save(update_fields=["enabled", "next_run_at"])
    return schedule


def _due_times(schedule: Schedule, now: datetime) -> tuple[int, datetime, datetime]:
    """(how many runs fell due since next_run_at, the latest of them, the next one after now)."""
    count, latest, due = 0, schedule.next_run_at, schedule.next_run_at
    while due <= now and count < MISSED_COUNT_CAP:
        count, latest = count + 1, due
        due = schedule_next_after(schedule, due)
    if due <= now:  # capped: jump straight past now
        due = schedule_next_after(schedule, now)
    return count, latest, due


def schedules_fire(*, now: datetime | None = None) -> list[Execution]:
    """Fire every enabled schedule that is due; returns the executions started.

    Missed runs (due longer ago than SCHEDULE_GRACE, i.e. the scheduler was down):
    - run_once: one catch-up execution stands for all of them (metadata says how many);
    - skip: none of them run; only a run that is due right now fires.
    Either way at most one execution per schedule per tick, and next_run_at moves past now.
    A schedule without next_run_at (new, or made in admin) starts its clock now.

    Several schedulers may run at once: next_run_at is advanced by compare-and-set, so
    only one of them fires a given run.
    """
    now = now or timezone.now()
    started: list[Execution] = []
    unprimed = Schedule.objects.filter(enabled=True, next_run_at__isnull=True)
    for schedule in unprimed:
        Schedule.objects.filter(pk=schedule.pk, next_run_at__isnull=True).update(
            next_run_at=schedule_next_after(schedule, now)
        )
    due = Schedule.objects.filter(enabled=True, next_run_at__lte=now).select_related(
        "agent_version__agent", "workspace"
    )
    for schedule in due:
        count, latest, following = _due_times(schedule, now)
        on_time = latest > now - SCHEDULE_GRACE
        missed = count - 1 if on_time else count
        fire = on_time or schedule.missed_runs == Schedule.MissedRuns.RUN_ONCE
        with transaction.atomic():
            claimed = Schedule.objects.filter(
                pk=schedule.pk, next_run_at=schedule.next_run_at, enabled=True
            ).update(next_run_at=following, last_run_at=now if fire else F("last_run_at"))
            if not claimed:
                continue  # another scheduler fired it, or it was disabled meanwhile
            if missed:
                logger.info(
                    "Schedule %s missed %s run(s) while the scheduler was down (%s).",
                    schedule.pk,
                    missed,
                    schedule.missed_runs,
                )
            if fire:
                started.append(_schedule_run(schedule, now=now, due_at=latest, missed=missed))
    return started


def _schedule_run(schedule: Schedule, *, now: datetime, due_at: datetime, missed: int):
    metadata = {"schedule": schedule.name, "scheduled_for": due_at.isoformat()}
    if missed:
        metadata["missed_runs"] = missed
        metadata["catch_up"] = schedule.missed_runs == Schedule.MissedRuns.RUN_ONCE
    try:
        return control.execution_execute(
            workspace=schedule.workspace,
            agent_version=schedule.agent_version,
            inputs=schedule.inputs,
            metadata=metadata,
            source=Source.SCHEDULE,
            schedule=schedule,
        )
    except control.InvalidRequest as exc:
        # A schedule whose fixed inputs no longer fit the schema: make the failure
        # visible in the table rather than silently never running.
        execution = control._execution_new(
            agent_version=schedule.agent_version,
            inputs=schedule.inputs if isinstance(schedule.inputs, dict) else {},
            priority=Priority.NORMAL,
            metadata=metadata,
            source=Source.SCHEDULE,
            status=Status.PENDING,
            schedule=schedule,
        )
        execution.save(force_insert=True)
        counters.count_created([execution])
        reason = f"Schedule {schedule.name!r} could not start: " + " ".join(exc.messages)
        return lifecycle.transition(execution, Status.FAILED, error=reason, failure_reason=reason)


def tick(*, now: datetime | None = None) -> dict:
    """One round of the scheduler loop: fire schedules, sweep timeouts, reclaim tasks."""
    fired = schedules_fire(now=now)
    timed_out = timeouts_sweep(now=now)
    reclaimed = dispatch.tasks_reclaim()
    return {"fired": len(fired), "timed_out": timed_out, "reclaimed": reclaimed}
