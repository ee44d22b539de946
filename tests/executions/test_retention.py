"""Retention: which runs go, which stay, and that every count stays exact."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.utils import timezone

from executions import counters, retention
from executions.models import (
    Artifact,
    Execution,
    ExecutionCounter,
    ExecutionPin,
    ExecutionSearch,
    Status,
    Step,
)
from executions.overview import rollups, step_rollups
from executions.overview.models import (
    AgentHour,
    DurationHour,
    DurationRollup,
    ErrorGroupHour,
    RunRollup,
    StatusHour,
    StepDurationHour,
    StepHour,
)

from ..factories import (
    AgentVersionFactory,
    ArtifactFactory,
    ExecutionFactory,
    ExecutionNoteFactory,
    FieldCorrectionFactory,
    StepFactory,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def old(version, days=40, **kwargs):
    return ExecutionFactory(agent_version=version, created_at=NOW - timedelta(days=days), **kwargs)


@pytest.fixture
def kept_30_days(workspace):
    workspace.retention_days = 30
    workspace.save()
    return workspace


@pytest.fixture
def version(kept_30_days):
    return AgentVersionFactory(agent__workspace=kept_30_days, agent__name="invoice-extractor")


def snapshot(model, workspace):
    """The rollup rows that count something (a delete leaves a row at zero behind)."""
    counted = "calls" if model in STEP_ROLLUPS else "runs"
    return sorted(
        tuple(v for k, v in row.items() if k != "id")
        for row in model.objects.filter(workspace_id=workspace.pk).exclude(**{counted: 0}).values()
    )


RUN_ROLLUPS = (RunRollup, DurationRollup, StatusHour, AgentHour, DurationHour, ErrorGroupHour)
STEP_ROLLUPS = (StepHour, StepDurationHour)


def every_rollup(workspace):
    return {model.__name__: snapshot(model, workspace) for model in RUN_ROLLUPS + STEP_ROLLUPS}


def with_calls(execution):
    """A model call and a failed tool call, so the step rollups count something."""
    StepFactory(
        execution=execution,
        sequence=0,
        kind="model_call",
        name="chat",
        model="gpt-4o",
        prompt_tokens=10,
        completion_tokens=5,
        duration_ms=800,
    )
    StepFactory(
        execution=execution,
        sequence=1,
        kind="tool_call",
        name="lookup",
        status="failed",
        duration_ms=120,
    )
    return execution


def test_old_ended_runs_go_and_the_rest_stay(kept_30_days, version):
    gone = [old(version, status=s) for s in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)]
    recent = ExecutionFactory(agent_version=version, created_at=NOW - timedelta(days=5))
    running = old(version, status=Status.RUNNING)
    awaiting = old(version, status=Status.AWAITING_APPROVAL)
    corrected = FieldCorrectionFactory(execution=old(version)).execution
    noted = ExecutionNoteFactory(execution=old(version)).execution
    pinned = old(version)
    ExecutionPin.objects.create(workspace=kept_30_days, execution=pinned)
    StepFactory.create_batch(3, execution=gone[0])

    report = retention.apply(kept_30_days, now=NOW)

    assert report.executions == 3
    assert report.steps == 3
    assert report.kept_marked == 3
    left = set(Execution.objects.values_list("pk", flat=True))
    assert left == {recent.pk, running.pk, awaiting.pk, corrected.pk, noted.pk, pinned.pk}
    assert not Step.objects.filter(execution_id=gone[0].pk).exists()


def test_unticking_keep_marked_deletes_marked_runs_but_never_unended_ones(kept_30_days, version):
    FieldCorrectionFactory(execution=old(version))
    ExecutionNoteFactory(execution=old(version))
    pinned = old(version)
    ExecutionPin.objects.create(workspace=kept_30_days, execution=pinned)
    awaiting = old(version, status=Status.AWAITING_APPROVAL)
    kept_30_days.retention_keep_marked = False
    kept_30_days.save()

    assert retention.apply(kept_30_days, now=NOW).executions == 3
    assert list(Execution.objects.values_list("pk", flat=True)) == [awaiting.pk]


def test_an_agents_own_retention_wins(kept_30_days, version):
    short = AgentVersionFactory(agent__workspace=kept_30_days, agent__name="short-lived")
    short.agent.retention_days = 2
    short.agent.save()
    forever = AgentVersionFactory(agent__workspace=kept_30_days, agent__name="audited")
    forever.agent.retention_days = 3650
    forever.agent.save()
    short_gone = old(short, days=3)
    default_kept = old(version, days=3)
    default_gone = old(version, days=31)
    audited_kept = old(forever, days=400)

    retention.apply(kept_30_days, now=NOW)

    left = set(Execution.objects.values_list("pk", flat=True))
    assert left == {default_kept.pk, audited_kept.pk}
    assert short_gone.pk not in left and default_gone.pk not in left


def test_no_retention_keeps_everything(workspace):
    version = AgentVersionFactory(agent__workspace=workspace)
    old(version, days=4000)
    assert retention.apply(workspace, now=NOW).executions == 0
    assert Execution.objects.count() == 1


def test_counters_search_rows_and_rollups_stay_exact(kept_30_days, version, other_workspace):
    other = AgentVersionFactory(agent__workspace=other_workspace, agent__name="theirs")
    for days in (1, 10, 35, 60, 90):
        for status in (Status.COMPLETED, Status.FAILED, Status.RUNNING):
            with_calls(
                old(version, days=days, status=status, error="boom" if status == "failed" else "")
            )
            with_calls(old(other, days=days, status=status))
    counters.rebuild(kept_30_days)
    counters.rebuild(other_workspace)
    theirs = every_rollup(other_workspace)
    before = every_rollup(kept_30_days)
    assert all(before.values()), "every rollup counts something before retention"

    report = retention.apply(kept_30_days, now=NOW, batch_size=2)
    assert report.executions == 6  # completed and failed, 35/60/90 days old
    assert report.steps == 12
    assert report.batches >= 2

    for workspace in (kept_30_days, other_workspace):
        actual = {
            (r["agent_name"], r["status"]): r["n"]
            for r in Execution.objects.filter(workspace=workspace)
            .values("agent_name", "status")
            .annotate(n=Count("pk"))
        }
        counted = {
            (c.agent_name, c.status): c.count
            for c in ExecutionCounter.objects.filter(workspace=workspace)
            if c.count
        }
        assert counted == actual
    assert set(ExecutionSearch.objects.values_list("execution_id", flat=True)) == set(
        Execution.objects.values_list("pk", flat=True)
    )
    # Every rollup the triggers kept (runs' and steps', hourly and by run) equals the
    # one recomputed from what is left, and retention changed them.
    ours = every_rollup(kept_30_days)
    assert ours != before
    rollups.rebuild(kept_30_days.pk)
    step_rollups.rebuild(kept_30_days.pk)
    assert every_rollup(kept_30_days) == ours
    assert every_rollup(other_workspace) == theirs


def test_artifacts_files_go_with_their_rows(
    kept_30_days, version, django_capture_on_commit_callbacks
):
    gone = ArtifactFactory(execution=old(version))
    kept = ArtifactFactory(execution=ExecutionFactory(agent_version=version))
    assert default_storage.exists(gone.file.name)

    # Files go once the rows' deletion commits.
    with django_capture_on_commit_callbacks(execute=True):
        report = retention.apply(kept_30_days, now=NOW)

    assert report.artifacts == 1
    assert not Artifact.objects.filter(pk=gone.pk).exists()
    assert not default_storage.exists(gone.file.name)
    assert default_storage.exists(kept.file.name)


def test_dry_run_says_what_it_would_delete_and_deletes_nothing(kept_30_days, version):
    run = old(version)
    StepFactory.create_batch(2, execution=run)
    Execution.objects.filter(pk=run.pk).update(step_count=2)
    ExecutionNoteFactory(execution=old(version))
    out = StringIO()
    call_command("apply_retention", "--dry-run", stdout=out)
    assert out.getvalue().strip() == (
        "alices-team: would delete 1 run(s), 2 step(s), 0 artifact(s); "
        "kept 1 marked run(s) (corrections, notes, pins)"
    )
    assert Execution.objects.count() == 2

    out = StringIO()
    call_command("apply_retention", "--workspace", "alices-team", stdout=out)
    assert out.getvalue().startswith("alices-team: deleted 1 run(s), 2 step(s)")
    assert Execution.objects.count() == 1


def test_the_command_names_bad_arguments(kept_30_days):
    with pytest.raises(CommandError, match="--workspace: no workspace with the slug 'nope'"):
        call_command("apply_retention", "--workspace", "nope")
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        call_command("apply_retention", "--batch-size", "0")
    with pytest.raises(CommandError, match="--budget-seconds must be more than 0"):
        call_command("apply_retention", "--budget-seconds", "0")


def test_the_scheduler_applies_it_once_a_day(kept_30_days, version, other_workspace):
    old(version)
    first = retention.sweep(now=NOW)
    assert [(r.workspace, r.executions) for r in first] == [("alices-team", 1)]
    # Other workspaces have no retention; within the day nothing runs again.
    old(version)
    assert retention.sweep(now=NOW + timedelta(hours=23)) == []
    assert Execution.objects.count() == 1
    again = retention.sweep(now=NOW + timedelta(days=1, minutes=1))
    assert [(r.workspace, r.executions) for r in again] == [("alices-team", 1)]


def test_a_spent_budget_stops_between_batches_and_the_sweep_comes_back(
    kept_30_days, version, monkeypatch
):
    for _ in range(3):
        old(version)
    report = retention.apply(kept_30_days, now=NOW, budget_seconds=0.0)
    assert (report.executions, report.finished) == (0, False)

    real_apply = retention.apply
    monkeypatch.setattr(
        retention, "apply", lambda ws, **kw: real_apply(ws, **{**kw, "budget_seconds": 0.0})
    )
    assert [r.finished for r in retention.sweep(now=NOW)] == [False]
    kept_30_days.refresh_from_db()
    # Unfinished: due again at once, not tomorrow.
    assert kept_30_days.retention_next_at == NOW
    monkeypatch.setattr(retention, "apply", real_apply)
    assert retention.sweep(now=NOW)[0].executions == 3


def test_a_batchs_steps_go_in_one_statement_however_many_there_are(kept_30_days, version):
    """Steps cannot be fast-deleted by Django's collector (a self-cascade, the
    artifacts' SET_NULL): it read every step id into Python and deleted them in chunks,
    ~140 runs/s on the bench. Now a batch's queries do not grow with its steps."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_to_delete(steps_each):
        for _ in range(2):
            run = old(version, status=Status.COMPLETED)
            parent = StepFactory(execution=run, sequence=0)
            for n in range(1, steps_each):
                StepFactory(execution=run, sequence=n, parent=parent)
        ArtifactFactory(execution=run, step=parent)
        with CaptureQueriesContext(connection) as captured:
            report = retention.apply(kept_30_days, now=NOW, batch_size=10)
        assert (report.executions, report.steps) == (2, 2 * steps_each)
        assert not Step.objects.exists() and not Artifact.objects.exists()
        return captured

    queries_to_delete(1)  # the first call fills per-process caches
    few = queries_to_delete(3)
    many = queries_to_delete(30)
    assert len(many) == len(few)
    # The collector walks the children of the steps it read; nothing to walk if it read none.
    assert not [q["sql"] for q in many if '"executions_step"."parent_id" IN' in q["sql"]]
