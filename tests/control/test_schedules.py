"""Schedules: cron and interval, next_run_at, and runs missed while the scheduler was down."""

from datetime import UTC, datetime, timedelta

import pytest

from agents.models import Schedule
from executions.control import scheduling
from executions.control import services as control
from executions.models import Execution, Source, Status

from ..factories import ScheduleFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 3, 7, 0, tzinfo=UTC)  # a Monday, 07:00


@pytest.fixture
def daily(hooked_version):
    return ScheduleFactory(
        agent_version=hooked_version,
        name="Morning invoices",
        cron="0 7 * * *",
        inputs={"file": "s3://inbox/today.pdf"},
        next_run_at=T0,
    )


def test_a_due_schedule_fires_once_and_moves_to_its_next_run(daily):
    [execution] = scheduling.schedules_fire(now=T0 + timedelta(seconds=5))
    assert execution.schedule == daily and execution.source == Source.SCHEDULE
    assert execution.status == Status.QUEUED
    assert execution.input == {"file": "s3://inbox/today.pdf"}
    assert execution.metadata == {
        "schedule": "Morning invoices",
        "scheduled_for": T0.isoformat(),
    }
    daily.refresh_from_db()
    assert daily.next_run_at == T0 + timedelta(days=1)
    assert daily.last_run_at == T0 + timedelta(seconds=5)
    # The same tick again, or a second scheduler at the same moment, fires nothing.
    assert scheduling.schedules_fire(now=T0 + timedelta(seconds=6)) == []


def test_nothing_fires_before_it_is_due(daily):
    assert scheduling.schedules_fire(now=T0 - timedelta(seconds=1)) == []
    assert not Execution.objects.exists()


def test_an_interval_schedule(hooked_version):
    every_ten = ScheduleFactory(
        agent_version=hooked_version, cron="", interval_seconds=600, inputs={"file": "x"},
        next_run_at=T0,
    )  # fmt: skip
    assert len(scheduling.schedules_fire(now=T0)) == 1
    every_ten.refresh_from_db()
    assert every_ten.next_run_at == T0 + timedelta(minutes=10)
    assert every_ten.describe == "every 600 s"


def test_a_new_schedule_starts_its_clock_without_running(hooked_version):
    fresh = ScheduleFactory(agent_version=hooked_version, cron="*/15 * * * *", next_run_at=None)
    assert scheduling.schedules_fire(now=T0 + timedelta(minutes=3)) == []
    fresh.refresh_from_db()
    assert fresh.next_run_at == T0 + timedelta(minutes=15)


def test_missed_runs_with_run_once_fire_one_catch_up(daily):
    daily.missed_runs = Schedule.MissedRuns.RUN_ONCE
    daily.save()
    back_up = T0 + timedelta(days=3, hours=2)  # down over four 07:00 runs, back at 09:00

    [execution] = scheduling.schedules_fire(now=back_up)

    assert execution.metadata["missed_runs"] == 4
    assert execution.metadata["catch_up"] is True
    assert execution.metadata["scheduled_for"] == (T0 + timedelta(days=3)).isoformat()
    daily.refresh_from_db()
    assert daily.next_run_at == T0 + timedelta(days=4)
    assert Execution.objects.count() == 1


def test_missed_runs_with_skip_fire_nothing(daily):
    daily.missed_runs = Schedule.MissedRuns.SKIP
    daily.save()

    assert scheduling.schedules_fire(now=T0 + timedelta(days=3, hours=2)) == []

    daily.refresh_from_db()
    assert daily.next_run_at == T0 + timedelta(days=4)
    assert daily.last_run_at is None
    # Back on time the next day, it runs as usual.
    assert len(scheduling.schedules_fire(now=T0 + timedelta(days=4, seconds=2))) == 1


def test_skip_still_runs_the_run_that_is_due_now(hooked_version):
    hourly = ScheduleFactory(
        agent_version=hooked_version, cron="0 * * * *", inputs={"file": "x"},
        missed_runs=Schedule.MissedRuns.SKIP, next_run_at=T0,
    )  # fmt: skip
    # Down from 07:00 to 10:00:10: 07, 08 and 09 were missed, 10:00 is due now.
    [execution] = scheduling.schedules_fire(now=T0 + timedelta(hours=3, seconds=10))
    assert execution.metadata["missed_runs"] == 3
    assert execution.metadata["catch_up"] is False
    assert execution.metadata["scheduled_for"] == (T0 + timedelta(hours=3)).isoformat()
    hourly.refresh_from_db()
    assert hourly.next_run_at == T0 + timedelta(hours=4)


def test_disabled_schedules_do_not_fire_and_enabling_restarts_the_clock(daily):
    scheduling.schedule_set_enabled(schedule=daily, enabled=False)
    daily.refresh_from_db()
    assert daily.next_run_at is None
    assert scheduling.schedules_fire(now=T0 + timedelta(days=2)) == []

    scheduling.schedule_set_enabled(schedule=daily, enabled=True)
    daily.refresh_from_db()
    assert daily.enabled and daily.next_run_at > T0 + timedelta(days=2)


def test_inputs_that_no_longer_fit_the_schema_fail_visibly(daily):
    daily.inputs = {"pages": 3}
    daily.save()
    [execution] = scheduling.schedules_fire(now=T0)
    execution.refresh_from_db()
    assert execution.status == Status.FAILED
    assert execution.schedule == daily
    assert "'file' is a required property" in execution.failure_reason
    assert execution.failure_reason.startswith("Schedule 'Morning invoices' could not start")


def test_bad_cron_is_refused_with_the_field_named():
    with pytest.raises(control.InvalidRequest, match="cron: '61 \\* \\* \\* \\*' is not a cron"):
        scheduling.schedule_validate(cron="61 * * * *")
    with pytest.raises(control.InvalidRequest, match="needs a cron expression or an interval"):
        scheduling.schedule_validate()


def test_the_tick_does_all_periodic_work(daily):
    result = scheduling.tick(now=T0)
    assert result == {"fired": 1, "timed_out": 0, "reclaimed": 0}
