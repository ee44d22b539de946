"""The ingestion service layer on its own: agents created on first use, redaction, one
transaction per request, traces assembled across requests and racing writers."""

import secrets
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from agents.models import Agent, AgentVersion
from agents.services import AgentNameError, agent_resolve, agents_resolve, parse_agent_ref
from executions import counters
from executions.ingest import services, traces
from executions.ingest.schemas import ExecutionCreateIn
from executions.ingest.steps import StepRecord
from executions.models import Execution, Status, Step, StepKind, StepStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def span(trace_id, span_id, parent="", *, name="s", kind=StepKind.OTHER, **step):
    return traces.TraceSpan(
        trace_id=trace_id,
        step=StepRecord(
            span_id=span_id, parent_span_id=parent, name=name, kind=kind, started_at=T0, **step
        ),
        service_name="svc",
    )


class TestAgents:
    @pytest.mark.parametrize(
        ("ref", "version", "expected"),
        [
            ("invoice-extractor:v1", None, ("invoice-extractor", "v1")),
            ("image/blur-faces:v2", None, ("image/blur-faces", "v2")),
            ("ns:agent:v3", None, ("ns:agent", "v3")),
            ("plain", None, ("plain", None)),
            ("plain", "v9", ("plain", "v9")),
            (" spaced : v1 ", None, ("spaced", "v1")),
        ],
    )
    def test_references(self, ref, version, expected):
        assert parse_agent_ref(ref, version) == expected

    @pytest.mark.parametrize("ref", ["", "  ", ":v1", "x" * 201])
    def test_bad_references(self, ref):
        with pytest.raises(AgentNameError):
            parse_agent_ref(ref)

    def test_names_that_slugify_alike_get_distinct_slugs(self, workspace):
        first, _ = agent_resolve(workspace=workspace, name="My Agent")
        second, _ = agent_resolve(workspace=workspace, name="my-agent")
        assert (first.slug, second.slug) == ("my-agent", "my-agent-2")

    def test_resolving_many_costs_two_queries_once_they_exist(
        self, workspace, django_assert_num_queries
    ):
        keys = {("a", "v1"), ("a", None), ("b", "v2")}
        agents_resolve(workspace=workspace, keys=keys)
        with django_assert_num_queries(2):
            resolved = agents_resolve(workspace=workspace, keys=keys)
        assert resolved[("a", None)][1].version == "v1"  # the latest version of a
        assert Agent.objects.filter(workspace=workspace).count() == 2
        assert AgentVersion.objects.filter(agent__workspace=workspace).count() == 2


def test_redaction_keeps_tokens_counts_and_hides_secrets():
    body = {
        "input": {"password": "p", "prompt_tokens": 3, "nested": [{"api_key": "k"}]},
        "headers": {"Authorization": "Bearer x", "X-Request-Id": "r"},
        "access_token": "t",
        "empty_secret": "",
    }
    assert services.redact(body) == {
        "input": {
            "password": "[redacted]",
            "prompt_tokens": 3,
            "nested": [{"api_key": "[redacted]"}],
        },
        "headers": {"Authorization": "[redacted]", "X-Request-Id": "r"},
        "access_token": "[redacted]",
        "empty_secret": "",
    }


@pytest.mark.django_db
class TestTransactions:
    def test_an_invalid_input_creates_no_agent_either(self, workspace, agent_version):
        agent_version.input_schema = {"type": "object", "required": ["file"]}
        agent_version.save()
        data = ExecutionCreateIn(agent="invoice-extractor:v1", input={})
        with pytest.raises(services.Invalid):
            services.execution_create(workspace=workspace, data=data)
        data = ExecutionCreateIn(agent="brand-new:v1", input={}, status="completed")
        original = services.lifecycle.transition

        def failing(execution, target, **kwargs):
            if target == Status.COMPLETED:
                raise RuntimeError("crash between two steps of the lifecycle")
            return original(execution, target, **kwargs)

        services.lifecycle.transition = failing
        try:
            with pytest.raises(RuntimeError):
                services.execution_create(workspace=workspace, data=data)
        finally:
            services.lifecycle.transition = original
        assert not Agent.objects.filter(name="brand-new").exists()
        assert not Execution.objects.exists()
        assert counters.total(workspace=workspace) == 0

    def test_updated_steps_adjust_the_totals_by_the_difference(self, workspace):
        execution, _ = services.execution_create(
            workspace=workspace, data=ExecutionCreateIn(agent="a:v1", status="running")
        )
        first = StepRecord(
            span_id="x", prompt_tokens=10, completion_tokens=1, cost_usd=Decimal("1")
        )
        services.steps_append(workspace=workspace, execution_id=execution.pk, records=[first])
        again = StepRecord(
            span_id="x", prompt_tokens=4, completion_tokens=1, cost_usd=Decimal("0.5")
        )
        services.steps_append(workspace=workspace, execution_id=execution.pk, records=[again])
        execution.refresh_from_db()
        assert (execution.step_count, execution.prompt_tokens, execution.total_tokens) == (1, 4, 5)
        assert execution.cost_usd == Decimal("0.5")


@pytest.mark.django_db
class TestTraces:
    def test_late_children_of_an_ended_execution_are_added(self, workspace):
        trace = secrets.token_hex(16)
        traces.traces_ingest(workspace=workspace, spans=[span(trace, "a" * 16, name="root")])
        execution = Execution.objects.get(trace_id=trace)
        assert (execution.status, execution.step_count) == (Status.COMPLETED, 0)
        late = span(trace, "b" * 16, "a" * 16, kind=StepKind.MODEL_CALL, prompt_tokens=7)
        traces.traces_ingest(workspace=workspace, spans=[late])
        execution.refresh_from_db()
        assert (execution.status, execution.step_count, execution.prompt_tokens) == (
            Status.COMPLETED,
            1,
            7,
        )

    def test_a_resent_root_changes_nothing(self, workspace):
        trace = secrets.token_hex(16)
        root = span(trace, "a" * 16, name="root", status=StepStatus.FAILED, error="boom")
        traces.traces_ingest(workspace=workspace, spans=[root])
        result = traces.traces_ingest(workspace=workspace, spans=[root])
        assert (result.executions_created, result.steps_created) == (0, 0)
        execution = Execution.objects.get(trace_id=trace)
        assert (execution.status, execution.error) == (Status.FAILED, "boom")
        assert counters.total(workspace=workspace, statuses=["failed"]) == 1

    def test_two_roots_keep_the_first_and_the_second_is_a_step(self, workspace):
        trace = secrets.token_hex(16)
        traces.traces_ingest(workspace=workspace, spans=[span(trace, "a" * 16, name="first")])
        traces.traces_ingest(workspace=workspace, spans=[span(trace, "c" * 16, name="second")])
        execution = Execution.objects.get(trace_id=trace)
        assert execution.request["root_span_id"] == "a" * 16
        assert list(Step.objects.filter(execution=execution).values_list("name", flat=True)) == [
            "second"
        ]


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: SQLite serialises writers, and its shared in-memory test "
    "database reports a lock instead of waiting",
)
@pytest.mark.django_db(transaction=True)
def test_two_requests_racing_to_create_one_trace_make_one_execution(workspace, monkeypatch):
    """Both find no execution for the trace and insert one; the database refuses the
    second (unique workspace + trace id) and that request is retried: it then finds
    the first and adds its spans to it."""
    trace = secrets.token_hex(16)
    # The interleaving is forced: each request waits, after its lookup found nothing,
    # until the other has looked too. Only the first attempt waits; a retry runs alone.
    after_lookup = threading.Barrier(2)
    attempts = []
    waited = threading.local()
    real_attempt, real_resolve = traces._traces_ingest, traces.agents_resolve

    def attempt(workspace, spans):
        attempts.append(threading.current_thread().name)
        return real_attempt(workspace, spans)

    def resolve_after_both_looked(**kwargs):
        if not getattr(waited, "done", False):
            waited.done = True
            after_lookup.wait(timeout=10)
        return real_resolve(**kwargs)

    monkeypatch.setattr(traces, "_traces_ingest", attempt)
    monkeypatch.setattr(traces, "agents_resolve", resolve_after_both_looked)
    errors = []

    def ingest(span_id):
        try:
            traces.traces_ingest(
                workspace=workspace, spans=[span(trace, span_id, "f" * 16, name=span_id)]
            )
        except Exception as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ingest, args=(c * 16,), name=c) for c in "12"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    # The retry path ran: one request made one attempt, the other two.
    assert sorted(attempts.count(name) for name in "12") == [1, 2]
    execution = Execution.objects.get(trace_id=trace)
    assert execution.step_count == 2
    assert Step.objects.filter(execution=execution).count() == 2
    assert counters.total(workspace=workspace) == 1
