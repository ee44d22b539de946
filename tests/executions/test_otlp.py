"""POST /v1/traces with hand-made bodies: protobuf and OTLP/JSON, gzip, the GenAI semantic
conventions (current and older names) and OpenInference, traces spread over several
requests, idempotency, partial success, and every way a request can be refused."""

import gzip
import json
import secrets
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from agents.models import ApiKey, ModelPrice
from executions import counters
from executions.models import Execution, Source, Step, StepKind, StepStatus
from executions.models import Status as RunStatus
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z in nanoseconds


@pytest.fixture
def otlp(workspace):
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def value(v):
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[value(x) for x in v]))
    return AnyValue(string_value=v)


def span(trace, span_id, parent=b"", name="span", attrs=None, start=0, end=10, **extra):
    s = Span(
        trace_id=trace,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        start_time_unix_nano=T0 + start * 1_000_000,
        end_time_unix_nano=T0 + end * 1_000_000,
        attributes=[KeyValue(key=k, value=value(v)) for k, v in (attrs or {}).items()],
        **extra,
    )
    return s


def request(*spans, service="support-bot", version="2.1"):
    message = ExportTraceServiceRequest()
    rs = message.resource_spans.add()
    rs.resource.attributes.extend(
        [
            KeyValue(key="service.name", value=value(service)),
            KeyValue(key="service.version", value=value(version)),
            KeyValue(key="deployment.environment", value=value("prod")),
        ]
    )
    scope = rs.scope_spans.add()
    scope.scope.name = "tests"
    scope.spans.extend(spans)
    return message.SerializeToString()


def send(client, body, content_type="application/x-protobuf", **headers):
    return client.post("/v1/traces", body, content_type=content_type, **headers)


def ids():
    return secrets.token_bytes(16), secrets.token_bytes(8)


class TestProtobuf:
    def test_a_trace_becomes_an_execution_and_its_spans_steps(self, otlp, workspace):
        trace, root = ids()
        llm, tool = secrets.token_bytes(8), secrets.token_bytes(8)
        body = request(
            span(
                trace,
                root,
                name="invoke_agent",
                attrs={
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "support-agent",
                    "gen_ai.conversation.id": "conv-9",
                    "gen_ai.input.messages": json.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": "Refund?"}]}]
                    ),
                    "gen_ai.output.messages": json.dumps(
                        [{"role": "assistant", "parts": [{"type": "text", "content": "Done."}]}]
                    ),
                },
                end=900,
            ),
            span(
                trace,
                llm,
                root,
                name="chat claude",
                start=10,
                end=400,
                attrs={
                    # Current GenAI semantic conventions.
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "anthropic",
                    "gen_ai.request.model": "claude-sonnet",
                    "gen_ai.usage.input_tokens": 900,
                    "gen_ai.usage.output_tokens": 50,
                    "gen_ai.usage.cost": 0.02,
                    "gen_ai.input.messages": json.dumps([{"role": "user", "content": "Refund?"}]),
                    "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": "ok"}]),
                },
            ),
            span(
                trace,
                tool,
                root,
                name="execute_tool refund",
                start=400,
                end=800,
                attrs={
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "refund",
                    "gen_ai.tool.call.id": "call_1",
                    "gen_ai.tool.call.arguments": '{"order": "A-1"}',
                    "gen_ai.tool.call.result": '{"refunded": true}',
                },
            ),
        )
        response = send(otlp, body)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/x-protobuf"
        parsed = ExportTraceServiceResponse()
        parsed.ParseFromString(response.content)
        assert not parsed.HasField("partial_success")

        execution = Execution.objects.get(workspace=workspace)
        assert (execution.trace_id, execution.source) == (trace.hex(), Source.OTLP)
        assert execution.agent_name == "support-agent"
        assert execution.version_name == "2.1"
        assert execution.status == RunStatus.COMPLETED
        assert execution.session_id == "conv-9"
        assert execution.duration_ms == 900
        # The agent span's conversation: the question asked and the reply given.
        assert execution.input == {"input": "Refund?"}
        assert execution.output == "Done."
        assert execution.metadata["root_span"] == "invoke_agent"
        assert execution.metadata["deployment.environment"] == "prod"
        assert execution.request["root_span_id"] == root.hex()

        chat = Step.objects.get(execution=execution, span_id=llm.hex())
        assert (chat.kind, chat.model) == (StepKind.MODEL_CALL, "claude-sonnet")
        assert (chat.prompt_tokens, chat.completion_tokens) == (900, 50)
        assert chat.cost_usd == Decimal("0.02")
        assert chat.duration_ms == 390
        assert chat.output == [{"role": "assistant", "content": "ok"}]
        assert "gen_ai.input.messages" not in chat.attributes  # kept once, as the input
        assert chat.attributes["gen_ai.provider.name"] == "anthropic"

        refund = Step.objects.get(execution=execution, span_id=tool.hex())
        assert (refund.kind, refund.name) == (StepKind.TOOL_CALL, "refund")
        assert refund.input == {"order": "A-1"}
        assert refund.output == {"refunded": True}
        assert execution.step_count == 2
        assert execution.total_tokens == 950
        assert execution.cost_usd == Decimal("0.02")
        assert counters.total(workspace=workspace, agent_names=["support-agent"]) == 1

    def test_older_genai_names_and_openllmetry_flattened_prompts(self, otlp, workspace):
        ModelPrice.objects.update_or_create(
            workspace=None,
            model="gpt-3.5-turbo",
            defaults={"input_per_million": Decimal("1"), "output_per_million": Decimal("2")},
        )
        trace, root = ids()
        send(
            otlp,
            request(
                span(
                    trace,
                    root,
                    name="openai.chat",
                    attrs={
                        "gen_ai.system": "openai",
                        "gen_ai.request.model": "gpt-3.5-turbo",
                        "gen_ai.usage.prompt_tokens": 1000,
                        "gen_ai.usage.completion_tokens": 500,
                        "llm.usage.total_tokens": 1500,
                        "gen_ai.prompt.0.role": "system",
                        "gen_ai.prompt.0.content": "Be brief.",
                        "gen_ai.prompt.1.role": "user",
                        "gen_ai.prompt.1.content": "Hi",
                        "gen_ai.completion.0.role": "assistant",
                        "gen_ai.completion.0.content": "Hello.",
                    },
                )
            ),
        )
        step = Step.objects.get(execution__workspace=workspace)
        assert step.kind == StepKind.MODEL_CALL  # a root that is a model call is a step too
        assert step.input == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ]
        assert step.output == [{"role": "assistant", "content": "Hello."}]
        assert (step.prompt_tokens, step.completion_tokens) == (1000, 500)
        assert step.cost_usd == Decimal("0.002000")  # from the price table

    def test_openinference_kinds_and_an_error_with_an_exception_event(self, otlp, workspace):
        trace, root = ids()
        guard = secrets.token_bytes(8)
        failing = span(
            trace,
            guard,
            root,
            name="pii check",
            attrs={"openinference.span.kind": "GUARDRAIL", "input.value": "my card is 4111"},
            status=Status(code=Status.STATUS_CODE_ERROR, message="PII found"),
        )
        failing.events.add(
            name="exception",
            time_unix_nano=T0,
            attributes=[
                KeyValue(key="exception.type", value=value("GuardrailError")),
                KeyValue(key="exception.message", value=value("card number")),
                KeyValue(key="exception.stacktrace", value=value("Traceback ...")),
            ],
        )
        chain = span(
            trace,
            root,
            name="pipeline",
            attrs={
                "openinference.span.kind": "CHAIN",
                "session.id": "s-1",
                "input.value": "plain text question",
                "metadata": json.dumps({"tenant": "t1"}),
                "tag.tags": ["beta"],
            },
            status=Status(code=Status.STATUS_CODE_ERROR, message="guardrail tripped"),
        )
        send(otlp, request(failing, chain))
        execution = Execution.objects.get(workspace=workspace)
        assert execution.status == RunStatus.FAILED
        assert execution.error == "guardrail tripped"
        assert execution.input == {"input": "plain text question"}
        assert execution.metadata["tenant"] == "t1"
        assert execution.metadata["tags"] == ["beta"]
        assert counters.total(workspace=workspace, statuses=["failed"]) == 1
        step = Step.objects.get(execution=execution)
        assert (step.kind, step.status) == (StepKind.GUARDRAIL, StepStatus.FAILED)
        # The exception's type and message, once (not the status message as well).
        assert step.error == "GuardrailError: card number"
        assert execution.failure_reason == "Step “pii check” failed: GuardrailError: card number"
        assert step.attributes["exception.stacktrace"] == "Traceback ..."

    def test_gzip_bodies_are_read(self, otlp, workspace):
        trace, root = ids()
        body = gzip.compress(request(span(trace, root, name="job")))
        response = send(otlp, body, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 200
        assert Execution.objects.filter(workspace=workspace, trace_id=trace.hex()).exists()


class TestAssembly:
    def test_children_before_parents_over_several_requests(self, otlp, workspace):
        trace, root = ids()
        child, grandchild = secrets.token_bytes(8), secrets.token_bytes(8)
        agent = {"gen_ai.agent.name": "planner", "gen_ai.operation.name": "invoke_agent"}

        send(otlp, request(span(trace, grandchild, child, name="grandchild", start=2, end=3)))
        execution = Execution.objects.get(workspace=workspace)
        assert execution.status == RunStatus.RUNNING
        assert execution.agent_name == "support-bot"  # service.name, until the root says more
        assert counters.total(workspace=workspace, statuses=["running"]) == 1

        send(otlp, request(span(trace, child, root, name="child", start=1, end=4)))
        send(otlp, request(span(trace, root, name="root", attrs=agent, start=0, end=5)))

        execution.refresh_from_db()
        assert Execution.objects.filter(workspace=workspace).count() == 1
        assert execution.status == RunStatus.COMPLETED
        assert execution.agent_name == "planner"
        assert execution.duration_ms == 5
        steps = {s.name: s for s in Step.objects.filter(execution=execution)}
        assert steps["grandchild"].parent == steps["child"]
        assert steps["child"].parent is None  # under the root, which is the execution
        # Renumbered by start time once the earlier-starting child arrived.
        assert (steps["child"].sequence, steps["grandchild"].sequence) == (0, 1)
        assert execution.step_count == 2
        assert counters.total(workspace=workspace) == 1
        assert (
            counters.total(workspace=workspace, agent_names=["planner"], statuses=["completed"])
            == 1
        )

    def test_the_same_request_twice_creates_nothing_twice(self, otlp, workspace):
        trace, root = ids()
        child = secrets.token_bytes(8)
        body = request(
            span(trace, root, name="root"),
            span(
                trace,
                child,
                root,
                name="llm",
                attrs={"llm.model_name": "m", "llm.token_count.prompt": 5},
            ),
        )
        send(otlp, body)
        send(otlp, body)
        execution = Execution.objects.get(workspace=workspace)
        assert Step.objects.filter(execution=execution).count() == 1
        assert (execution.step_count, execution.prompt_tokens) == (1, 5)
        assert counters.total(workspace=workspace) == 1

    def test_one_trace_id_in_two_workspaces_is_two_executions(self, otlp, other_workspace):
        _, raw = ApiKeyFactory.create_with_raw(workspace=other_workspace)
        trace, root = ids()
        body = request(span(trace, root, name="root"))
        send(otlp, body)
        send(Client(HTTP_AUTHORIZATION=f"Bearer {raw}"), body)
        assert Execution.objects.filter(trace_id=trace.hex()).count() == 2

    def test_a_failure_part_way_leaves_nothing(self, otlp, workspace, monkeypatch):
        def broken(plan):
            raise RuntimeError("disk full")

        monkeypatch.setattr("executions.ingest.traces.apply_plan", broken)
        otlp.raise_request_exception = False
        trace, root = ids()
        response = send(otlp, request(span(trace, root), span(trace, secrets.token_bytes(8), root)))
        assert response.status_code == 500
        assert not Execution.objects.exists()
        assert not Step.objects.exists()
        assert counters.total(workspace=workspace) == 0


class TestJson:
    def test_otlp_json_with_hex_ids_and_string_integers(self, otlp, workspace):
        trace, root = secrets.token_hex(16), secrets.token_hex(8)
        child = secrets.token_hex(8)
        body = {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "js-bot"}}]
                    },
                    "scopeSpans": [
                        {
                            "scope": {"name": "ai"},
                            "spans": [
                                {
                                    "traceId": trace.upper(),
                                    "spanId": child,
                                    "parentSpanId": root,
                                    "name": "ai.generateText.doGenerate",
                                    "kind": 3,
                                    "startTimeUnixNano": str(T0),
                                    "endTimeUnixNano": str(T0 + 2_000_000),
                                    "attributes": [
                                        {
                                            "key": "gen_ai.request.model",
                                            "value": {"stringValue": "gpt-4o"},
                                        },
                                        {
                                            "key": "gen_ai.usage.input_tokens",
                                            "value": {"intValue": "12"},
                                        },
                                        {
                                            "key": "gen_ai.usage.output_tokens",
                                            "value": {"intValue": 3},
                                        },
                                    ],
                                    "status": {"code": "STATUS_CODE_OK"},
                                },
                                {
                                    "traceId": trace,
                                    "spanId": root,
                                    "name": "agent",
                                    "startTimeUnixNano": T0,
                                    "endTimeUnixNano": T0 + 5_000_000,
                                    "attributes": [
                                        {"key": "input.value", "value": {"stringValue": '{"q": 1}'}}
                                    ],
                                },
                            ],
                        }
                    ],
                }
            ]
        }
        response = send(otlp, json.dumps(body), content_type="application/json")
        assert response.status_code == 200
        assert response.json() == {}
        execution = Execution.objects.get(workspace=workspace)
        assert execution.trace_id == trace
        assert execution.agent_name == "js-bot"
        assert execution.input == {"q": 1}
        step = Step.objects.get(execution=execution)
        assert (step.model, step.prompt_tokens, step.completion_tokens) == ("gpt-4o", 12, 3)
        assert step.attributes["otel.span.kind"] == "CLIENT"

    def test_spans_with_bad_ids_are_rejected_and_the_rest_kept(self, otlp, workspace):
        good_trace, good_span = secrets.token_hex(16), secrets.token_hex(8)
        body = {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {"traceId": good_trace, "spanId": good_span, "name": "ok"},
                                {"traceId": "00" * 16, "spanId": secrets.token_hex(8)},
                                {"traceId": good_trace, "spanId": "abcd"},
                            ]
                        }
                    ]
                }
            ]
        }
        response = send(otlp, json.dumps(body), content_type="application/json")
        assert response.status_code == 200
        partial = response.json()["partialSuccess"]
        assert partial["rejectedSpans"] == "2"
        assert "invalid trace id" in partial["errorMessage"]
        assert "invalid span id" in partial["errorMessage"]
        assert Execution.objects.get(workspace=workspace).trace_id == good_trace


class TestRefused:
    def test_no_key_or_a_revoked_key_is_401(self, otlp, workspace):
        trace, root = ids()
        body = request(span(trace, root))
        assert send(Client(), body).status_code == 401
        ApiKey.objects.update(revoked_at=timezone.now())
        response = send(otlp, body)
        assert response.status_code == 401
        assert not Execution.objects.exists()

    def test_a_body_that_is_not_protobuf_is_400_with_the_reason(self, otlp):
        response = send(otlp, b"\xff\xff\xff garbage")
        assert response.status_code == 400
        assert b"ExportTraceServiceRequest" in response.content

    def test_malformed_json_is_400_with_the_reason(self, otlp):
        response = send(otlp, '{"resourceSpans": [', content_type="application/json")
        assert response.status_code == 400
        assert "not valid JSON" in response.json()["message"]
        shape = send(
            otlp, '{"resourceSpans": [{"scopeSpans": 3}]}', content_type="application/json"
        )
        assert shape.status_code == 400
        assert "not OTLP/JSON" in shape.json()["message"]

    def test_other_content_types_are_415(self, otlp):
        response = send(otlp, b"x", content_type="text/plain")
        assert response.status_code == 415
        brotli = send(otlp, b"x", HTTP_CONTENT_ENCODING="br")
        assert brotli.status_code == 415

    def test_bodies_over_the_limit_are_413_compressed_or_not(self, otlp, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
        trace, root = ids()
        big = request(span(trace, root, attrs={"input.value": "x" * 5000}))
        assert send(otlp, big).status_code == 413
        bomb = gzip.compress(big)  # small on the wire, too big once inflated
        assert len(bomb) < 1000
        response = send(otlp, bomb, HTTP_CONTENT_ENCODING="gzip")
        assert response.status_code == 413
        assert not Execution.objects.exists()

    def test_get_is_405(self, otlp):
        assert otlp.get("/v1/traces").status_code == 405


def test_text_the_database_cannot_hold_is_dropped_not_refused(otlp, workspace):
    """A NUL or a lone surrogate in telemetry would make PostgreSQL refuse the whole
    batch; they carry no meaning, so they are removed and the spans kept."""
    trace, root = ids()
    send(
        otlp,
        request(
            span(trace, root, name="a\x00b", attrs={"input.value": '{"text": "x\\u0000y"}'}),
        ),
    )
    execution = Execution.objects.get(workspace=workspace)
    assert execution.input == {"text": "xy"}
    trace_hex, span_hex = secrets.token_hex(16), secrets.token_hex(8)
    # Written by hand: json.dumps would not produce these escapes.
    body = (
        (
            '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "TRACE", "spanId": "SPAN", '
            '"name": "lone \\ud800 surrogate", "attributes": [{"key": "output.value", '
            '"value": {"stringValue": "nul \\u0000 here"}}]}]}]}]}'
        )
        .replace("TRACE", trace_hex)
        .replace("SPAN", span_hex)
    )
    assert send(otlp, body, content_type="application/json").status_code == 200
    other = Execution.objects.get(trace_id=trace_hex)
    assert other.output == "nul  here"
