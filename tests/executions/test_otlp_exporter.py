"""The real OpenTelemetry SDK and its OTLP/HTTP exporter, sending to a live test server.

Spans are shaped the way common instrumentation writes them: OpenAI instrumentation
(gen_ai.* with the older token and content names), OpenInference (llm.*, tool.*,
input.value / output.value), and an exception recorded on a failing tool call.
The SimpleSpanProcessor exports each span as it ends, so children reach the server
before their parents, in several requests.
"""

import json
from decimal import Decimal

import pytest
import requests
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

from agents.models import Agent, ModelPrice
from executions import counters
from executions.models import Execution, Source, Step, StepKind, StepStatus
from executions.models import Status as RunStatus
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def key(workspace):
    return ApiKeyFactory.create_with_raw(workspace=workspace)[1]


def _provider(
    live_server, key, *, batch=False, compression=Compression.NoCompression, answers=None
):
    """A tracer provider exporting to the live server; with `answers`, the status code
    of every response the exporter got is appended to it."""
    session = requests.Session()
    if answers is not None:
        session.hooks["response"].append(lambda response, **_: answers.append(response.status_code))
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/v1/traces",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
        compression=compression,
        session=session,
    )
    provider = TracerProvider(
        resource=Resource.create({"service.name": "weather-service", "service.version": "1.4.0"})
    )
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider


def _run_agent(tracer):
    """An agent run: an agent span around an OpenAI chat call, an OpenInference tool
    call with a failing sub-call, and an OpenInference LLM call."""
    with tracer.start_as_current_span("invoke_agent weather-agent") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.agent.name", "weather-agent")
        root.set_attribute("session.id", "chat-42")
        root.set_attribute("input.value", json.dumps({"question": "Weather in Paris?"}))
        root.set_attribute("input.mime_type", "application/json")
        root.set_attribute("metadata", json.dumps({"customer": "acme"}))

        with tracer.start_as_current_span("chat gpt-4o-mini") as chat:
            # opentelemetry-instrumentation-openai (v1 names still emitted by default).
            chat.set_attribute("gen_ai.operation.name", "chat")
            chat.set_attribute("gen_ai.system", "openai")
            chat.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            chat.set_attribute("gen_ai.response.model", "gpt-4o-mini-2024-07-18")
            chat.set_attribute("gen_ai.usage.prompt_tokens", 1000)
            chat.set_attribute("gen_ai.usage.completion_tokens", 200)
            chat.add_event("gen_ai.content.prompt", {"gen_ai.prompt": "Weather in Paris?"})
            chat.add_event("gen_ai.content.completion", {"gen_ai.completion": "Call get_weather"})

        with tracer.start_as_current_span("get_weather") as tool:
            # OpenInference tool span.
            tool.set_attribute("openinference.span.kind", "TOOL")
            tool.set_attribute("tool.name", "get_weather")
            tool.set_attribute("input.value", json.dumps({"city": "Paris"}))
            tool.set_attribute("input.mime_type", "application/json")
            with tracer.start_as_current_span("http GET forecast") as fetch:
                try:
                    raise TimeoutError("forecast service did not answer")
                except TimeoutError as exc:
                    fetch.record_exception(exc)
                    fetch.set_status(Status(StatusCode.ERROR, "forecast timed out"))
            tool.set_attribute("output.value", json.dumps({"temperature": 21}))
            tool.set_attribute("output.mime_type", "application/json")

        with tracer.start_as_current_span("ChatCompletion") as answer:
            # OpenInference LLM span with flattened messages and its own cost.
            answer.set_attribute("openinference.span.kind", "LLM")
            answer.set_attribute("llm.model_name", "gpt-4o")
            answer.set_attribute("llm.token_count.prompt", 300)
            answer.set_attribute("llm.token_count.completion", 40)
            answer.set_attribute("llm.cost.total", 0.0123)
            answer.set_attribute("llm.input_messages.0.message.role", "user")
            answer.set_attribute("llm.input_messages.0.message.content", "Weather in Paris?")
            answer.set_attribute("llm.output_messages.0.message.role", "assistant")
            answer.set_attribute("llm.output_messages.0.message.content", "21 °C and sunny.")

        root.set_attribute("output.value", "21 °C and sunny.")
        return format(root.get_span_context().trace_id, "032x")


def test_spans_exported_children_first_assemble_into_one_execution(live_server, key, workspace):
    ModelPrice.objects.update_or_create(
        workspace=None,
        model="gpt-4o-mini",
        defaults={"input_per_million": Decimal("0.15"), "output_per_million": Decimal("0.60")},
    )
    provider = _provider(live_server, key)
    trace_id = _run_agent(provider.get_tracer("test"))
    provider.shutdown()

    execution = Execution.objects.get(workspace=workspace)
    assert execution.trace_id == trace_id
    assert execution.source == Source.OTLP
    # The root span named the agent; the placeholder made from the first child
    # (service.name) was renamed, and the counters followed.
    assert execution.agent_name == "weather-agent"
    assert Agent.objects.filter(workspace=workspace, name="weather-agent").exists()
    assert counters.total(workspace=workspace) == 1
    assert counters.total(workspace=workspace, agent_names=["weather-service"]) == 0
    assert execution.version_name == "1.4.0"
    assert execution.status == RunStatus.COMPLETED
    assert execution.input == {"question": "Weather in Paris?"}
    assert execution.output == "21 °C and sunny."
    assert execution.session_id == "chat-42"
    assert execution.metadata["customer"] == "acme"
    assert execution.metadata["service.name"] == "weather-service"
    assert execution.completed_at is not None and execution.duration_ms is not None

    steps = {s.name: s for s in Step.objects.filter(execution=execution)}
    assert set(steps) == {"chat gpt-4o-mini", "get_weather", "http GET forecast", "ChatCompletion"}
    assert execution.step_count == 4

    chat = steps["chat gpt-4o-mini"]
    assert chat.kind == StepKind.MODEL_CALL
    assert chat.model == "gpt-4o-mini-2024-07-18"
    assert (chat.prompt_tokens, chat.completion_tokens) == (1000, 200)
    # No cost on the span: priced from the table (dated model name -> gpt-4o-mini).
    assert chat.cost_usd == Decimal("0.000270")
    # A model call's content is a conversation, whichever convention carried it.
    assert chat.input == [{"role": "user", "content": "Weather in Paris?"}]
    assert chat.output == [{"role": "assistant", "content": "Call get_weather"}]
    assert chat.parent_id is None  # under the root, which is the execution itself

    tool = steps["get_weather"]
    assert tool.kind == StepKind.TOOL_CALL
    assert tool.input == {"city": "Paris"}
    assert tool.output == {"temperature": 21}

    fetch = steps["http GET forecast"]
    # Exported before its parent, in an earlier request, and linked when the parent came.
    assert fetch.parent_id == tool.pk
    assert fetch.status == StepStatus.FAILED
    # The exception's type and message, once; the status message is not repeated.
    assert fetch.error == "TimeoutError: forecast service did not answer"
    assert "exception.stacktrace" in fetch.attributes
    # The agent went on after the failed fetch (the answer came later): recovered, so
    # the run completed and has no failure reason.
    assert (execution.status, execution.failure_reason) == (RunStatus.COMPLETED, "")

    answer = steps["ChatCompletion"]
    assert answer.kind == StepKind.MODEL_CALL
    assert answer.cost_usd == Decimal("0.012300")
    assert answer.input == [{"role": "user", "content": "Weather in Paris?"}]
    assert answer.output == [{"role": "assistant", "content": "21 °C and sunny."}]

    assert (execution.prompt_tokens, execution.completion_tokens) == (1300, 240)
    assert execution.total_tokens == 1540
    assert execution.cost_usd == Decimal("0.012570")
    # Spans arrived as they ended (the fetch first, the chat last but one); the
    # timeline numbers them in the order they started.
    ordered = Step.objects.filter(execution=execution).order_by("sequence")
    assert [(s.sequence, s.name) for s in ordered] == [
        (0, "chat gpt-4o-mini"),
        (1, "get_weather"),
        (2, "http GET forecast"),
        (3, "ChatCompletion"),
    ]


def test_batched_gzip_export_of_two_traces(live_server, key, workspace):
    provider = _provider(live_server, key, batch=True, compression=Compression.Gzip)
    tracer = provider.get_tracer("test")
    first = _run_agent(tracer)
    with tracer.start_as_current_span("chat gpt-4o") as lone:
        lone.set_attribute("gen_ai.operation.name", "chat")
        lone.set_attribute("gen_ai.request.model", "gpt-4o")
        lone.set_attribute("gen_ai.usage.input_tokens", 5)
        lone.set_attribute("gen_ai.usage.output_tokens", 7)
        lone.set_status(Status(StatusCode.ERROR, "rate limited"))
        second = format(lone.get_span_context().trace_id, "032x")
    provider.shutdown()

    assert Execution.objects.filter(workspace=workspace).count() == 2
    assert Execution.objects.get(trace_id=first).step_count == 4
    lone_run = Execution.objects.get(trace_id=second)
    # A trace of a single model call: the call is the execution and also its one step.
    assert lone_run.status == RunStatus.FAILED
    assert lone_run.error == "rate limited"
    assert lone_run.agent_name == "weather-service"
    assert lone_run.step_count == 1
    assert lone_run.total_tokens == 12
    assert Step.objects.get(execution=lone_run).kind == StepKind.MODEL_CALL


def test_exporter_with_revoked_key_stores_nothing(live_server, workspace):
    api_key, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    api_key.revoked_at = api_key.created_at
    api_key.save()
    answers = []
    provider = _provider(live_server, raw, answers=answers)
    _run_agent(provider.get_tracer("test"))
    provider.shutdown()
    # Each of the run's 5 spans reached the server, one request each, and was refused.
    assert answers == [401] * 5
    assert not Execution.objects.exists()
