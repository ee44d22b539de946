"""The narrow search table: its triggers keep it exact, and the table's text search
reads it only when it gives the same answer as the executions table would."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Q
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions import counters, lifecycle
from executions.models import Execution, ExecutionSearch, Status
from executions.overview import rollups
from executions.table import selectors
from tests.factories import AgentVersionFactory, BatchFactory, ExecutionFactory

pytestmark = pytest.mark.django_db
on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL-only behaviour (TRUNCATE triggers, locale-aware upper())",
)


def row_of(execution: Execution) -> ExecutionSearch:
    return ExecutionSearch.objects.get(execution_id=execution.pk)


def expected(execution: Execution) -> tuple:
    execution.refresh_from_db()
    return (
        execution.error != "",
        execution.workspace_id,
        execution.batch_id,
        execution.agent_name,
        execution.status,
        execution.created_at,
        f"{execution.error}\n{execution.summary}".upper(),
    )


def actual(row: ExecutionSearch) -> tuple:
    fields = ("has_error", "workspace_id", "batch_id", "agent_name", "status", "created_at")
    fields += ("document",)
    return tuple(getattr(row, name) for name in fields)


def test_every_write_path_keeps_the_search_row(agent_version):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.PENDING)
    assert actual(row_of(execution)) == expected(execution)

    # The lifecycle writes with UPDATE, never save(): the trigger still sees it.
    lifecycle.transition(execution, Status.RUNNING)
    lifecycle.transition(execution, Status.FAILED, error="Tool timeout after 30s")
    assert actual(row_of(execution)) == expected(execution)
    assert row_of(execution).status == Status.FAILED
    assert "TOOL TIMEOUT" in row_of(execution).document

    Execution.objects.filter(pk=execution.pk).update(
        summary="Retried by hand", batch=BatchFactory(workspace=execution.workspace)
    )
    assert actual(row_of(execution)) == expected(execution)

    execution.delete()
    assert not ExecutionSearch.objects.filter(execution_id=execution.pk).exists()


def test_one_row_per_execution_whatever_is_written(agent_version):
    made = ExecutionFactory.create_batch(5, agent_version=agent_version)
    Execution.objects.bulk_create(
        [Execution(workspace=agent_version.agent.workspace, agent_name="bulk") for _ in range(3)]
    )
    for execution in made:
        execution.save()  # an unchanged save must not duplicate or lose the row
    assert ExecutionSearch.objects.count() == Execution.objects.count() == 8
    Execution.objects.filter(agent_name="bulk").delete()
    assert ExecutionSearch.objects.count() == 5


@on_postgres
def test_failures_live_in_their_own_partition(agent_version):
    def partition(execution):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tableoid::regclass::text FROM executions_executionsearch "
                "WHERE execution_id = %s",
                [execution.pk],
            )
            return [row[0] for row in cursor.fetchall()]

    execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
    assert partition(execution) == ["executions_executionsearch_others"]
    lifecycle.transition(execution, Status.FAILED, error="Tool timeout")
    assert partition(execution) == ["executions_executionsearch_errors"]
    Execution.objects.filter(pk=execution.pk).update(error="")
    assert partition(execution) == ["executions_executionsearch_others"]


@on_postgres
def test_truncating_the_executions_truncates_the_search_table(agent_version):
    ExecutionFactory.create_batch(3, agent_version=agent_version)
    with connection.cursor() as cursor:
        # The test's transaction holds deferred foreign-key checks, which TRUNCATE refuses.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE executions_execution CASCADE")
        assert not ExecutionSearch.objects.exists()
        # Both in one statement, as Django's flush does between transactional tests.
        ExecutionFactory.create_batch(2, agent_version=agent_version)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE executions_execution, executions_executionsearch CASCADE")
    assert not ExecutionSearch.objects.exists()


def test_the_triggers_survive_every_migration():
    """SQLite drops a table's triggers when a migration rebuilds it; this notices."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger "
                "WHERE tgrelid = 'executions_execution'::regclass AND NOT tgisinternal"
            )
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master "
                "WHERE type = 'trigger' AND tbl_name = 'executions_execution'"
            )
        names = {row[0] for row in cursor.fetchall()}
    assert {"exec_search_insert", "exec_search_update", "exec_search_delete"} <= names
    # The overview's rollups (executions/overview/rollups.py): a migration that
    # rebuilds the table on SQLite must call rollups.install_sqlite_triggers.
    assert names >= rollups.TRIGGER_NAMES


def page_sql(workspace, query: str) -> tuple[selectors.TablePage, str]:
    with CaptureQueriesContext(connection) as queries:
        page = selectors.execution_table_page(workspace=workspace, params=QueryDict(query))
    return page, "\n".join(q["sql"] for q in queries.captured_queries)


_TIMEOUT = lambda r: "timeout" in r["error"].lower()  # noqa: E731

# Each query with the rows it selects, in plain Python over the rows the test makes.
SEARCHES = {
    "q=timeout": _TIMEOUT,
    "q=TIMEOUT&status=failed": lambda r: _TIMEOUT(r) and r["status"] == Status.FAILED,
    "q=timeout&agent=invoice-extractor&status=active&status=failed": lambda r: (
        _TIMEOUT(r) and r["status"] in {Status.FAILED, Status.RUNNING}
    ),
    "q=invoice&start=2020-01-01": lambda r: (
        "invoice" in r["error"].lower() or "invoice" in r["summary"].lower()
    ),
    "q=timeout&flat=1": _TIMEOUT,
    "q=timeout&page=last": _TIMEOUT,
}


@pytest.mark.parametrize("query", list(SEARCHES))
def test_a_search_on_copied_columns_reads_the_search_table(query, workspace, agent_version):
    batch = BatchFactory(workspace=workspace)
    rows = {}
    for i in range(30):
        spec = {
            "status": [Status.FAILED, Status.COMPLETED, Status.RUNNING][i % 3],
            "error": "Tool timeout after 30s" if i % 3 == 0 else "",
            "summary": "Extracted invoice" if i % 2 else "",
        }
        execution = ExecutionFactory(
            agent_version=agent_version, batch=batch if i % 5 == 0 else None, **spec
        )
        rows[execution.pk] = {**spec, "batched": i % 5 == 0}
    expected = {pk for pk, row in rows.items() if SEARCHES[query](row)}
    assert 0 < len(expected) <= 20  # one page holds them all
    page, sql = page_sql(workspace, query)
    assert "executions_executionsearch" in sql
    assert page.total == len(expected)
    listed = {e.pk for e in page.entries if not getattr(e, "is_batch", False)}
    batch_rows = [e for e in page.entries if getattr(e, "is_batch", False)]
    if "flat=1" in query:
        assert listed == expected and batch_rows == []
    else:
        # Batched matches are folded into their batch's one row.
        assert listed == {pk for pk in expected if not rows[pk]["batched"]}
        assert len(batch_rows) == (1 if any(rows[pk]["batched"] for pk in expected) else 0)


@pytest.mark.parametrize("query", ["q=timeout&meta=env%3Dprod", "q=timeout&min_duration=1"])
def test_a_search_with_other_filters_reads_the_executions_table(query, workspace, agent_version):
    hit = ExecutionFactory(
        agent_version=agent_version, error="Tool timeout", metadata={"env": "prod"}
    )
    ExecutionFactory(agent_version=agent_version, error="Tool timeout", metadata={"env": "dev"})
    page, sql = page_sql(workspace, query)
    assert "executions_executionsearch" not in sql
    if "meta" in query:
        assert [e.pk for e in page.entries] == [hit.pk]
    else:
        assert page.total == 2


def test_sorted_by_a_measure_the_page_comes_from_the_executions_table(workspace, agent_version):
    slow = ExecutionFactory(agent_version=agent_version, error="timeout", duration_ms=9000)
    fast = ExecutionFactory(agent_version=agent_version, error="timeout", duration_ms=10)
    ExecutionFactory(agent_version=agent_version, error="other")
    page = selectors.execution_table_page(
        workspace=workspace, params=QueryDict("q=timeout&sort=-duration")
    )
    assert page.total == 2
    assert [e.pk for e in page.entries] == [slow.pk, fast.pk]


def test_search_matches_id_prefixes_through_the_search_table(workspace, agent_version):
    target = ExecutionFactory(agent_version=agent_version)
    ExecutionFactory.create_batch(3, agent_version=agent_version)
    page, sql = page_sql(workspace, f"q={str(target.pk)[:8]}")
    assert "executions_executionsearch" in sql
    assert target.pk in {e.pk for e in page.entries}


def test_the_search_table_keeps_workspaces_apart(workspace, agent_version, other_workspace):
    foreign = ExecutionFactory(
        agent_version=AgentVersionFactory(agent__workspace=other_workspace),
        error="secret failure",
    )
    assert row_of(foreign).workspace_id == other_workspace.pk
    page, sql = page_sql(workspace, "q=secret+failure")
    assert "executions_executionsearch" in sql
    assert page.total == 0 and page.entries == []


def test_pattern_characters_are_matched_literally(workspace, agent_version):
    literal = ExecutionFactory(agent_version=agent_version, error="disk 100% full")
    ExecutionFactory(agent_version=agent_version, error="disk 100 percent full")
    page = selectors.execution_table_page(workspace=workspace, params=QueryDict("q=100%25+full"))
    assert [e.pk for e in page.entries] == [literal.pk]
    underscore = ExecutionFactory(agent_version=agent_version, error="rate_limit hit")
    ExecutionFactory(agent_version=agent_version, error="rateXlimit hit")
    page = selectors.execution_table_page(workspace=workspace, params=QueryDict("q=rate_limit"))
    assert [e.pk for e in page.entries] == [underscore.pk]


@on_postgres
def test_case_folding_is_postgresqls_on_both_sides(workspace, agent_version):
    accented = ExecutionFactory(agent_version=agent_version, error="Échec de connexion")
    for query in ["q=%C3%A9chec", "q=%C3%89CHEC"]:  # échec, ÉCHEC
        page = selectors.execution_table_page(workspace=workspace, params=QueryDict(query))
        assert [e.pk for e in page.entries] == [accented.pk]


def test_a_search_with_a_line_break_is_refused_with_a_message(workspace, agent_version):
    ExecutionFactory(agent_version=agent_version, error="ends here", summary="starts here")
    counters.rebuild(workspace)
    page = selectors.execution_table_page(workspace=workspace, params=QueryDict("q=here%0Astarts"))
    assert "line breaks" in str(page.filterset.errors["q"])
    assert page.total == 1  # the search is dropped, the table still lists


@pytest.mark.parametrize("flat", ["", "&flat=1"])
def test_paging_a_search_lists_every_match_once(flat, workspace, agent_version):
    """Matches in both partitions (errors and summaries), batched and not, interleaved
    in time: every page, forwards and from the end, together list each match once."""
    batch = BatchFactory(workspace=workspace)
    start = timezone.now() - timedelta(days=1)
    matches = set()
    for i in range(47):
        execution = ExecutionFactory(
            agent_version=agent_version,
            created_at=start + timedelta(minutes=i),
            error="quota exceeded" if i % 3 == 0 else "",
            summary="Quota report" if i % 3 == 1 else "Done",
            batch=batch if i % 7 == 0 else None,
        )
        if i % 3 != 2:
            matches.add(execution.pk)
    query = f"q=quota{flat}&per_page=20"
    first = selectors.execution_table_page(workspace=workspace, params=QueryDict(query))
    assert first.total == len(matches)
    listed, batches = [], 0
    for number in range(1, first.num_pages + 1):
        page = selectors.execution_table_page(
            workspace=workspace, params=QueryDict(f"{query}&page={number}")
        )
        for entry in page.entries:
            if getattr(entry, "is_batch", False):
                batches += 1
                listed += list(
                    batch.executions.filter(
                        Q(error__icontains="quota") | Q(summary__icontains="quota")
                    ).values_list("pk", flat=True)
                )
            else:
                listed.append(entry.pk)
    assert sorted(listed) == sorted(matches)
    assert batches == (0 if flat else 1)
