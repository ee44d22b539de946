"""The statement parser behind the Citus capture test: what counts as filtered by
workspace, per instance of a table, in subqueries and joins."""

from .sql_scope import unscoped_tables

D = {"executions_execution", "executions_step", "feedback_fieldcorrection"}


def test_a_table_filtered_by_workspace_is_scoped_and_by_id_alone_is_not():
    where = 'FROM "executions_execution" WHERE "executions_execution"."workspace_id" = %s'
    assert unscoped_tables(f'SELECT "executions_execution"."id" {where}', D) == set()
    by_id = 'SELECT * FROM "executions_execution" WHERE "executions_execution"."id" = %s'
    assert unscoped_tables(by_id, D) == {"executions_execution"}


def test_each_subquery_needs_its_own_filter():
    outer = 'SELECT * FROM "executions_execution" WHERE ("executions_execution"."workspace_id" = %s'
    inner = (
        ' AND NOT EXISTS(SELECT 1 AS "a" FROM "feedback_fieldcorrection" U0 WHERE '
        '(U0."execution_id" = ("executions_execution"."id"){}) LIMIT 1))'
    )
    assert unscoped_tables(outer + inner.format(""), D) == {"feedback_fieldcorrection"}
    scoped = inner.format(' AND U0."workspace_id" = %s')
    assert unscoped_tables(outer + scoped, D) == set()
    correlated = inner.format(' AND U0."workspace_id" = ("executions_execution"."workspace_id")')
    assert unscoped_tables(outer + correlated, D) == set()


def test_a_join_is_scoped_through_an_equal_workspace_or_its_own_filter():
    join = (
        'SELECT * FROM "executions_step" INNER JOIN "executions_execution" ON '
        '("executions_step"."execution_id" = "executions_execution"."id"{}) '
        'WHERE "executions_execution"."workspace_id" IN (%s, %s)'
    )
    assert unscoped_tables(join.format(""), D) == {"executions_step"}
    colocated = ' AND "executions_step"."workspace_id" = "executions_execution"."workspace_id"'
    assert unscoped_tables(join.format(colocated), D) == set()


def test_inserts_name_the_column_and_raw_sql_may_leave_it_unqualified():
    insert = 'INSERT INTO "executions_step" ("execution_id", "name") VALUES (%s, %s)'
    assert unscoped_tables(insert, D) == {"executions_step"}
    insert = 'INSERT INTO "executions_execution" ("id", "workspace_id") VALUES (%s, %s)'
    assert unscoped_tables(insert, D) == set()
    copy = "COPY executions_step (id, execution_id, name) FROM STDIN"
    assert unscoped_tables(copy, D) == {"executions_step"}
    raw = "select count(*) from executions_execution where workspace_id = %s and error = 'a(b'"
    assert unscoped_tables(raw, D) == set()


def test_updates_and_deletes_need_the_filter_too():
    update = (
        'UPDATE "executions_execution" SET "status" = %s WHERE "executions_execution"."id" = %s'
    )
    assert unscoped_tables(update, D) == {"executions_execution"}
    scoped = update + ' AND "executions_execution"."workspace_id" = %s'
    assert unscoped_tables(scoped, D) == set()
    delete = 'DELETE FROM "executions_step" WHERE "executions_step"."execution_id" IN (%s)'
    assert unscoped_tables(delete, D) == {"executions_step"}
