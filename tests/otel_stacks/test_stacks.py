"""Real instrumentation libraries, offline, through the OpenTelemetry SDK's own OTLP
exporter to a live test server: what the API and the detail page show for a
successful tool-using run, a model error and a tool exception.

Each scenario (scenarios/*.py) runs in its stack's venv against a local
OpenAI-compatible stub whose two calls cost exactly $0.00004095 at gpt-4o-mini's
price. The stacks are built by tests/otel_stacks/build.py (cached); a missing one
is skipped here and an error in CI.
"""

import html
from dataclasses import dataclass
from decimal import Decimal

import pytest

from agents.model_prices import prices_apply_defaults
from agents.models import ModelPrice
from executions.models import StepKind, StepStatus

from .helpers import stored

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "gpt-4o-mini-2024-07-18"
QUESTION = "What is the weather in Paris?"
ANSWER = "It is 18 °C in Paris."
TOOL_ERROR = "RuntimeError: no weather station in Atlantis"
SORRY = "Sorry, I could not get the weather in Atlantis."  # the stub, told of the error


@dataclass
class Stack:
    name: str
    script: str
    tool: str  # the tool step's name, as the library names the tool
    tool_input: object = None  # as the library records the arguments
    # The tool's error as the library reports it (the OpenAI Agents SDK sends no type).
    tool_error: str = TOOL_ERROR
    model: str = MODEL
    cost: Decimal = Decimal("0.00004095")  # gpt-4o-mini: 153 x $0.15 + 30 x $0.60 per million
    # The library gives a tool's exception back to the model, which answers: the run
    # completes, and its tool step shows the error all the same.
    recovers: bool = False
    # The tool the agent ends with (smolagents' final_answer): the last call's reply is
    # that tool's call with the answer, and it is a tool step of its own.
    final_tool: str = ""
    run_input: object = None  # the run's input as the root span records it
    asked: str = QUESTION  # the user message as the library words it to the model
    # OpenInference's smolagents instrumentation does not end the agent's span when
    # run() raises, so that trace's root never arrives: the run stays running.
    root_on_error: bool = True

    def __str__(self) -> str:
        return self.name


STACKS = [
    Stack("openinference-openai", "openinference_openai.py", "weather", {"city": "Paris"}),
    Stack("openai-v2", "openai_v2.py", "get_weather", {"city": "Paris"}),
    Stack("openllmetry", "openllmetry_openai.py", "get_weather", {"city": "Paris"}),
    Stack("pydantic-ai", "pydantic_ai_agent.py", "weather", {"city": "Paris"}),
    # OpenInference's LangChain tracer records a tool's input as LangChain gave it.
    Stack("langchain-openinference", "langchain_openinference.py", "weather", "Paris"),
    # The Anthropic SDK traces itself too: its own span inside OpenInference's is counted once.
    Stack(
        "anthropic-openinference",
        "anthropic_openinference.py",
        "get_weather",
        {"city": "Paris"},
        model="claude-3-5-haiku-20241022",
        cost=Decimal("0.0002424"),
    ),  # 153 x $0.80 + 30 x $4 per million
    Stack(
        "openai-agents",
        "openai_agents_sdk.py",
        "get_weather",
        {"city": "Paris"},
        tool_error="Error running tool: {'tool_name': 'get_weather', "
        "'error': 'no weather station in Atlantis'}",
    ),
    # LlamaIndex's FunctionAgent reports the tool's error to the model.
    Stack("llama-index", "llama_index_agent.py", "get_weather", {"city": "Paris"}, recovers=True),
    # smolagents' ToolCallingAgent records run()'s arguments as the input, hands a tool's
    # error back to the model and answers through its final_answer tool.
    Stack(
        "smolagents",
        "smolagents_agent.py",
        "weather",
        {"city": "Paris"},
        recovers=True,
        final_tool="final_answer",
        asked=f"New task:\n{QUESTION}",
        run_input={
            "task": QUESTION,
            "stream": False,
            "reset": True,
            "images": None,
            "additional_args": None,
            "max_steps": None,
            "return_full_result": None,
        },
        root_on_error=False,
    ),
    # Strands' native tracing (GenAI events, Bedrock-style content parts): a tool's
    # exception goes back to the model as an error result.
    Stack("strands", "strands_agent.py", "weather", {"city": "Paris"}, recovers=True),
    # The Vercel AI SDK through node: a JavaScript Error, handed to the model too.
    Stack(
        "vercel-ai",
        "vercel_ai.cjs",
        "get_weather",
        {"city": "Paris"},
        tool_error="Error: no weather station in Atlantis",
        recovers=True,
    ),
]


@pytest.fixture(autouse=True)
def prices(db):
    # Live-server tests flush every table, the migration's default prices too.
    prices_apply_defaults(ModelPrice)


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_a_tool_using_run(stack, run_stack, workspace, key, alice_client):
    assert ANSWER in run_stack(stack.name, stack.script, "ok")
    run, steps, execution = stored(workspace, key)

    assert run["status"] == "completed"
    assert run["input"] == (stack.run_input or {"input": QUESTION})
    assert run["output"] == ANSWER
    assert run["token_usage"]["prompt_tokens"] == 153
    assert run["token_usage"]["completion_tokens"] == 30
    assert execution.cost_usd == stack.cost  # to the last digit

    calls = [s for s in steps if s["kind"] == StepKind.MODEL_CALL and s["prompt_tokens"]]
    assert [c["model"] for c in calls] == [stack.model, stack.model]
    assert [(c["prompt_tokens"], c["completion_tokens"]) for c in calls] == [(70, 12), (83, 18)]
    # The conversation, readable: the question, the tool call with its arguments, the reply.
    assert {"role": "user", "content": stack.asked} in calls[0]["input"]
    (asked,) = calls[0]["output"][0]["tool_calls"]
    assert asked["arguments"] == {"city": "Paris"}
    if stack.final_tool:
        (answered,) = calls[1]["output"][0]["tool_calls"]
        assert (answered["name"], answered["arguments"]) == (stack.final_tool, {"answer": ANSWER})
    else:
        assert calls[1]["output"] == [{"role": "assistant", "content": ANSWER}]

    tools = [s for s in steps if s["kind"] == StepKind.TOOL_CALL]
    assert sorted(t["name"] for t in tools) == sorted(filter(None, [stack.tool, stack.final_tool]))
    (tool,) = [t for t in tools if t["name"] == stack.tool]
    assert tool["name"] == stack.tool
    assert tool["input"] == stack.tool_input
    assert tool["output"] == "18 °C and sunny in Paris"

    page = html.unescape(alice_client.get(execution.get_absolute_url()).content.decode())
    assert ANSWER in page and stack.tool in page


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_a_model_error(stack, run_stack, workspace, key):
    run_stack(stack.name, stack.script, "model_error")
    run, steps, _execution = stored(workspace, key)

    if stack.root_on_error:
        assert run["status"] == "failed"
        failing = _failing(run, steps)
    else:
        assert run["status"] == "running"  # what was sent: no root span
        (failing,) = [
            s
            for s in steps
            if s["status"] == StepStatus.FAILED and s["kind"] == StepKind.MODEL_CALL
        ]
    assert failing["kind"] == StepKind.MODEL_CALL
    # Once, as the exception's type and message, with no traceback in the way.
    error = failing["error"]
    assert error.count("The model refused") == 1 and "Traceback" not in error


@pytest.mark.parametrize("stack", STACKS, ids=str)
def test_a_tool_exception(stack, run_stack, workspace, key, alice_client):
    run_stack(stack.name, stack.script, "tool_error")
    run, steps, execution = stored(workspace, key)

    if stack.recovers:
        assert (run["status"], run["failure_reason"], run["output"]) == ("completed", "", SORRY)
        (failing,) = [
            s for s in steps if s["status"] == StepStatus.FAILED and s["kind"] == StepKind.TOOL_CALL
        ]
    else:
        # Some libraries end the root span OK after a tool raised: the run failed all the same.
        assert run["status"] == "failed"
        failing = _failing(run, steps)
    assert (failing["kind"], failing["name"]) == (StepKind.TOOL_CALL, stack.tool)
    assert failing["error"] == stack.tool_error
    # The stack trace is kept (behind a toggle), apart from the error: Python's or node's.
    trace = failing["attributes"].get("exception.stacktrace", "Traceback")
    assert "Traceback" in trace or "\n    at " in trace

    page = html.unescape(alice_client.get(execution.get_absolute_url()).content.decode())
    assert stack.tool_error in page


def _failing(run: dict, steps: list[dict]) -> dict:
    """The step failure_reason names, which must be a failed step with that error."""
    (failing,) = [
        s
        for s in steps
        if s["status"] == StepStatus.FAILED
        and run["failure_reason"] == f"Step “{s['name']}” failed: {s['error']}"
    ]
    return failing
