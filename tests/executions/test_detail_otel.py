"""What the detail page shows of an OTLP run beyond its conversations: embedding and
reranker steps as their own kinds, the error once with its traceback behind a toggle
(in the card, on the step page and in the inspector), the failing step marked, and
the root span's own name beside the agent's."""

import json
import secrets

import pytest
from django.test import Client
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from executions.models import Execution, Step, StepKind
from executions.models import Status as RunStatus
from tests.factories import ApiKeyFactory

from .detail_html import parse
from .test_otlp import T0, ids, request, send, span, value

pytestmark = pytest.mark.django_db

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "agent.py", line 12, in weather\n'
    "    raise RuntimeError(f'no weather station in {city}')\n"
    "RuntimeError: no weather station in Atlantis"
)
ERROR = "RuntimeError: no weather station in Atlantis"


@pytest.fixture
def otlp(workspace):
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def sid():
    return secrets.token_bytes(8)


def failing_run(otlp):
    """A RAG agent: embed the question, rerank, then a tool that raises. The root
    span ends OK, as some instrumentations leave it."""
    trace, root = ids()
    tool = sid()
    failing = span(
        trace, tool, root, name="weather", start=40, end=50,
        status=Status(code=Status.STATUS_CODE_ERROR, message=ERROR),
        attrs={"openinference.span.kind": "TOOL", "tool.name": "weather",
               "input.value": json.dumps({"city": "Atlantis"}),
               "input.mime_type": "application/json"},
    )  # fmt: skip
    failing.events.add(
        name="exception",
        time_unix_nano=T0,
        attributes=[
            KeyValue(key=k, value=value(v))
            for k, v in {
                "exception.type": "RuntimeError",
                "exception.message": "no weather station in Atlantis",
                "exception.stacktrace": TRACEBACK,
            }.items()
        ],
    )
    body = request(
        span(trace, root, name="rag-agent run", end=100,
             attrs={"openinference.span.kind": "AGENT", "agent.name": "rag"}),
        span(trace, sid(), root, name="embed question", start=1, end=10,
             attrs={"openinference.span.kind": "EMBEDDING",
                    "embedding.model_name": "text-embedding-3-small",
                    "llm.token_count.prompt": "8"}),
        span(trace, sid(), root, name="rerank passages", start=11, end=20,
             attrs={"openinference.span.kind": "RERANKER", "reranker.model_name": "rerank-v3"}),
        failing,
    )  # fmt: skip
    assert send(otlp, body).status_code == 200
    return Execution.objects.get(trace_id=trace.hex()), tool


def test_embeddings_and_rerankers_are_their_own_kinds(otlp, alice_client):
    execution, _tool = failing_run(otlp)
    kinds = dict(Step.objects.filter(execution=execution).values_list("name", "kind"))
    assert kinds == {
        "embed question": StepKind.EMBEDDING,
        "rerank passages": StepKind.RERANKER,
        "weather": StepKind.TOOL_CALL,
    }
    # Tokens count on a span that names no model; "8" is a number.
    assert Step.objects.get(execution=execution, name="embed question").prompt_tokens == 8
    page = parse(alice_client.get(execution.get_absolute_url()).content)
    counters = {c.text.strip() for c in page.one(id="step-counters").select(cls="counter")}
    assert {"1 embedding", "1 rerank", "1 tool call", "1 failed"} <= counters
    (embed,) = page.select("li", cls="kind-embedding")
    assert embed.one(cls="step-kind").text == "Embedding"
    assert embed.one(cls="step-glyph").text == "E"
    (rerank,) = page.select("li", cls="kind-reranker")
    assert rerank.one(cls="step-kind").text == "Reranker"


def test_the_error_once_and_its_traceback_behind_a_toggle(otlp, alice_client):
    execution, tool = failing_run(otlp)
    # The root ended OK but nothing recovered from the tool's failure.
    assert execution.status == RunStatus.FAILED
    assert execution.failure_reason == f"Step “weather” failed: {ERROR}"
    step = Step.objects.get(execution=execution, span_id=tool.hex())
    assert step.error == ERROR

    url = execution.get_absolute_url()
    page = parse(alice_client.get(url).content)
    # The root span's own name beside the agent's.
    assert page.one(cls="root-span").text == "rag-agent run"
    box = page.one(cls="failure-box")
    assert box.text.count(ERROR) == 1 and "Traceback" not in box.text
    failing_card = page.one("li", cls="is-failing")
    assert failing_card.attrs["id"] == f"step-{step.sequence}"
    assert failing_card.one(cls="step-error").text == ERROR

    for html in (
        alice_client.get(
            f"{url}steps/{step.sequence}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="step-body"
        ).content,
        alice_client.get(f"{url}steps/{step.sequence}/").content,  # the page, JavaScript off
        alice_client.get(f"{url}?step={step.sequence}").content,  # the inspector
    ):
        tree = parse(html)
        region = tree.select("aside", id="inspector") or tree.select(cls="step-full")
        errors = region[0].select(cls="step-error-full")
        assert [e.text for e in errors] == [ERROR]  # once, without the traceback
        toggle = region[0].one("details", cls="step-traceback")
        assert "open" not in toggle.attrs
        assert toggle.one("pre").text == TRACEBACK
