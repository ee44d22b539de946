"""The tool and model call rollups equal a recomputation from the steps after every
write path: ORM, bulk_create, the JSON API (which writes with COPY on PostgreSQL),
updates, deletes."""

import io
from collections import Counter, defaultdict
from datetime import UTC
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from executions.models import Execution, Step
from executions.overview.histogram import bucket_of
from executions.overview.models import StepDurationHour, StepHour
from tests.factories import ExecutionFactory, StepFactory

from .recompute import assert_daily_tier_exact

pytestmark = pytest.mark.django_db
SUMS = [
    "calls",
    "failed",
    "timed_calls",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
]


def expected():
    hours: dict = defaultdict(lambda: dict.fromkeys(SUMS, 0))
    durations: Counter = Counter()
    for s in Step.objects.select_related("execution").filter(kind__in=["tool_call", "model_call"]):
        hour = s.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        key = (s.execution.workspace_id, hour, s.kind, s.name[:200], s.model)
        row = hours[key]
        row["calls"] += 1
        row["failed"] += s.status in ("failed", "timed_out")
        row["timed_calls"] += s.duration_ms is not None
        row["duration_ms"] += s.duration_ms or 0
        row["prompt_tokens"] += s.prompt_tokens
        row["completion_tokens"] += s.completion_tokens
        row["cost_usd"] += s.cost_usd
        if s.duration_ms is not None:
            durations[(*key, bucket_of(s.duration_ms))] += 1
    return _normal(hours), dict(durations)


def _normal(rows):
    return {
        k: {
            c: Decimal(v).quantize(Decimal("1e-12")) if c == "cost_usd" else v
            for c, v in row.items()
        }
        for k, row in rows.items()
        if any(row.values())
    }


def actual():
    hours = {
        (h.workspace_id, h.hour.astimezone(UTC), h.kind, h.name, h.model): {
            c: getattr(h, c) for c in SUMS
        }
        for h in StepHour.objects.all()
    }
    durations = {
        (d.workspace_id, d.hour.astimezone(UTC), d.kind, d.name, d.model, d.bucket): d.calls
        for d in StepDurationHour.objects.exclude(calls=0)
    }
    return _normal(hours), durations


def expected_per_run():
    """The per-run step rollups: the same, keyed by the run's agent, version, source and
    schedule (as they are now) too."""
    hours: dict = defaultdict(lambda: dict.fromkeys(SUMS, 0))
    durations: Counter = Counter()
    for s in Step.objects.select_related("execution").filter(kind__in=["tool_call", "model_call"]):
        e = s.execution
        hour = s.created_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        run = (e.agent_name, e.agent_version_id or 0, e.source, e.schedule_id or 0)
        key = (e.workspace_id, hour, *run, s.kind, s.name[:200], s.model)
        row = hours[key]
        row["calls"] += 1
        row["failed"] += s.status in ("failed", "timed_out")
        row["timed_calls"] += s.duration_ms is not None
        row["duration_ms"] += s.duration_ms or 0
        row["prompt_tokens"] += s.prompt_tokens
        row["completion_tokens"] += s.completion_tokens
        row["cost_usd"] += s.cost_usd
        if s.duration_ms is not None:
            durations[(*key, bucket_of(s.duration_ms))] += 1
    return _normal(hours), dict(durations)


def actual_per_run():
    from executions.overview.models import StepRunDurationHour, StepRunHour

    def key(r):
        return (
            r.workspace_id,
            r.hour.astimezone(UTC),
            r.agent_name,
            r.agent_version_id,
            r.source,
            r.schedule_id,
            r.kind,
            r.name,
            r.model,
        )

    hours = {key(h): {c: getattr(h, c) for c in SUMS} for h in StepRunHour.objects.all()}
    durations = {(*key(d), d.bucket): d.calls for d in StepRunDurationHour.objects.exclude(calls=0)}
    return _normal(hours), durations


def assert_exact():
    assert actual() == expected()
    assert actual_per_run() == expected_per_run()
    assert_daily_tier_exact()


def test_a_runs_steps_move_when_its_version_schedule_or_source_changes(agent_version):
    from executions.models import Source
    from tests.factories import AgentVersionFactory, ScheduleFactory

    schedule = ScheduleFactory(workspace=agent_version.agent.workspace, agent_version=agent_version)
    runs = ExecutionFactory.create_batch(3, agent_version=agent_version, schedule=schedule)
    for i, run in enumerate(runs):
        StepFactory(execution=run, sequence=1, kind="tool_call", name="t", duration_ms=10 + i)
        StepFactory(execution=run, sequence=2, kind="model_call", model="m", duration_ms=99)
    assert_exact()
    Execution.objects.filter(pk=runs[0].pk).update(source=Source.OTLP)
    assert_exact()
    schedule.delete()  # SET NULL on its runs
    assert_exact()
    other = AgentVersionFactory(agent=agent_version.agent, version="v2")
    Execution.objects.filter(pk=runs[1].pk).update(agent_version=other)
    agent_version.delete()  # SET NULL on the rest
    assert_exact()
    from executions.overview.models import StepRunHour

    rows = set(StepRunHour.objects.exclude(calls=0).values_list("agent_version_id", "schedule_id"))
    assert rows == {(0, 0), (other.pk, 0)}


def test_orm_updates_and_deletes(agent_version):
    execution = ExecutionFactory(agent_version=agent_version)
    tool = StepFactory(
        execution=execution,
        sequence=1,
        kind="tool_call",
        name="lookup_vendor",
        duration_ms=120,
        status="running",
    )
    StepFactory(
        execution=execution,
        sequence=2,
        kind="model_call",
        model="gpt-4o-mini",
        prompt_tokens=450,
        completion_tokens=120,
        cost_usd=Decimal("0.000123456789"),
        duration_ms=900,
    )
    StepFactory(execution=execution, sequence=3, kind="thought")  # not rolled up
    assert_exact()
    assert StepHour.objects.count() == 2
    tool.status = "failed"
    tool.duration_ms = 30000
    tool.save()
    Step.objects.filter(kind="model_call").update(completion_tokens=7)
    assert_exact()
    assert StepHour.objects.get(name="lookup_vendor").failed == 1
    Step.objects.bulk_create(
        [
            Step(
                execution=execution,
                sequence=10 + i,
                kind="tool_call",
                name="search",
                duration_ms=10 * i,
            )
            for i in range(5)
        ]
    )
    assert_exact()
    Execution.objects.filter(pk=execution.pk).delete()
    assert_exact()
    assert sum(StepHour.objects.values_list("calls", flat=True)) == 0


def test_the_json_api_write_path(api, workspace):
    response = api.post(
        "/api/v1/executions",
        {"agent": "a:v1", "input": {}, "status": "running"},
        content_type="application/json",
    )
    pk = response.json()["execution_id"]
    steps = [
        {
            "span_id": "s1",
            "kind": "model_call",
            "model": "gpt-4o-mini",
            "prompt_tokens": 450,
            "completion_tokens": 120,
        },
        {"span_id": "s2", "kind": "tool_call", "name": "lookup_vendor", "status": "running"},
    ]
    response = api.post(
        f"/api/v1/executions/{pk}/steps", {"steps": steps}, content_type="application/json"
    )
    assert response.status_code in (200, 201), response.content
    assert_exact()
    # The tool call reported again, ended: the same step updated.
    response = api.post(
        f"/api/v1/executions/{pk}/steps",
        {
            "steps": [
                {
                    "span_id": "s2",
                    "kind": "tool_call",
                    "name": "lookup_vendor",
                    "status": "failed",
                    "error": "boom",
                }
            ]
        },
        content_type="application/json",
    )
    assert response.status_code in (200, 201), response.content
    assert_exact()
    assert StepHour.objects.get(name="lookup_vendor").failed == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="load_bench COPY needs PostgreSQL")
def test_load_bench_copy_of_steps_is_rolled_up():
    from tests.factories import WorkspaceFactory

    WorkspaceFactory(slug="someone-else")
    call_command(
        "load_bench", "--executions", "150", "--steps-per-execution", "4", stdout=io.StringIO()
    )
    assert_exact()
    assert StepHour.objects.exists()


def test_rebuild_recomputes_the_step_rollups(agent_version):
    execution = ExecutionFactory(agent_version=agent_version)
    StepFactory(execution=execution, sequence=1, kind="tool_call", name="x", duration_ms=5)
    StepHour.objects.update(calls=99)
    call_command("rebuild_rollups", stdout=io.StringIO())
    assert_exact()


def test_a_run_deleted_before_its_steps_breaks_nothing(agent_version):
    """A flush (every test's teardown on SQLite) empties tables in any order: deleting a
    run's steps after the run itself must not fail the rollup trigger."""
    kept = ExecutionFactory(agent_version=agent_version)
    StepFactory(execution=kept, kind="tool_call", name="search", duration_ms=40)
    gone = ExecutionFactory(agent_version=agent_version)
    StepFactory(execution=gone, kind="tool_call", name="search", duration_ms=900)
    pk = Execution._meta.pk.get_db_prep_value(gone.pk, connection)
    with connection.cursor() as cursor:
        # Django's foreign keys are deferred, as a flush relies on.
        cursor.execute("DELETE FROM executions_execution WHERE id = %s", [pk])
        cursor.execute("DELETE FROM executions_step WHERE execution_id = %s", [pk])
    assert not Step.objects.filter(execution_id=gone.pk).exists()
    # The kept run's call is still counted.
    assert StepHour.objects.filter(name="search").values_list("calls", flat=True).first() >= 1
