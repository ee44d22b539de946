"""POST /api/v1/executions/{id}/steps: one or many, the tree, idempotency, totals, and a
failure part-way through that leaves nothing behind."""

from decimal import Decimal

import pytest

from agents.models import ModelPrice
from executions.ingest import steps as steps_writer
from executions.ingest import steps_insert
from executions.models import Execution, Status, Step, StepKind, StepStatus

pytestmark = pytest.mark.django_db


def post(api, path, body):
    return api.post(path, body, content_type="application/json")


@pytest.fixture
def execution(api):
    body = post(api, "/api/v1/executions", {"agent": "a:v1"}).json()
    return Execution.objects.get(pk=body["execution_id"])


@pytest.fixture
def steps_url(execution):
    return f"/api/v1/executions/{execution.pk}/steps"


def test_one_step_a_list_or_a_steps_object(api, execution, steps_url):
    assert post(api, steps_url, {"kind": "thinking", "name": "plan"}).status_code == 201
    assert post(api, steps_url, [{"name": "a"}, {"name": "b"}]).status_code == 201
    assert post(api, steps_url, {"steps": [{"name": "c"}]}).status_code == 201
    names = list(Step.objects.filter(execution=execution).values_list("name", "sequence"))
    assert names == [("plan", 0), ("a", 1), ("b", 2), ("c", 3)]
    assert Step.objects.get(name="plan").kind == StepKind.THOUGHT


def test_the_first_steps_start_a_pending_execution(api, execution, steps_url):
    assert execution.status == Status.PENDING
    post(api, steps_url, {"name": "a", "started_at": "2026-03-01T10:00:00Z"})
    execution.refresh_from_db()
    assert execution.status == Status.RUNNING
    assert execution.started_at.isoformat() == "2026-03-01T10:00:00+00:00"


def test_the_tree_by_parent_span_id_and_by_parent_sequence(api, execution, steps_url):
    post(
        api,
        steps_url,
        [
            {"span_id": "child", "parent_span_id": "root", "name": "child"},
            {"span_id": "root", "kind": "block", "name": "root"},
            {"sequence": 10, "name": "tool", "kind": "tool", "parent_sequence": 11},
            {"sequence": 11, "name": "agent", "kind": "agent"},
        ],
    )
    post(api, steps_url, {"name": "late child", "parent_span_id": "root"})
    post(api, steps_url, {"name": "grandchild", "parent_sequence": 10})
    steps = {s.name: s for s in Step.objects.filter(execution=execution)}
    assert steps["child"].parent == steps["root"]
    assert steps["tool"].parent == steps["agent"]
    assert steps["late child"].parent == steps["root"]
    assert steps["grandchild"].parent == steps["tool"]
    assert steps["root"].parent is None


def test_a_child_sent_before_its_parent_is_linked_when_the_parent_arrives(
    api, execution, steps_url
):
    post(api, steps_url, {"span_id": "c1", "parent_span_id": "p1", "name": "child"})
    child = Step.objects.get(span_id="c1")
    assert child.parent_id is None and child.parent_span_id == "p1"
    post(api, steps_url, {"span_id": "p1", "name": "parent"})
    child.refresh_from_db()
    assert child.parent == Step.objects.get(span_id="p1")


def test_a_retried_batch_creates_nothing_twice(api, execution, steps_url):
    batch = [
        {"span_id": "s1", "name": "a", "prompt_tokens": 10, "completion_tokens": 2},
        {"sequence": 5, "name": "b", "prompt_tokens": 1},
    ]
    first = post(api, steps_url, batch)
    again = post(api, steps_url, batch)
    assert (first.status_code, again.status_code) == (201, 200)
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 2)
    assert Step.objects.filter(execution=execution).count() == 2
    execution.refresh_from_db()
    assert execution.step_count == 2
    assert execution.prompt_tokens == 11
    assert execution.total_tokens == 13


def test_a_step_re_sent_with_its_span_id_is_updated(api, execution, steps_url):
    running = {"span_id": "t1", "kind": "tool_call", "name": "search", "status": "running"}
    post(api, steps_url, running)
    response = post(
        api,
        steps_url,
        {"span_id": "t1", "status": "completed", "output": {"hits": 3}, "prompt_tokens": 7},
    )
    assert response.json()["updated"] == 1
    step = Step.objects.get(span_id="t1")
    assert (step.status, step.output, step.name) == (StepStatus.COMPLETED, {"hits": 3}, "search")
    execution.refresh_from_db()
    assert (execution.step_count, execution.prompt_tokens) == (1, 7)


def test_costs_come_from_the_price_table_when_absent(api, execution, steps_url):
    ModelPrice.objects.update_or_create(
        workspace=None,
        model="gpt-4o",
        defaults={"input_per_million": Decimal("2.5"), "output_per_million": Decimal("10")},
    )
    post(
        api,
        steps_url,
        [
            {
                "kind": "llm",
                "model": "gpt-4o-2024-08-06",
                "prompt_tokens": 1000,
                "completion_tokens": 100,
            },
            {"kind": "llm", "model": "gpt-4o", "prompt_tokens": 1000, "cost": "0.5"},
            {"kind": "llm", "model": "unpriced-model", "prompt_tokens": 1000},
        ],
    )
    costs = list(Step.objects.filter(execution=execution).values_list("cost_usd", flat=True))
    assert costs == [Decimal("0.003500"), Decimal("0.500000"), Decimal("0")]
    execution.refresh_from_db()
    assert execution.cost_usd == Decimal("0.503500")


def test_a_sequence_taken_by_another_span_is_a_409(api, execution, steps_url):
    post(api, steps_url, {"span_id": "a", "sequence": 1})
    response = post(api, steps_url, [{"span_id": "ok"}, {"span_id": "b", "sequence": 1}])
    assert response.status_code == 409
    assert "steps[1]" in response.json()["detail"]
    assert not Step.objects.filter(span_id="ok").exists()


def test_a_missing_parent_sequence_is_a_422_and_nothing_is_written(api, execution, steps_url):
    response = post(api, steps_url, [{"name": "fine"}, {"name": "orphan", "parent_sequence": 99}])
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "steps[1].parent_sequence"
    assert not Step.objects.exists()
    execution.refresh_from_db()
    assert execution.step_count == 0


def test_bad_steps_name_each_field(api, steps_url):
    response = post(
        api,
        steps_url,
        [{"kind": "dance", "prompt_tokens": -1}, {"status": "maybe", "unknown": 1}],
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    expected = {"steps[0].kind", "steps[0].prompt_tokens", "steps[1].status", "steps[1].unknown"}
    assert expected <= fields


def test_a_failure_part_way_leaves_nothing(api, execution, steps_url, monkeypatch):
    """The steps are written, then updating the totals fails: the steps go too."""
    from executions.ingest import services

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "_add_totals", broken)
    api.raise_request_exception = False
    response = post(api, steps_url, [{"name": "a"}, {"name": "b"}])
    assert response.status_code == 500
    assert not Step.objects.exists()
    execution.refresh_from_db()
    assert (execution.status, execution.step_count) == (Status.PENDING, 0)


def test_steps_of_another_workspaces_execution_are_404(other_api, steps_url):
    response = post(other_api, steps_url, {"name": "intruder"})
    assert response.status_code == 404
    assert not Step.objects.exists()


def test_listing_steps_in_pages(api, execution, steps_url):
    post(api, steps_url, [{"name": f"s{i}", "input": {"i": i}} for i in range(5)])
    first = api.get(f"{steps_url}?limit=3").json()
    assert [s["name"] for s in first["data"]] == ["s0", "s1", "s2"]
    assert first["data"][1]["input"] == {"i": 1}
    rest = api.get(f"{steps_url}?limit=3&after={first['next_after']}").json()
    assert [s["name"] for s in rest["data"]] == ["s3", "s4"]
    assert rest["next_after"] is None


def test_the_writer_plans_a_cycle_without_looping(execution):
    records = [
        steps_writer.StepRecord(span_id="x", parent_span_id="y"),
        steps_writer.StepRecord(span_id="y", parent_span_id="x"),
    ]
    plan = steps_writer.plan_steps([(execution, records, True)])
    steps_insert.apply_plan(plan)
    assert Step.objects.filter(execution=execution).count() == 2
    assert Step.objects.filter(parent__isnull=True).count() >= 1


def test_no_sequence_is_left_after_the_largest(api, execution, steps_url):
    post(api, steps_url, {"sequence": 2_147_483_647, "name": "last"})
    response = post(api, steps_url, {"name": "one more"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "steps[0].sequence"
    assert Step.objects.filter(execution=execution).count() == 1


def test_a_batch_costs_the_same_queries_whatever_its_size(api, execution, steps_url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def cost(batch):
        with CaptureQueriesContext(connection) as queries:
            assert post(api, steps_url, batch).status_code == 201
        return len(queries)

    post(api, steps_url, {"name": "warm-up"})  # the first step starts the execution
    small = cost([{"span_id": f"a{i}", "kind": "llm", "model": "m"} for i in range(10)])
    large = cost([{"span_id": f"b{i}", "kind": "llm", "model": "m"} for i in range(300)])
    assert small == large


def test_only_executions_with_waiting_children_look_for_them(api, execution, steps_url):
    from executions.ingest.steps import children_waiting

    post(api, steps_url, [{"span_id": "p"}, {"span_id": "c", "parent_span_id": "p"}])
    execution.refresh_from_db()
    assert not children_waiting(execution)  # the parent came in the same batch
    post(api, steps_url, {"span_id": "late-child", "parent_span_id": "late-parent"})
    execution.refresh_from_db()
    assert children_waiting(execution)
    post(api, steps_url, {"span_id": "late-parent"})
    child = Step.objects.get(span_id="late-child")
    assert child.parent == Step.objects.get(span_id="late-parent")
