"""Budgets (executions/budgets): validation at start, hard limits stopping a run through
both doors (JSON steps, OTLP spans) with the signed cancel webhook and the stop in the
answers, soft limits flagging it, loop detection, and the version's budget."""

import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from executions import budgets
from executions.control import dispatch
from executions.models import Execution, Status, Step
from tests.executions.test_otlp import request as otlp_request
from tests.executions.test_otlp import send, span
from tests.factories import AgentVersionFactory, ApiKeyFactory

from .conftest import SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(workspace):
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def post(api, path, body):
    return api.post(path, body, content_type="application/json")


def start(api, budget, agent="invoice-extractor:v1"):
    response = post(
        api, "/api/v1/executions", {"agent": agent, "budget": budget, "input": {"file": "a.pdf"}}
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def model_call(cost, output="thinking", **extra):
    return {
        "kind": "model_call",
        "name": "chat",
        "model": "gpt-x",
        "output": output,
        "cost": cost,
        "prompt_tokens": 100,
        "completion_tokens": 10,
        **extra,
    }


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "budget, field",
    [
        ({"cost": -1}, "budget.cost"),
        ({"cost": "lots"}, "budget.cost"),
        ({"tokens": 1.5}, "budget.tokens"),
        ({"steps": True}, "budget.steps"),
        ({"seconds": 0}, "budget.seconds"),
        ({"dollars": 1}, "budget.dollars"),
        ({"soft": {"cost": -2}}, "budget.soft.cost"),
        ({"soft": {"loop": 2}}, "budget.soft.loop"),
        ({"loop": 1}, "budget.loop"),
        ({"loop": {"tool": 3, "think": 2}}, "budget.loop.think"),
        ([1, 2], "budget"),
    ],
)
def test_a_bad_budget_is_refused_naming_the_field(api, budget, field):
    response = post(api, "/api/v1/executions", {"agent": "a:v1", "budget": budget})
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert not Execution.objects.exists()


def test_the_control_plane_execute_takes_a_budget_and_refuses_a_bad_one(api, hooked_version):
    url = "/api/v1/agents/invoice-extractor:v1/execute"
    bad = post(api, url, {"inputs": {"file": "a.pdf"}, "budget": {"steps": "x"}})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "budget.steps"
    good = post(api, url, {"inputs": {"file": "a.pdf"}, "budget": {"steps": 3}})
    assert good.status_code == 202, good.content
    assert Execution.objects.get(pk=good.json()["id"]).budget == {"limits": {"steps": 3}}


def test_a_version_budget_applies_and_the_start_budget_overrides_it_key_by_key(workspace, api):
    AgentVersionFactory(
        agent__workspace=workspace,
        agent__name="bot",
        version="v1",
        config={"budget": {"cost": 1, "steps": 50, "soft": {"cost": 0.5}}},
    )
    plain = Execution.objects.get(pk=start(api, None, agent="bot:v1"))
    assert plain.budget == {"limits": {"cost": "1", "steps": 50}, "soft": {"cost": "0.5"}}
    tighter = Execution.objects.get(pk=start(api, {"cost": 0.25}, agent="bot:v1"))
    assert tighter.budget["limits"] == {"cost": "0.25", "steps": 50}


def test_a_version_with_a_bad_budget_cannot_be_saved(workspace):
    version = AgentVersionFactory.build(
        agent=AgentVersionFactory(agent__workspace=workspace).agent,
        version="v9",
        config={"budget": {"cost": "free"}},
    )
    with pytest.raises(Exception, match=r"budget\.cost"):
        version.full_clean()


# --- the JSON door -------------------------------------------------------------------


# Steps are numbered from 0, as the timeline shows them ("step #2" is the third).


def test_a_hard_cost_limit_stops_the_run_at_the_crossing_step(
    api, hooked_version, receiver, django_capture_on_commit_callbacks
):
    pk = start(api, {"cost": 0.5})
    url = f"/api/v1/executions/{pk}/steps"
    first = post(api, url, [model_call(0.2), model_call(0.2)]).json()
    assert first["stop"] is None
    with django_capture_on_commit_callbacks(execute=True):
        answer = post(api, url, [model_call(0.12), model_call(0.05)])
    assert answer.status_code == 201
    stop = answer.json()["stop"]
    assert stop["status"] == "terminated" and stop["limit"] == "cost" and stop["step"] == 2
    assert stop["reason"] == "budget: cost $0.52 passed $0.50 at step #2"
    execution = Execution.objects.get(pk=pk)
    assert execution.status == Status.TERMINATED
    assert execution.stopped_by == "budget"
    assert execution.failure_reason == stop["reason"]
    crossing = Step.objects.get(execution=execution, sequence=2)
    assert crossing.attributes[budgets.STOP_ATTRIBUTE] == "cost $0.52 passed $0.50"
    assert (
        budgets.STOP_ATTRIBUTE not in Step.objects.get(execution=execution, sequence=3).attributes
    )
    # The runtime heard of it once, signed as every control-plane webhook.
    [cancel] = receiver.requests
    assert cancel.event == "cancel"
    assert dispatch.verify(cancel.body, SECRET, cancel.headers["X-Runboard-Signature"])
    assert cancel.json["execution"]["status"] == "terminated"


def test_a_runtime_without_a_webhook_learns_the_stop_on_its_next_report(api):
    pk = start(api, {"steps": 2})
    url = f"/api/v1/executions/{pk}/steps"
    post(api, url, [model_call(0), model_call(0), model_call(0)])
    assert Execution.objects.get(pk=pk).status == Status.TERMINATED
    later = post(api, url, model_call(0)).json()
    assert later["stop"]["status"] == "terminated"
    assert later["stop"]["reason"] == "budget: steps 3 passed 2 at step #2"
    # The late step is kept (the runtime did the work), and nothing is stopped twice.
    assert Execution.objects.get(pk=pk).step_count == 4


def test_tokens_limit(api):
    pk = start(api, {"tokens": 250})
    post(api, f"/api/v1/executions/{pk}/steps", [model_call(0), model_call(0), model_call(0)])
    execution = Execution.objects.get(pk=pk)
    assert execution.failure_reason == "budget: tokens 330 passed 250 at step #2"


def test_a_soft_limit_only_flags_the_run(api):
    pk = start(api, {"soft": {"cost": 0.3}, "cost": 10})
    url = f"/api/v1/executions/{pk}/steps"
    post(api, url, [model_call(0.2), model_call(0.2), model_call(0.2)])
    execution = Execution.objects.get(pk=pk)
    assert execution.status == Status.RUNNING
    assert execution.budget["flagged"] is True
    [flag] = execution.budget["flags"]
    assert (flag["limit"], flag["sequence"]) == ("cost", 1)
    assert Execution.objects.filter(budget__flagged=True).get() == execution
    step = Step.objects.get(execution=execution, sequence=1)
    assert step.attributes[budgets.SOFT_ATTRIBUTE] == "cost $0.40 passed $0.30"
    # Flagged once, not on every later step.
    post(api, url, model_call(0.2))
    assert len(Execution.objects.get(pk=pk).budget["flags"]) == 1


def test_a_run_without_a_budget_costs_no_extra_query(api):
    plain = start(api, None)
    budgeted = start(api, {"cost": 100})
    counts = []
    for pk in (plain, budgeted):
        # The first report moves the run to running; measure a later one.
        post(api, f"/api/v1/executions/{pk}/steps", model_call(0.1))
    for pk in (plain, budgeted):
        with CaptureQueriesContext(connection) as queries:
            post(api, f"/api/v1/executions/{pk}/steps", [model_call(0.1), model_call(0.1)])
        counts.append(len(queries))
    # The check reads nothing: the budget came with the locked row. Under the limit and
    # without loop detection it writes nothing either.
    assert counts[0] == counts[1]


# --- loops ---------------------------------------------------------------------------


def tool(name, args):
    return {"kind": "tool_call", "name": name, "input": args}


def test_the_same_tool_with_the_same_arguments_in_a_row_stops_the_run(api):
    pk = start(api, {"loop": {"tool": 3}})
    url = f"/api/v1/executions/{pk}/steps"
    # Model calls between the tool calls do not break the row: an agent loop alternates.
    post(api, url, [tool("search", {"q": "a"}), model_call(0), tool("search", {"q": "a"})])
    assert Execution.objects.get(pk=pk).status == Status.RUNNING
    # Other arguments start a new row.
    post(api, url, [tool("search", {"q": "b"}), tool("search", {"q": "a"})])
    assert Execution.objects.get(pk=pk).status == Status.RUNNING
    answer = post(api, url, [tool("search", {"q": "a"}), tool("search", {"q": "a"})]).json()
    assert answer["stop"]["limit"] == "loop"
    assert answer["stop"]["reason"] == (
        "budget: loop: tool search called 3 times in a row with the same arguments at step #6"
    )


def test_the_same_model_reply_repeated_stops_the_run(api):
    pk = start(api, {"loop": 2})
    url = f"/api/v1/executions/{pk}/steps"
    post(api, url, [model_call(0, output={"text": "I will try again"})])
    post(api, url, [tool("retry", {"n": 1}), model_call(0, output={"text": "other"})])
    answer = post(api, url, [model_call(0, output={"text": "other"})]).json()
    assert (
        answer["stop"]["reason"] == "budget: loop: the same model reply 2 times in a row at step #3"
    )


# --- the OTLP door -------------------------------------------------------------------


def llm_span(trace, span_id, parent, start, tokens):
    return span(
        trace,
        span_id,
        parent,
        name="chat",
        start=start,
        end=start + 5,
        attrs={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "claude-sonnet",
            "gen_ai.usage.input_tokens": tokens,
            "gen_ai.usage.output_tokens": 0,
        },
    )


def test_a_limit_crossed_by_spans_stops_the_run_and_the_otlp_answer_says_so(
    workspace, api, receiver, django_capture_on_commit_callbacks
):
    AgentVersionFactory(
        agent__workspace=workspace,
        agent__name="support-bot",
        version="2.1",
        config={"budget": {"tokens": 1000}},
        webhook_url=receiver.url,
        webhook_secret=SECRET,
    )
    trace = bytes(range(16))
    root = b"\x01" * 8
    # The children first, the root still open: the run is running.
    body = otlp_request(llm_span(trace, b"\x02" * 8, root, 10, 600))
    first = send(api, body, content_type="application/x-protobuf")
    assert first.status_code == 200
    execution = Execution.objects.get(trace_id=trace.hex())
    assert execution.budget == {"limits": {"tokens": 1000}}
    assert execution.status == Status.RUNNING
    with django_capture_on_commit_callbacks(execute=True):
        body = otlp_request(
            llm_span(trace, b"\x03" * 8, root, 20, 300), llm_span(trace, b"\x04" * 8, root, 30, 300)
        )
        answer = send(api, body, content_type="application/x-protobuf")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    message = ExportTraceServiceResponse.FromString(answer.content)
    assert message.partial_success.rejected_spans == 0
    assert "terminated: budget: tokens 1,200 passed 1,000 at step #2" in (
        message.partial_success.error_message
    )
    execution.refresh_from_db()
    assert execution.status == Status.TERMINATED
    assert Step.objects.get(span_id=(b"\x04" * 8).hex()).attributes[budgets.STOP_ATTRIBUTE]
    assert [r.event for r in receiver.requests] == ["cancel"]
    # OTLP/JSON exporters read the same message.
    again = api.post(
        "/v1/traces",
        json.dumps(
            {
                "resourceSpans": [
                    {
                        "resource": {
                            "attributes": [
                                {"key": "service.name", "value": {"stringValue": "support-bot"}}
                            ]
                        },
                        "scopeSpans": [
                            {
                                "spans": [
                                    {
                                        "traceId": trace.hex(),
                                        "spanId": "05" * 8,
                                        "parentSpanId": root.hex(),
                                        "name": "late",
                                        "startTimeUnixNano": "1767225600000000000",
                                        "endTimeUnixNano": "1767225600100000000",
                                    }
                                ]
                            }
                        ],
                    }
                ]
            }
        ),
        content_type="application/json",
    )
    assert "terminated" in again.json()["partialSuccess"]["errorMessage"]


# --- concurrent batches --------------------------------------------------------------


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: SQLite serialises writers (IMMEDIATE transactions)",
)
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_batches_cannot_both_pass_the_limit(workspace, agent_version, monkeypatch):
    """Each batch alone stays under the limit; together they pass it.

    Both transactions are held, after reading the run, until the other has read it
    too or is seen waiting for the row lock (pg_stat_activity), so the race happens
    every time rather than when the threads happen to overlap. Shown to fail with the
    select_for_update in steps_append removed (2026-12-05): both batches read totals
    of $0.00, each wrote $0.30, the run ended at $0.30, running, never stopped.
    Explicit sequences keep the steps' own unique index out of it: the lost update
    is the budget's race, not the sequences'."""
    import threading
    import time

    from django.db import connections

    from executions.ingest import services
    from executions.ingest.steps import StepRecord
    from tests.factories import ExecutionFactory

    execution = ExecutionFactory(
        workspace=workspace,
        agent_version=agent_version,
        status=Status.RUNNING,
        completed_at=None,
        cost_usd=0,
        step_count=0,
        budget=budgets.parse({"cost": 0.5}),
    )
    pids: dict[str, int] = {}
    have_read = {name: threading.Event() for name in ("a", "b")}
    ready = threading.Barrier(2)
    errors = []
    fill_costs = services.fill_costs

    def other_is_waiting_for_the_lock(name) -> bool:
        other = "b" if name == "a" else "a"
        if have_read[other].is_set():
            return True
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                [pids[other]],
            )
            row = cursor.fetchone()
        return bool(row and row[0])

    def rendezvous(records, *, workspace_id):
        # Called right after the run's row was read (under the lock, if any).
        name = threading.current_thread().name
        have_read[name].set()
        deadline = time.monotonic() + 30
        while not other_is_waiting_for_the_lock(name):
            assert time.monotonic() < deadline, "the other batch neither read nor waited"
            time.sleep(0.01)
        return fill_costs(records, workspace_id=workspace_id)

    monkeypatch.setattr(services, "fill_costs", rendezvous)

    def report(name, first):
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pids[name] = cursor.fetchone()[0]
            records = [
                StepRecord(
                    kind="model_call",
                    name=f"{name}-{i}",
                    sequence=first + i,
                    cost_usd=Decimal("0.1"),
                )
                for i in range(3)
            ]
            ready.wait()
            services.steps_append(workspace=workspace, execution_id=execution.pk, records=records)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=report, args=(name, first), name=name)
        for name, first in (("a", 0), ("b", 3))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = Execution.objects.get(pk=execution.pk)
    assert stored.cost_usd == Decimal("0.6")
    assert stored.step_count == 6
    assert stored.status == Status.TERMINATED
    # The second batch to take the lock crossed at its third step, on the totals the
    # first one wrote (which batch was second is up to the scheduler: step #2 or #5).
    crossing = stored.budget["stop"]["sequence"]
    assert crossing in (2, 5)
    assert stored.failure_reason == f"budget: cost $0.60 passed $0.50 at step #{crossing}"
    marked = [s.sequence for s in Step.objects.filter(execution=stored) if s.attributes]
    assert marked == [crossing]


# --- the pages -----------------------------------------------------------------------


def test_the_detail_page_marks_the_crossing_step_and_the_soft_flag(api, alice_client):
    pk = start(api, {"cost": 0.5, "soft": {"cost": 0.15}})
    post(api, f"/api/v1/executions/{pk}/steps", [model_call(0.2), model_call(0.2), model_call(0.2)])
    html = alice_client.get(f"/executions/{pk}/").content.decode()
    assert "Soft limit: cost $0.20 passed $0.15" in html
    assert "Stopped here: budget: cost $0.60 passed $0.50 at step #2" in html
    # Stopped: the header says terminated, not "over soft budget" as well.
    assert "over soft budget" not in html


def test_a_flagged_run_shows_its_badge(api, alice_client):
    pk = start(api, {"soft": {"steps": 1}})
    post(api, f"/api/v1/executions/{pk}/steps", [model_call(0), model_call(0)])
    html = alice_client.get(f"/executions/{pk}/").content.decode()
    assert 'class="budget-pill" title="steps 2 passed 1"' in html


def test_the_table_filters_runs_by_budget(api, alice_client):
    flagged = start(api, {"soft": {"steps": 1}})
    stopped = start(api, {"steps": 1})
    plain = start(api, None)
    for pk in (flagged, stopped, plain):
        post(api, f"/api/v1/executions/{pk}/steps", [model_call(0), model_call(0)])
    over = alice_client.get("/executions/?budget=flagged").content.decode()
    assert flagged[:8] in over and stopped[:8] not in over and plain[:8] not in over
    ended = alice_client.get("/executions/?budget=stopped").content.decode()
    assert stopped[:8] in ended and flagged[:8] not in ended and plain[:8] not in ended
    bad = alice_client.get("/executions/?budget=broke")
    assert "budget" in bad.content.decode() and "Select a valid choice" in bad.content.decode()


def row_of(html: str, pk: str) -> str:
    start = html.index(f'id="row-{pk}"')
    return html[start : html.index("</tr>", start)]


def test_the_table_rows_show_the_budget_badge(api, alice_client):
    flagged = start(api, {"soft": {"steps": 1}})
    stopped = start(api, {"steps": 1, "soft": {"steps": 1}})
    plain = start(api, None)
    for pk in (flagged, stopped, plain):
        post(api, f"/api/v1/executions/{pk}/steps", [model_call(0), model_call(0)])
    html = alice_client.get("/executions/?flat=1").content.decode()
    assert (
        '<span class="budget-pill" title="Over a soft limit: steps 2 passed 1">'
        "over soft budget</span>" in row_of(html, flagged)
    )
    # A stopped run says so, with its reason, rather than also "over soft budget".
    stop = row_of(html, stopped)
    assert (
        'class="budget-pill budget-pill-stop" title="budget: steps 2 passed 1 at step #1">'
        "budget stop</span>" in stop
    )
    assert "over soft budget" not in stop
    assert "budget-pill" not in row_of(html, plain)


def test_the_budget_filter_and_badges_cost_no_query_per_row(api, alice_client):
    def page():
        with CaptureQueriesContext(connection) as queries:
            response = alice_client.get("/executions/?budget=flagged&flat=1")
        assert response.status_code == 200
        return len(queries.captured_queries), response.content.decode().count("over soft budget")

    first = start(api, {"soft": {"steps": 1}})
    post(api, f"/api/v1/executions/{first}/steps", [model_call(0), model_call(0)])
    page()  # the first request of a session fills caches (session, content types)
    few, shown = page()
    assert shown == 1
    for _ in range(5):
        pk = start(api, {"soft": {"steps": 1}})
        post(api, f"/api/v1/executions/{pk}/steps", [model_call(0), model_call(0)])
    many, shown = page()
    assert shown == 6
    assert many == few


def test_a_quiet_run_past_its_seconds_is_stopped_by_the_scheduler(
    api, hooked_version, receiver, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    quiet = start(api, {"seconds": 60})
    fresh = start(api, {"seconds": 600})
    for pk in (quiet, fresh):
        post(api, f"/api/v1/executions/{pk}/steps", model_call(0))
    Execution.objects.filter(pk=quiet).update(started_at=timezone.now() - timedelta(seconds=90))
    with django_capture_on_commit_callbacks(execute=True):
        assert budgets.seconds_sweep() == 1
    stopped = Execution.objects.get(pk=quiet)
    assert stopped.status == Status.TERMINATED
    assert stopped.failure_reason.startswith("budget: duration 9")
    assert stopped.failure_reason.endswith("s passed 60s without a report")
    assert Execution.objects.get(pk=fresh).status == Status.RUNNING
    assert [r.event for r in receiver.requests] == ["cancel"]
    # A second round finds nothing left to stop.
    assert budgets.seconds_sweep() == 0


def test_the_api_shows_the_runs_budget_and_its_stop(api):
    pk = start(api, {"steps": 1, "loop": 3})
    post(api, f"/api/v1/executions/{pk}/steps", [model_call(0), model_call(0)])
    budget = api.get(f"/api/v1/executions/{pk}").json()["budget"]
    assert budget["limits"] == {"steps": 1}
    assert budget["loop"] == {"tool": 3, "reply": 3}
    assert budget["stop"]["reason"] == "budget: steps 2 passed 1 at step #1"
    assert "state" not in budget
    plain = start(api, None)
    assert api.get(f"/api/v1/executions/{plain}").json()["budget"] is None
