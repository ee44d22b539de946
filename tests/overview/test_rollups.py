"""The hourly rollups equal a recomputation from scratch after every write path."""

import io
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Sum

from agents.models import AgentVersion
from executions import lifecycle
from executions.models import Execution, Source, Status
from executions.overview import histogram, rollups
from executions.overview.models import DurationRollup, RunRollup
from tests.factories import (
    AgentVersionFactory,
    ExecutionFactory,
    ScheduleFactory,
    WorkspaceFactory,
)

from .recompute import assert_rollups_exact

pytestmark = pytest.mark.django_db
on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="load_bench writes with COPY, which needs PostgreSQL",
)

T0 = datetime(2026, 3, 1, 10, 15, tzinfo=UTC)


def test_orm_inserts_are_rolled_up_by_hour_version_source_and_status(agent_version):
    other = AgentVersionFactory(agent=agent_version.agent, version="v2")
    ExecutionFactory(agent_version=agent_version, created_at=T0)
    ExecutionFactory(agent_version=agent_version, created_at=T0 + timedelta(minutes=40))
    ExecutionFactory(agent_version=other, created_at=T0, status=Status.FAILED, credits=None)
    ExecutionFactory(agent_version=agent_version, created_at=T0, source=Source.SCHEDULE)
    ExecutionFactory(agent_version=None, agent=None, workspace=agent_version.agent.workspace)
    assert_rollups_exact()
    hour = RunRollup.objects.get(
        agent_version_id=agent_version.pk, source=Source.API, status=Status.COMPLETED
    )
    assert (hour.hour, hour.runs, hour.timed_runs, hour.duration_ms) == (
        T0.replace(minute=0),
        2,
        2,
        6000,
    )
    assert hour.cost_usd == Decimal("0.0246") and hour.credits == Decimal("3")
    failed = RunRollup.objects.get(agent_version_id=other.pk)
    assert (failed.credits, failed.credited_runs) == (0, 0)


def test_lifecycle_transitions_move_runs_between_statuses(agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.PENDING)
    assert_rollups_exact()
    lifecycle.transition(execution, Status.RUNNING)
    assert_rollups_exact()
    lifecycle.transition(execution, Status.AWAITING_APPROVAL)
    lifecycle.transition(execution, Status.RUNNING)
    lifecycle.transition(execution, Status.FAILED, error="Tool timeout after 30s")
    assert_rollups_exact()
    rows = RunRollup.objects.exclude(runs=0)
    assert [(r.status, r.runs, r.timed_runs) for r in rows] == [(Status.FAILED, 1, 1)]
    assert DurationRollup.objects.exclude(runs=0).count() == 1


def test_updates_bulk_creates_and_deletes(agent_version):
    workspace = agent_version.agent.workspace
    made = ExecutionFactory.create_batch(4, agent_version=agent_version, created_at=T0)
    Execution.objects.bulk_create(
        [
            Execution(
                workspace=workspace,
                agent_name="bulk",
                created_at=T0 + timedelta(hours=h),
                duration_ms=h * 997,
                total_tokens=h,
                cost_usd=Decimal("0.000001"),
            )
            for h in range(5)
        ]
    )
    assert_rollups_exact()
    Execution.objects.filter(pk=made[0].pk).update(
        total_tokens=1234, cost_usd=Decimal("1.5"), credits=None
    )
    Execution.objects.filter(agent_name="bulk").update(duration_ms=None)
    made[1].created_at = T0 - timedelta(days=3)
    made[1].save()
    made[2].output = {"changed": True}
    made[2].save()  # nothing rolled up changed: the rollups stay as they are
    assert_rollups_exact()
    made[3].delete()
    Execution.objects.filter(agent_name="bulk", created_at__gte=T0 + timedelta(hours=2)).delete()
    assert_rollups_exact()


def test_deleting_a_version_or_schedule_moves_its_runs_to_none(agent_version):
    schedule = ScheduleFactory(workspace=agent_version.agent.workspace, agent_version=agent_version)
    ExecutionFactory.create_batch(3, agent_version=agent_version, schedule=schedule)
    schedule.delete()
    assert_rollups_exact()
    AgentVersion.objects.filter(pk=agent_version.pk).delete()
    assert_rollups_exact()
    assert set(
        RunRollup.objects.exclude(runs=0).values_list("agent_version_id", "schedule_id")
    ) == {(0, 0)}


def test_a_rolled_back_write_leaves_the_rollups_as_they_were(agent_version):
    ExecutionFactory(agent_version=agent_version)
    with pytest.raises(RuntimeError), transaction.atomic():
        ExecutionFactory.create_batch(3, agent_version=agent_version)
        raise RuntimeError("rolled back")
    assert_rollups_exact()
    assert sum(RunRollup.objects.values_list("runs", flat=True)) == 1


def test_the_json_api_write_path(api, workspace):
    response = api.post(
        "/api/v1/executions",
        {"agent": "invoice-extractor:v1", "input": {}, "status": "running"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    pk = response.json()["execution_id"]
    steps = [
        {
            "span_id": "s1",
            "kind": "model_call",
            "model": "gpt-4o-mini",
            "prompt_tokens": 450,
            "completion_tokens": 120,
        }
    ]
    response = api.post(
        f"/api/v1/executions/{pk}/steps", {"steps": steps}, content_type="application/json"
    )
    assert response.status_code in (200, 201), response.content
    assert_rollups_exact()
    response = api.patch(
        f"/api/v1/executions/{pk}",
        {"status": "completed", "cost": 0.0123, "credits": 2},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert_rollups_exact()
    row = RunRollup.objects.get(status=Status.COMPLETED)
    assert (row.runs, row.credits, row.cost_usd) == (1, 2, Decimal("0.0123"))


@on_postgres
def test_load_bench_copy_is_rolled_up():
    WorkspaceFactory(slug="someone-else")  # keeps load_bench from truncating
    call_command(
        "load_bench", "--executions", "300", "--steps-per-execution", "2", stdout=io.StringIO()
    )
    assert Execution.objects.count() == 300
    assert_rollups_exact()
    call_command(
        "load_bench",
        "--executions",
        "120",
        "--steps-per-execution",
        "1",
        "--reset",
        stdout=io.StringIO(),
    )
    assert_rollups_exact()


@on_postgres
def test_truncating_the_executions_empties_the_rollups(agent_version):
    ExecutionFactory.create_batch(2, agent_version=agent_version)
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE executions_execution CASCADE")
    assert not RunRollup.objects.exists() and not DurationRollup.objects.exists()


def test_rebuild_repairs_one_workspace_and_leaves_the_others(agent_version, other_workspace):
    ExecutionFactory.create_batch(3, agent_version=agent_version)
    theirs = AgentVersionFactory(agent__workspace=other_workspace)
    ExecutionFactory.create_batch(2, agent_version=theirs)
    RunRollup.objects.update(runs=99)
    DurationRollup.objects.all().delete()
    rollups.rebuild(agent_version.agent.workspace_id)
    mine = RunRollup.objects.filter(workspace_id=agent_version.agent.workspace_id)
    assert sum(r.runs for r in mine) == 3
    assert set(
        RunRollup.objects.filter(workspace_id=other_workspace.pk).values_list("runs", flat=True)
    ) == {99}
    out = io.StringIO()
    call_command("rebuild_rollups", stdout=out)
    assert "Rebuilt the overview rollups of every workspace" in out.getvalue()
    assert_rollups_exact()


def test_rebuild_rollups_names_an_unknown_workspace():
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="--workspace: no workspace with the slug 'nope'"):
        call_command("rebuild_rollups", "--workspace", "nope", stdout=io.StringIO())


def test_histogram_percentiles_stay_within_five_percent_of_the_exact_value():
    rng = random.Random(17)
    for shape in range(20):
        values = [int(rng.lognormvariate(7 + shape % 5, 1.5)) for _ in range(2000)]
        values += [0] * (shape % 3)
        counts: dict[int, int] = {}
        for v in values:
            counts[histogram.bucket_of(v)] = counts.get(histogram.bucket_of(v), 0) + 1
        estimates = histogram.percentiles(counts)
        for q, estimate in estimates.items():
            exact = histogram.nearest_rank(values, q)
            assert abs(estimate - exact) <= 0.045 * exact, (shape, q, estimate, exact)


def test_the_sql_bucket_formula_agrees_with_python(agent_version):
    durations = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 999, 1000, 1024, 65536, 10**6, 10**10]
    for d in durations:
        ExecutionFactory(agent_version=agent_version, duration_ms=d, created_at=T0)
    buckets = sorted(DurationRollup.objects.values_list("bucket", flat=True))
    assert buckets == sorted({histogram.bucket_of(d) for d in durations})
    assert histogram.bucket_of(10**10) == histogram.LAST


def test_error_messages_are_grouped_with_their_variable_parts_normalized(agent_version):
    from executions.overview.errors import normalize
    from executions.overview.models import ErrorGroupHour

    messages = [
        "OrderServiceError: 504 Gateway Timeout from orders.internal after 10012 ms",
        "OrderServiceError: 504 Gateway Timeout from orders.internal after 10062 ms",
        "KeyError: 'customer_7' in record 3f2b1c9e-0d4a-4c3b-9a8e-1234567890ab",
        'KeyError: "acme" in record 0b8c3e2f-1111-4222-8333-abcdefabcdef',
        "Checksum deadbeefcafe1234 mismatch",
    ]
    for message in messages:
        execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
        lifecycle.transition(execution, Status.FAILED, error=message)
    assert_rollups_exact()
    groups = dict(
        ErrorGroupHour.objects.values_list("error_group").annotate(n=Sum("runs")).order_by()
    )
    assert groups == {
        "OrderServiceError: N Gateway Timeout from orders.internal after N ms": 2,
        "KeyError: '?' in record <id>": 1,
        'KeyError: "?" in record <id>': 1,
        "Checksum <id> mismatch": 1,
    }
    assert normalize("x" * 500) == "x" * 200
    Execution.objects.filter(error__startswith="Checksum").update(error="")
    assert_rollups_exact()
