"""load_bench loads the reference data set with COPY on PostgreSQL and refuses SQLite."""

import io
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, F

from agents.models import Agent, Membership, Workspace
from executions.models import (
    Execution,
    ExecutionCounter,
    ExecutionSearch,
    Status,
    Step,
    StepStatus,
)
from feedback.models import FieldCorrection
from tests.factories import ExecutionFactory, FieldCorrectionFactory, StepFactory

ROOT = Path(__file__).resolve().parents[2]
on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="load_bench uses COPY, which needs PostgreSQL (set DATABASE_URL=postgres://...)",
)
pytestmark = pytest.mark.django_db


def _load(*args: str) -> str:
    out = io.StringIO()
    call_command("load_bench", *args, stdout=out)
    return out.getvalue()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="checks the refusal on SQLite")
def test_it_refuses_sqlite_with_a_clear_message():
    with pytest.raises(CommandError, match="load_bench needs PostgreSQL: set DATABASE_URL="):
        _load("--executions", "10")
    assert not Workspace.objects.filter(slug="bench").exists()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="checks the refusal on SQLite")
def test_the_command_exits_non_zero_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="tests.settings", SQLITE_PATH=str(tmp_path / "db.sqlite3"))
    result = subprocess.run(
        [sys.executable, "manage.py", "load_bench", "--skip-checks", "--executions", "10"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "load_bench needs PostgreSQL: set DATABASE_URL=postgres://..." in result.stderr


def test_it_rejects_nonsense_counts():
    with pytest.raises(CommandError, match="--executions must be at least 1"):
        _load("--executions", "0")


@pytest.mark.postgres
@on_postgres
def test_it_loads_a_small_data_set():
    output = _load("--executions", "200", "--steps-per-execution", "3")
    assert "Loaded 200 executions" in output

    workspace = Workspace.objects.get(slug="bench")
    executions = Execution.objects.filter(workspace=workspace)
    assert executions.count() == 200
    assert Agent.objects.filter(workspace=workspace).count() == 20
    started = executions.exclude(status__in=[Status.PENDING, Status.QUEUED])
    steps = Step.objects.filter(execution__workspace=workspace)
    assert steps.count() == 3 * started.count()
    assert not executions.exclude(pk__in=started).filter(step_count__gt=0).exists()

    statuses = Counter(executions.values_list("status", flat=True))
    assert len(statuses) >= 3
    assert statuses.most_common(1)[0][0] == Status.COMPLETED

    # The per-status counters agree with COUNT(*).
    actual = {
        (r["agent_name"], r["status"]): r["n"]
        for r in executions.values("agent_name", "status").annotate(n=Count("id"))
    }
    counted = {
        (c.agent_name, c.status): c.count
        for c in ExecutionCounter.objects.filter(workspace=workspace)
    }
    assert counted == actual

    # Totals agree with the steps, and each failure's error sits on its failing step.
    for e in executions.annotate(n=Count("steps")):
        assert e.step_count == e.n
    for e in executions.filter(status=Status.FAILED):
        assert e.steps.filter(status=StepStatus.FAILED, error=e.error).exists()
    completed = executions.filter(status=Status.COMPLETED).first()
    assert completed.output and completed.summary and completed.duration_ms > 0
    assert completed.total_tokens == completed.prompt_tokens + completed.completion_tokens
    first = completed.steps.order_by("sequence").first()
    assert first.sequence == 1 and first.started_at >= completed.started_at
    assert (
        not steps.filter(parent__isnull=False)
        .exclude(parent__execution_id=F("execution_id"))
        .exists()
    )
    assert {"customer", "environment", "region"} <= set(completed.metadata)

    # The indexes and constraints dropped for the load are back.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename IN (%s, %s)",
            [Execution._meta.db_table, Step._meta.db_table],
        )
        indexes = {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            [Step._meta.db_table],
        )
        assert cursor.fetchone()[0] == 2
    assert {"exec_ws_created", "exec_ws_status", "step_unique_sequence"} <= indexes

    # The search table's triggers copied every execution, and its indexes are back too.
    search = ExecutionSearch.objects.filter(workspace=workspace)
    assert search.count() == 200
    failed = executions.filter(status=Status.FAILED).first()
    row = search.get(execution=failed)
    assert (row.status, row.agent_name, row.created_at) == (
        failed.status,
        failed.agent_name,
        failed.created_at,
    )
    assert row.document == f"{failed.error}\n{failed.summary}".upper()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s",
            [ExecutionSearch._meta.db_table],
        )
        assert {"exec_search_created", "exec_search_document_trgm"} <= {
            r[0] for r in cursor.fetchall()
        }
        # ...on each partition too, not only on the partitioned parent.
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'executions_executionsearch_errors'"
        )
        assert cursor.fetchone()[0] == 5  # key, time, trigram; status, batched rows (0012)

    user = authenticate(username="bench", password="bench")
    assert user is not None
    assert Membership.objects.filter(user=user, workspace=workspace).exists()

    # New steps still get fresh ids after the explicit ones COPY wrote.
    step = Step.objects.create(execution=completed, sequence=99, name="after the load")
    assert step.id > steps.exclude(pk=step.pk).order_by("-id").values_list("id", flat=True)[0]


@pytest.mark.postgres
@on_postgres
def test_a_second_load_needs_reset_and_keeps_other_workspaces():
    other = ExecutionFactory(agent_name="not-bench")
    other_step = StepFactory(execution=other, sequence=1)
    other_correction = FieldCorrectionFactory(execution=other, workspace=other.workspace)
    _load("--executions", "50", "--steps-per-execution", "2")
    with pytest.raises(CommandError, match="already has executions; pass --reset"):
        _load("--executions", "50")
    _load("--executions", "80", "--steps-per-execution", "2", "--reset")

    workspace = Workspace.objects.get(slug="bench")
    assert Execution.objects.filter(workspace=workspace).count() == 80
    # With another workspace present it deletes by workspace instead of truncating.
    assert Execution.objects.filter(pk=other.pk).exists()
    assert Step.objects.filter(pk=other_step.pk).exists()
    assert FieldCorrection.objects.filter(pk=other_correction.pk).exists()
    bench_steps = Step.objects.filter(execution__workspace=workspace).count()
    assert bench_steps == 2 * Execution.objects.filter(workspace=workspace, step_count=2).count()


@pytest.mark.postgres
@on_postgres
def test_columns_the_writers_do_not_know_get_their_model_default_during_the_load():
    from executions.demo.bench_copy import EXECUTION_COLUMNS, fill_defaults

    known = [c for c in EXECUTION_COLUMNS if c not in {"note_count", "approval_note"}]
    table = Execution._meta.db_table
    with connection.cursor() as cursor:
        undo = fill_defaults(cursor, Execution, known)
        cursor.execute(
            "SELECT column_name, column_default FROM information_schema.columns "
            "WHERE table_name = %s AND column_name IN ('note_count', 'approval_note')",
            [table],
        )
        defaults = dict(cursor.fetchall())
        for statement in undo:
            cursor.execute(statement)
        cursor.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = %s AND column_default IS NOT NULL AND column_name IN "
            "('note_count', 'approval_note')",
            [table],
        )
        left = cursor.fetchone()[0]
    assert defaults["note_count"].startswith("0")
    assert defaults["approval_note"].startswith("''")
    assert left == 0
