"""Span fixtures modelled on what each library's source writes (attribute names and
value shapes as they send them): the Vercel AI SDK, MLflow, Langfuse's SDK, older
OpenLLMetry, GenAI events on the span and as /v1/logs records, and the rules that
hold for all of them (string numbers, tokens without a model, errors once, a failure
nothing recovered from)."""

import json
import secrets
from decimal import Decimal

import pytest
from django.test import Client
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from agents.model_prices import prices_apply_defaults
from agents.models import ModelPrice
from executions.models import Execution, PendingSpanEvents, Step, StepKind, StepStatus
from executions.models import Status as RunStatus
from tests.factories import ApiKeyFactory

from .test_otlp import T0, ids, request, send, span, value

pytestmark = pytest.mark.django_db

QUESTION = "What is the weather in Paris?"
ANSWER = "It is 18 °C in Paris."
ERROR = Status(code=Status.STATUS_CODE_ERROR)


@pytest.fixture
def otlp(workspace):
    prices_apply_defaults(ModelPrice)
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def sid():
    return secrets.token_bytes(8)


def event(s, name, attrs):
    s.events.add(
        name=name,
        time_unix_nano=T0,
        attributes=[KeyValue(key=k, value=value(v)) for k, v in attrs.items()],
    )
    return s


def steps(workspace):
    return {s.name: s for s in Step.objects.filter(execution__workspace=workspace)}


def test_vercel_ai_sdk(otlp, workspace):
    """ai.generateText around two doGenerate calls and an ai.toolCall (ai SDK v5 names)."""
    trace, root = ids()
    tool_calls = [
        {
            "toolCallType": "function",
            "toolCallId": "call_1",
            "toolName": "weather",
            "input": json.dumps({"city": "Paris"}),
        }
    ]
    send(
        otlp,
        request(
            span(
                trace,
                root,
                name="ai.generateText",
                end=100,
                attrs={
                    "ai.operationId": "ai.generateText",
                    "operation.name": "ai.generateText weather",
                    "ai.telemetry.functionId": "weather",
                    "ai.model.id": "gpt-4o-mini",
                    "ai.model.provider": "openai.chat",
                    "ai.prompt": json.dumps({"system": "Be brief.", "prompt": QUESTION}),
                    "ai.response.text": ANSWER,
                    # The whole call's usage: its calls' summed, not counted twice.
                    "ai.usage.inputTokens": 153,
                    "ai.usage.outputTokens": 30,
                },
            ),
            span(
                trace,
                sid(),
                root,
                name="ai.generateText.doGenerate",
                start=1,
                end=20,
                attrs={
                    "ai.operationId": "ai.generateText.doGenerate",
                    "ai.model.id": "gpt-4o-mini",
                    "ai.prompt.messages": json.dumps(
                        [
                            {"role": "system", "content": "Be brief."},
                            {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
                        ]
                    ),
                    "ai.response.toolCalls": json.dumps(tool_calls),
                    "ai.usage.inputTokens": 70,
                    "ai.usage.outputTokens": 12,
                    "gen_ai.system": "openai.chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                },
            ),
            span(
                trace,
                sid(),
                root,
                name="ai.toolCall",
                start=21,
                end=30,
                attrs={
                    "ai.operationId": "ai.toolCall",
                    "ai.toolCall.name": "weather",
                    "ai.toolCall.id": "call_1",
                    "ai.toolCall.args": json.dumps({"city": "Paris"}),
                    "ai.toolCall.result": json.dumps("18 °C and sunny"),
                },
            ),
            span(
                trace,
                sid(),
                root,
                name="ai.generateText.doGenerate",
                start=31,
                end=90,
                attrs={
                    "ai.operationId": "ai.generateText.doGenerate",
                    "ai.response.text": ANSWER,
                    "ai.response.model": "gpt-4o-mini-2024-07-18",
                    "ai.usage.inputTokens": "83",
                    "ai.usage.outputTokens": "18",
                },
            ),
        ),
    )
    execution = Execution.objects.get(workspace=workspace)
    assert execution.agent_name == "weather"
    assert (execution.input, execution.output) == ({"input": QUESTION}, ANSWER)
    assert (execution.prompt_tokens, execution.completion_tokens) == (153, 30)
    assert execution.cost_usd == Decimal("0.00004095")
    tool = Step.objects.get(execution=execution, kind=StepKind.TOOL_CALL)
    assert (tool.name, tool.input, tool.output) == ("weather", {"city": "Paris"}, "18 °C and sunny")
    first, second = Step.objects.filter(execution=execution, kind=StepKind.MODEL_CALL)
    assert first.input[1] == {"role": "user", "content": QUESTION}
    assert first.output == [
        {
            "role": "assistant",
            "tool_calls": [{"id": "call_1", "name": "weather", "arguments": {"city": "Paris"}}],
        }
    ]
    assert second.output == [{"role": "assistant", "content": ANSWER}]


def test_mlflow_tracing(otlp, workspace):
    """MLflow's span attributes: its span type, JSON inputs and outputs, token usage."""
    trace, root = ids()
    tool = sid()
    failing = span(
        trace,
        tool,
        root,
        name="get_weather",
        start=30,
        end=40,
        status=ERROR,
        attrs={
            "mlflow.spanType": "TOOL",
            "mlflow.spanInputs": json.dumps({"city": "Atlantis"}),
        },
    )
    event(
        failing,
        "exception",
        {
            "exception.type": "ValueError",
            "exception.message": "unknown city",
            "exception.stacktrace": "Traceback (most recent call last)...",
        },
    )
    send(
        otlp,
        request(
            span(
                trace,
                root,
                name="WeatherAgent.run",
                end=100,
                status=ERROR,
                attrs={
                    "mlflow.traceRequestId": "tr-1",
                    "mlflow.spanType": "AGENT",
                    "mlflow.spanInputs": json.dumps({"question": QUESTION}),
                },
            ),
            span(
                trace,
                sid(),
                root,
                name="ChatOpenAI",
                start=1,
                end=20,
                attrs={
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": json.dumps(
                        {"messages": [{"role": "user", "content": QUESTION}]}
                    ),
                    "mlflow.spanOutputs": json.dumps(
                        {
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {
                                        "role": "assistant",
                                        "content": None,
                                        "tool_calls": [
                                            {
                                                "id": "c1",
                                                "type": "function",
                                                "function": {
                                                    "name": "get_weather",
                                                    "arguments": '{"city": "Atlantis"}',
                                                },
                                            }
                                        ],
                                    },
                                }
                            ]
                        }
                    ),
                    # No model named anywhere: the tokens still count.
                    "mlflow.chat.tokenUsage": json.dumps({"input_tokens": 70, "output_tokens": 12}),
                },
            ),
            failing,
        ),
    )
    execution = Execution.objects.get(workspace=workspace)
    assert execution.input == {"question": QUESTION}
    assert (execution.prompt_tokens, execution.completion_tokens) == (70, 12)
    by_name = steps(workspace)
    assert by_name["ChatOpenAI"].kind == StepKind.MODEL_CALL
    (call,) = by_name["ChatOpenAI"].output[0]["tool_calls"]
    assert call == {"id": "c1", "name": "get_weather", "arguments": {"city": "Atlantis"}}
    assert by_name["get_weather"].error == "ValueError: unknown city"
    assert execution.status == RunStatus.FAILED
    assert execution.failure_reason == "Step “get_weather” failed: ValueError: unknown city"


def test_langfuse_sdk_attributes(otlp, workspace):
    trace, root = ids()
    send(
        otlp,
        request(
            span(
                trace,
                root,
                name="support-request",
                end=100,
                attrs={
                    "langfuse.trace.name": "support",
                    "langfuse.user.id": "u-7",
                    "langfuse.session.id": "s-9",
                    "langfuse.observation.type": "span",
                    "langfuse.trace.input": json.dumps({"ticket": 42}),
                    "langfuse.trace.output": json.dumps({"answer": "refunded"}),
                },
            ),
            span(
                trace,
                sid(),
                root,
                name="draft-reply",
                start=1,
                end=50,
                attrs={
                    "langfuse.observation.type": "generation",
                    "langfuse.observation.model.name": "gpt-4o",
                    "langfuse.observation.input": json.dumps(
                        [{"role": "user", "content": "Refund?"}]
                    ),
                    "langfuse.observation.output": json.dumps(
                        {"role": "assistant", "content": "Yes."}
                    ),
                    "langfuse.observation.usage_details": json.dumps({"input": 10, "output": 5}),
                    "langfuse.observation.cost_details": json.dumps(
                        {"input": 0.00002, "output": 0.00003}
                    ),
                },
            ),
            span(
                trace,
                sid(),
                root,
                name="refund-api",
                start=60,
                end=70,
                attrs={
                    "langfuse.observation.type": "tool",
                    "langfuse.observation.level": "ERROR",
                    "langfuse.observation.status_message": "quota exceeded",
                    "langfuse.observation.input": json.dumps({"order": "A-1"}),
                },
            ),
        ),
    )
    execution = Execution.objects.get(workspace=workspace)
    assert (execution.input, execution.output) == ({"ticket": 42}, {"answer": "refunded"})
    assert (execution.session_id, execution.metadata["user_id"]) == ("s-9", "u-7")
    by_name = steps(workspace)
    draft = by_name["draft-reply"]
    assert (draft.kind, draft.model, draft.prompt_tokens, draft.completion_tokens) == (
        StepKind.MODEL_CALL,
        "gpt-4o",
        10,
        5,
    )
    assert draft.cost_usd == Decimal("0.00005")  # Langfuse's own cost, not the table's
    assert draft.output == [{"role": "assistant", "content": "Yes."}]
    refund = by_name["refund-api"]
    assert (refund.kind, refund.status, refund.error) == (
        StepKind.TOOL_CALL,
        StepStatus.FAILED,
        "quota exceeded",
    )
    # The root ended OK, but nothing came after the failed call: the run failed.
    assert execution.status == RunStatus.FAILED
    assert execution.failure_reason == "Step “refund-api” failed: quota exceeded"


def test_openllmetry_entities_and_flattened_tool_calls(otlp, workspace):
    """traceloop's decorators: names from traceloop.entity.name, {"args", "kwargs"}
    unwrapped, a returned text JSON-encoded with escaped unicode decoded once."""
    trace, root = ids()
    send(
        otlp,
        request(
            span(
                trace,
                root,
                name="weather_workflow.workflow",
                end=100,
                attrs={
                    "traceloop.span.kind": "workflow",
                    "traceloop.entity.name": "weather_workflow",
                    "traceloop.entity.input": json.dumps({"args": [QUESTION], "kwargs": {}}),
                    "traceloop.entity.output": json.dumps(ANSWER),  # "It is 18 \\u00b0C..."
                },
            ),
            span(
                trace,
                sid(),
                root,
                name="openai.chat",
                start=1,
                end=20,
                attrs={
                    "llm.request.type": "chat",
                    "gen_ai.system": "OpenAI",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.prompt.0.role": "user",
                    "gen_ai.prompt.0.content": QUESTION,
                    "gen_ai.completion.0.role": "assistant",
                    "gen_ai.completion.0.finish_reason": "tool_calls",
                    "gen_ai.completion.0.tool_calls.0.id": "call_1",
                    "gen_ai.completion.0.tool_calls.0.name": "get_weather",
                    "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Paris"}',
                    "gen_ai.usage.prompt_tokens": "70",
                    "gen_ai.usage.completion_tokens": "12",
                },
            ),
            span(
                trace,
                sid(),
                root,
                name="get_weather.tool",
                start=21,
                end=30,
                attrs={
                    "traceloop.span.kind": "tool",
                    "traceloop.entity.name": "get_weather",
                    "traceloop.entity.input": json.dumps({"args": [], "kwargs": {"city": "Paris"}}),
                    "traceloop.entity.output": json.dumps("18 °C and sunny"),
                },
            ),
        ),
    )
    execution = Execution.objects.get(workspace=workspace)
    assert (execution.input, execution.output) == ({"input": QUESTION}, ANSWER)
    by_name = steps(workspace)
    tool = by_name["get_weather"]  # not "get_weather.tool"
    assert (tool.kind, tool.input, tool.output) == (
        StepKind.TOOL_CALL,
        {"city": "Paris"},
        "18 °C and sunny",
    )
    (call,) = by_name["openai.chat"].output[0]["tool_calls"]
    assert call == {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    assert by_name["openai.chat"].cost_usd == Decimal("0.0000177")  # "70" and "12" are numbers


def test_llama_index_workflow_spans(otlp, workspace):
    """OpenInference's LlamaIndex spans as a FunctionAgent sends them: the workflow's
    run span records its internal state and the reprs of its events (no content, so the
    run's question and answer come from its model calls, the raw values kept), a tool's
    input as {"kwargs": {...}} and its output as a ToolOutput."""
    trace, root = ids()
    start_state = {
        "init_state": {"is_running": False, "config": {"steps": {}}},
        "start_event": "AgentWorkflowStartEvent()",
        "tags": {"instrument_tags": {"llamaindex.run_id": "cQZJUfq2jY"}},
    }
    stop = "StopEvent(result=AgentOutput(response=ChatMessage(role=<MessageRole.ASSISTANT: ..."
    result = "ToolCallResult(tool_name='get_weather', tool_kwargs={'city': 'Paris'}, tool_..."
    tool_output = {
        "blocks": [{"text": "18 °C and sunny"}],
        "tool_name": "get_weather",
        "raw_input": {"args": [], "kwargs": {"city": "Paris"}},
        "raw_output": "18 °C and sunny",
        "is_error": False,
    }
    send(
        otlp,
        request(
            span(
                trace,
                root,
                name="FunctionAgent.run",
                end=100,
                attrs={
                    "openinference.span.kind": "CHAIN",
                    "input.value": json.dumps(start_state),
                    "input.mime_type": "application/json",
                    "output.value": stop,
                    "output.mime_type": "text/plain",
                },
            ),
            span(
                trace,
                sid(),
                root,
                name="OpenAI.astream_chat",
                start=1,
                end=20,
                attrs={
                    "openinference.span.kind": "LLM",
                    "llm.model_name": "gpt-4o-mini-2024-07-18",
                    "llm.input_messages.0.message.role": "user",
                    "llm.input_messages.0.message.content": QUESTION,
                    "llm.output_messages.0.message.role": "assistant",
                    "llm.output_messages.0.message.content": ANSWER,
                    "llm.token_count.prompt": 70,
                    "llm.token_count.completion": 12,
                },
            ),
            span(
                trace,
                sid(),
                root,
                name="BaseWorkflowAgent.call_tool",
                start=21,
                end=31,
                attrs={
                    "openinference.span.kind": "CHAIN",
                    "output.value": result,
                    "output.mime_type": "text/plain",
                },
            ),
            span(
                trace,
                sid(),
                root,
                name="FunctionTool.acall",
                start=21,
                end=30,
                attrs={
                    "openinference.span.kind": "TOOL",
                    "tool.name": "get_weather",
                    "input.value": json.dumps({"kwargs": {"city": "Paris"}}),
                    "input.mime_type": "application/json",
                    "output.value": json.dumps(tool_output),
                    "output.mime_type": "application/json",
                },
            ),
        ),
    )
    execution = Execution.objects.get(workspace=workspace)
    assert (execution.input, execution.output) == ({"input": QUESTION}, ANSWER)
    by_name = steps(workspace)
    step = by_name["BaseWorkflowAgent.call_tool"]
    assert step.output is None
    assert step.attributes["output.value"] == result  # one click away, as sent
    tool = by_name["get_weather"]
    assert (tool.input, tool.output) == ({"city": "Paris"}, "18 °C and sunny")


def test_genai_events_on_the_span_and_a_traceback_in_the_status(otlp, workspace):
    """Older GenAI: one event per message on the span; LangChain-style status messages
    that hold the exception's repr and its traceback."""
    trace, root = ids()
    chat = span(
        trace,
        sid(),
        root,
        name="chat",
        start=1,
        end=20,
        attrs={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"},
    )
    event(chat, "gen_ai.system.message", {"content": "Be brief."})
    # Strands writes the content parts JSON-encoded.
    event(chat, "gen_ai.user.message", {"content": json.dumps([{"text": QUESTION}])})
    event(
        chat,
        "gen_ai.choice",
        {"index": 0, "finish_reason": "stop", "message": json.dumps({"content": ANSWER})},
    )
    traceback = (
        "RuntimeError('no weather station')Traceback (most recent call last):\n\n\n"
        '  File "agent.py", line 3, in run\n    raise RuntimeError("no weather station")\n\n\n'
        "RuntimeError: no weather station"
    )
    tool = span(
        trace,
        sid(),
        root,
        name="weather",
        start=30,
        end=40,
        attrs={"openinference.span.kind": "TOOL", "input.value": "Atlantis"},
        status=Status(code=Status.STATUS_CODE_ERROR, message=traceback),
    )
    send(otlp, request(span(trace, root, name="run", end=100), chat, tool))
    by_name = steps(workspace)
    assert by_name["chat"].input == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": QUESTION},
    ]
    assert by_name["chat"].output == [{"role": "assistant", "content": ANSWER}]
    weather = by_name["weather"]
    assert weather.error == "RuntimeError: no weather station"
    assert weather.attributes["exception.stacktrace"].startswith("Traceback")
    # The root had no input or output: the first question and the last reply.
    execution = Execution.objects.get(workspace=workspace)
    assert (execution.input, execution.status) == ({"input": QUESTION}, RunStatus.FAILED)


def _logs_body(trace: bytes, span_id: bytes, records) -> bytes:
    message = ExportLogsServiceRequest()
    scope = message.resource_logs.add().scope_logs.add()
    for name, body in records:
        record = scope.log_records.add(
            trace_id=trace, span_id=span_id, event_name=name, time_unix_nano=T0
        )
        record.body.CopyFrom(_any(body))
    return message.SerializeToString()


def _any(v):
    if isinstance(v, dict):
        return AnyValue(
            kvlist_value=KeyValueList(values=[KeyValue(key=k, value=_any(x)) for k, x in v.items()])
        )
    if isinstance(v, list):
        from opentelemetry.proto.common.v1.common_pb2 import ArrayValue

        return AnyValue(array_value=ArrayValue(values=[_any(x) for x in v]))
    return value(v)


def test_genai_log_records_before_and_after_their_span(otlp, workspace):
    """/v1/logs: messages that come before the span wait for it; after, they fill it."""
    trace, root = ids()
    early, late = sid(), sid()
    # The first call's messages come before any span.
    response = otlp.post(
        "/v1/logs",
        _logs_body(
            trace,
            early,
            [
                ("gen_ai.user.message", {"content": QUESTION}),
                (
                    "gen_ai.choice",
                    {
                        "index": 0,
                        "finish_reason": "tool_calls",
                        "message": {
                            "tool_calls": [
                                {
                                    "id": "c1",
                                    "type": "function",
                                    "function": {
                                        "name": "weather",
                                        "arguments": '{"city": "Paris"}',
                                    },
                                }
                            ]
                        },
                    },
                ),
            ],
        ),
        content_type="application/x-protobuf",
    )
    assert response.status_code == 200
    assert PendingSpanEvents.objects.filter(workspace=workspace).count() == 1
    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}
    send(
        otlp,
        request(
            span(
                trace,
                root,
                name="invoke_agent",
                attrs={"gen_ai.operation.name": "invoke_agent"},
                end=100,
            ),
            span(trace, early, root, name="chat", start=1, end=10, attrs=chat),
            span(trace, late, root, name="chat 2", start=20, end=30, attrs=chat),
        ),
    )
    assert not PendingSpanEvents.objects.exists()
    # The second call's messages come after the whole trace, as OTLP/JSON.
    body = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "traceId": trace.hex(),
                                "spanId": late.hex(),
                                "eventName": "gen_ai.choice",
                                "body": {
                                    "kvlistValue": {
                                        "values": [
                                            {
                                                "key": "message",
                                                "value": {
                                                    "kvlistValue": {
                                                        "values": [
                                                            {
                                                                "key": "content",
                                                                "value": {"stringValue": ANSWER},
                                                            }
                                                        ]
                                                    }
                                                },
                                            }
                                        ]
                                    }
                                },
                            }
                        ]
                    }
                ]
            }
        ]
    }
    assert otlp.post("/v1/logs", json.dumps(body), content_type="application/json").json() == {}
    by_name = steps(workspace)
    assert by_name["chat"].input == [{"role": "user", "content": QUESTION}]
    assert by_name["chat"].output[0]["tool_calls"][0]["arguments"] == {"city": "Paris"}
    assert by_name["chat 2"].output == [{"role": "assistant", "content": ANSWER}]
    execution = Execution.objects.get(workspace=workspace)
    # The run took its input and output from the calls, whenever their messages came.
    assert (execution.input, execution.output) == ({"input": QUESTION}, ANSWER)


def test_logs_are_refused_like_traces(otlp, client):
    assert client.post("/v1/logs", b"", content_type="application/x-protobuf").status_code == 401
    bad = otlp.post("/v1/logs", b"\xff\x00", content_type="application/x-protobuf")
    assert bad.status_code == 400 and b"ExportLogsServiceRequest" in bad.content
    assert otlp.post("/v1/logs", b"{}", content_type="text/plain").status_code == 415
    # Records that are not GenAI content are accepted and dropped.
    plain = _logs_body(b"\x01" * 16, b"\x02" * 8, [("app.log", "hello")])
    assert otlp.post("/v1/logs", plain, content_type="application/x-protobuf").status_code == 200
    assert not PendingSpanEvents.objects.exists()


def test_the_detail_page_shows_conversations_reply_first(otlp, workspace, alice_client):
    from .detail_html import parse

    trace, root = ids()
    tool = sid()
    failing = span(
        trace,
        tool,
        root,
        name="weather",
        start=30,
        end=40,
        status=ERROR,
        attrs={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "weather",
            "gen_ai.tool.call.arguments": json.dumps({"city": "Atlantis"}),
        },
    )
    event(
        failing,
        "exception",
        {
            "exception.type": "RuntimeError",
            "exception.message": "no weather station",
            "exception.stacktrace": "Traceback (most recent call last): …",
        },
    )
    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}
    send(
        otlp,
        request(
            span(
                trace,
                root,
                name="weather-agent run",
                end=100,
                attrs={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather"},
            ),
            span(
                trace,
                sid(),
                root,
                name="chat",
                start=1,
                end=20,
                attrs={
                    **chat,
                    "gen_ai.input.messages": json.dumps(
                        [{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}]
                    ),
                    "gen_ai.output.messages": json.dumps(
                        [
                            {
                                "role": "assistant",
                                "parts": [
                                    {
                                        "type": "tool_call",
                                        "id": "c1",
                                        "name": "weather",
                                        "arguments": {"city": "Atlantis"},
                                    }
                                ],
                            }
                        ]
                    ),
                },
            ),
            failing,
        ),
    )
    execution = Execution.objects.get(workspace=workspace)
    page = parse(alice_client.get(execution.get_absolute_url()).content.decode())
    assert "weather-agent run" in page.select(cls="run-title")[0].text  # the root span's name
    (box,) = page.select(cls="failure-box")
    assert box.text.count("RuntimeError: no weather station") == 1  # said once
    (card,) = page.select(tag="li", cls="kind-model_call")
    lines = [p.text for p in card.select(cls="step-io")]
    # The reply first, its tool call readable; then the prompt's last message.
    assert lines == ['reply→ weather(city: "Atlantis")', f"promptuser: {QUESTION}"]

    step = Step.objects.get(execution=execution, span_id=tool.hex())
    body = alice_client.get(
        f"{execution.get_absolute_url()}steps/{step.sequence}/", HTTP_HX_REQUEST="true"
    ).content.decode()
    body_tree = parse(body)
    assert body_tree.select(cls="step-error-full")[0].text == "RuntimeError: no weather station"
    assert "Traceback" in body_tree.select(cls="step-traceback")[0].text


def test_a_model_call_inside_a_model_call_is_counted_once(otlp, workspace):
    """OpenInference's LLM span around the Anthropic SDK's own span: one call, told twice."""
    trace, root = ids()
    outer = sid()
    usage = {"gen_ai.usage.input_tokens": 70, "gen_ai.usage.output_tokens": 12}
    send(otlp, request(
        span(trace, root, name="agent", end=100, attrs={"openinference.span.kind": "AGENT"}),
        span(trace, outer, root, name="messages.create", start=1, end=20, attrs={
            "openinference.span.kind": "LLM", "llm.model_name": "claude-3-5-haiku-20241022",
            "llm.token_count.prompt": 70, "llm.token_count.completion": 12}),
        span(trace, sid(), outer, name="anthropic.messages.create", start=2, end=19, attrs={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-3-5-haiku-20241022",
            **usage}),
    ))  # fmt: skip
    execution = Execution.objects.get(workspace=workspace)
    assert (execution.prompt_tokens, execution.completion_tokens) == (70, 12)
    assert execution.cost_usd == Decimal("0.000104")  # 70 x $0.80 + 12 x $4 per million
    inner = Step.objects.get(execution=execution, name="anthropic.messages.create")
    assert inner.attributes["runboard.counted_in_parent"]["prompt_tokens"] == 70


def test_a_failed_step_after_its_failed_root(otlp, workspace):
    """OpenTelemetry JS exports each span in its own request, concurrently: the failed
    root can arrive before the failed model call inside it. failure_reason then names
    the call, as it would have had they come together."""
    trace, root = ids()
    refused = "AI_APICallError: The model refused"
    failed = Status(code=Status.STATUS_CODE_ERROR, message="The model refused")
    error = {"exception.type": "AI_APICallError", "exception.message": "The model refused"}
    outer = span(trace, root, name="ai.generateText", end=100, status=failed)
    send(otlp, request(event(outer, "exception", error)))
    execution = Execution.objects.get(workspace=workspace)
    assert execution.failure_reason == f"Step “ai.generateText” failed: {refused}"

    call = span(trace, sid(), root, name="ai.generateText.doGenerate", start=1, end=20,
                status=failed, attrs={"ai.model.id": "gpt-4o-mini"})  # fmt: skip
    send(otlp, request(event(call, "exception", error)))
    execution.refresh_from_db()
    assert execution.status == RunStatus.FAILED
    assert execution.failure_reason == f"Step “ai.generateText.doGenerate” failed: {refused}"
    assert execution.error == refused


def test_a_late_failed_step_does_not_fail_a_run_that_ended_ok(otlp, workspace):
    """A tool error handed back to the model: whether the model went on cannot be told
    from a tool span that comes after the root, so the run stays as its root said."""
    trace, root = ids()
    send(otlp, request(span(trace, root, name="ai.generateText", end=100)))
    tool = span(trace, sid(), root, name="ai.toolCall", start=21, end=30, status=ERROR,
                attrs={"ai.toolCall.name": "get_weather"})  # fmt: skip
    send(otlp, request(tool))
    execution = Execution.objects.get(workspace=workspace)
    assert (execution.status, execution.failure_reason) == (RunStatus.COMPLETED, "")


def test_strands_content_parts_and_tool_events(otlp, workspace):
    """Strands' native spans (older GenAI events): content parts as Bedrock's Converse
    shapes ({"text"}, {"toolUse"}, {"toolResult"}), JSON-encoded, and a tool's arguments
    and result as gen_ai.tool.message and gen_ai.choice events on its execute_tool span."""
    trace, root = ids()
    use = {"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Paris"}}}
    result = {"toolResult": {"toolUseId": "call_1", "status": "success",
                             "content": [{"text": "18 °C and sunny"}]}}  # fmt: skip
    chat = span(trace, sid(), root, name="chat", start=1, end=20, attrs={
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 83, "gen_ai.usage.output_tokens": 18})  # fmt: skip
    event(chat, "gen_ai.user.message", {"content": json.dumps([{"text": QUESTION}])})
    event(chat, "gen_ai.assistant.message", {"content": json.dumps([use])})
    event(chat, "gen_ai.tool.message", {"content": json.dumps([result])})
    event(chat, "gen_ai.choice", {"finish_reason": "end_turn",
                                  "message": json.dumps([{"text": ANSWER}])})  # fmt: skip
    tool = span(trace, sid(), root, name="execute_tool weather", start=21, end=30, attrs={
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "weather"})  # fmt: skip
    event(tool, "gen_ai.tool.message", {"role": "tool", "content": '{"city": "Paris"}'})
    event(tool, "gen_ai.choice", {"message": json.dumps([{"text": "18 °C and sunny"}])})
    agent = span(trace, root, name="invoke_agent weather-agent", end=100,
                 attrs={"gen_ai.operation.name": "invoke_agent"})  # fmt: skip
    send(otlp, request(agent, chat, tool))
    by_name = steps(workspace)
    assert by_name["chat"].input == [
        {"role": "user", "content": QUESTION},
        {"role": "assistant",
         "tool_calls": [{"id": "call_1", "name": "weather", "arguments": {"city": "Paris"}}]},
        {"role": "tool", "content": "18 °C and sunny"},
    ]  # fmt: skip
    assert by_name["chat"].output == [{"role": "assistant", "content": ANSWER}]
    assert (by_name["weather"].input, by_name["weather"].output) == (
        {"city": "Paris"},
        "18 °C and sunny",
    )
