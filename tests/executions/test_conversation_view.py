"""A model call's card reads as a conversation, whatever shape its messages came in:
the reply first, then the prompt, each message with its role, text, the tools called
with their arguments laid out, and the tools' answers; the raw JSON one click away.

OTLP shapes go through ingestion (each convention's attributes as its library sends
them); JSON API shapes (OpenAI and Anthropic bodies) are stored as sent. Assertions
read the parsed HTML."""

import json
import secrets

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from executions.models import Execution, Status, Step, StepKind, StepStatus
from tests.factories import ApiKeyFactory, ExecutionFactory, StepFactory

from .detail_html import parse, unsafe_markup
from .test_otlp import T0, ids, request, send, span, value

pytestmark = pytest.mark.django_db

QUESTION = "What is the weather in Paris?"
ANSWER = "It is 18 °C in Paris."
SYSTEM = "Answer with the weather tool."
RESULT = "18 °C and sunny in Paris"


@pytest.fixture
def otlp(workspace):
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def sid():
    return secrets.token_bytes(8)


def body(client, step, *, full=False):
    """The expanded card (htmx), or the step's own page with ?full=1."""
    path = f"{step.execution.get_absolute_url()}steps/{step.sequence}/"
    if full:
        response = client.get(path + "?full=1")
    else:
        response = client.get(path, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="step-body")
    assert response.status_code == 200
    return response.content.decode()


def read_message(node) -> tuple:
    """(label, parts) of one .msg: text, ("calls", name, arguments), ("from", name, answer)."""
    role = node.select(cls="msg-role")[0].text.strip()
    parts = []
    for part in node.iter():
        if part.classes & {"msg-plain", "msg-md"} and "msg-result" not in part.parent.classes:
            if part.parent.tag == "details":
                parts.append(("reasoning", part.text.strip()))
            else:
                parts.append(part.text.strip())
        elif "msg-call" in part.classes:
            parts.append(("calls", part.one(cls="call-name").text, _value(part)))
        elif "msg-result" in part.classes:
            names = part.select(cls="call-name")
            parts.append(("from", names[0].text if names else "", _value(part)))
        elif "msg-media" in part.classes:
            parts.append(("media", part.text))
    return role, parts


def rows(dl) -> dict:
    return {dt.text: dd.text for dt, dd in zip(dl.select("dt"), dl.select("dd"), strict=True)}


def json_of(view) -> object:
    """The value a .json-view shows (its fold hints, "3 keys", left out)."""

    def text(node) -> str:
        if "jfold" in node.classes:
            return ""
        return "".join(c if isinstance(c, str) else text(c) for c in node.children)

    return json.loads(text(view))


def summary(details) -> str:
    """The text of a <details>' own summary (not of one nested in it)."""
    return next(c for c in details.children if getattr(c, "tag", "") == "summary").text


def _value(node):
    rows = node.select("dl", cls="call-args")
    if rows:
        return {
            dt.text: dd.text
            for dt, dd in zip(rows[0].select("dt"), rows[0].select("dd"), strict=True)
        }
    views = node.select(cls="json-view")
    if views:
        return json_of(views[0])
    return node.select(cls="msg-plain")[0].text if node.select(cls="msg-plain") else None


def conversation(html: str) -> dict:
    tree = parse(html)
    convo = tree.one("div", cls="convo")
    reply = convo.one("section", cls="convo-reply")
    prompt = convo.one("section", cls="convo-prompt")
    return {
        # The reply comes before the prompt in the page.
        "order": [s.attrs["aria-label"] for s in convo.select("section")],
        "reply": [read_message(m) for m in reply.select(cls="msg") if m.select(cls="msg-role")],
        "prompt": [read_message(m) for m in prompt.select(cls="msg") if m.select(cls="msg-role")],
        "prompt_label": prompt.one("h4").text,
        "raw": tree.select("details", cls="raw-json"),
    }


def model_step(workspace, span_id: bytes) -> Step:
    return Step.objects.get(execution__workspace=workspace, span_id=span_id.hex())


def send_call(otlp, attrs, events=()):
    """One model call under an agent span; returns the call's span id."""
    trace, root = ids()
    call = sid()
    chat = span(trace, call, root, name="chat", start=1, end=20, attrs=attrs)
    for name, event_attrs in events:
        chat.events.add(
            name=name,
            time_unix_nano=chat.start_time_unix_nano,
            attributes=[KeyValue(key=k, value=value(v)) for k, v in event_attrs.items()],
        )
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather"}
    root_span = span(trace, root, name="agent", end=100, attrs=agent)
    assert send(otlp, request(root_span, chat)).status_code == 200
    return call


TOOL_TURN = [
    ("Model", [("calls", "get_weather", {"city": "Paris"})]),
    ("Tool result", [("from", "get_weather", RESULT)]),
]


# ---------------------------------------------------------------------------
# OTLP conventions, through ingestion


def test_genai_parts_with_a_tool_answer_in_a_user_turn(otlp, workspace, alice_client):
    """gen_ai.input.messages as pydantic-ai sends them: the tool's answer is a
    tool_call_response part in a user turn; system instructions apart."""
    messages = [
        {"role": "user", "parts": [{"type": "text", "content": QUESTION}]},
        {
            "role": "assistant",
            "parts": [
                {
                    "type": "tool_call",
                    "id": "c1",
                    "name": "get_weather",
                    "arguments": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "parts": [
                {"type": "tool_call_response", "id": "c1", "name": "get_weather", "result": RESULT}
            ],
        },
    ]
    call = send_call(
        otlp,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": SYSTEM}]),
            "gen_ai.input.messages": json.dumps(messages),
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": ANSWER}]}]
            ),
        },
    )
    step = model_step(workspace, call)
    # Stored in the one conversation shape: the answer is the tool's, not the user's.
    assert step.input[-1] == {"role": "tool", "content": RESULT, "tool_call_id": "c1",
                              "name": "get_weather"}  # fmt: skip
    seen = conversation(body(alice_client, step))
    assert seen["order"] == ["Reply", "Prompt"]
    assert seen["reply"] == [("Model", [ANSWER])]
    assert seen["prompt"] == [("System", [SYSTEM]), ("User", [QUESTION]), *TOOL_TURN]
    assert seen["prompt_label"] == "Prompt · 4 messages"
    assert len(seen["raw"]) == 1


def test_openinference_flattened_messages(otlp, workspace, alice_client):
    """llm.input_messages.N.message.* with tool calls whose arguments are a JSON string."""
    prefix = "llm.input_messages"
    call = send_call(
        otlp,
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            f"{prefix}.0.message.role": "system",
            f"{prefix}.0.message.content": SYSTEM,
            f"{prefix}.1.message.role": "user",
            f"{prefix}.1.message.content": QUESTION,
            f"{prefix}.2.message.role": "assistant",
            f"{prefix}.2.message.tool_calls.0.tool_call.id": "c1",
            f"{prefix}.2.message.tool_calls.0.tool_call.function.name": "get_weather",
            f"{prefix}.2.message.tool_calls.0.tool_call.function.arguments": '{"city": "Paris"}',
            f"{prefix}.3.message.role": "tool",
            f"{prefix}.3.message.tool_call_id": "c1",
            f"{prefix}.3.message.content": RESULT,
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": ANSWER,
        },
    )
    seen = conversation(body(alice_client, model_step(workspace, call)))
    assert seen["reply"] == [("Model", [ANSWER])]
    assert seen["prompt"] == [("System", [SYSTEM]), ("User", [QUESTION]), *TOOL_TURN]


def test_openllmetry_indexed_prompt_and_completion(otlp, workspace, alice_client):
    call = send_call(
        otlp,
        {
            "llm.request.type": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": QUESTION,
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.id": "c1",
            "gen_ai.completion.0.tool_calls.0.name": "get_weather",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Paris", "days": 2}',
        },
    )
    seen = conversation(body(alice_client, model_step(workspace, call)))
    # The reply is a tool call, its arguments decoded and laid out one per row.
    assert seen["reply"] == [("Model", [("calls", "get_weather", {"city": "Paris", "days": "2"})])]
    assert seen["prompt"] == [("User", [QUESTION])]


def test_older_genai_events_on_the_span(otlp, workspace, alice_client):
    """gen_ai.system.message / gen_ai.user.message / gen_ai.choice events, the choice's
    tool call in OpenAI's form (function.arguments as a JSON string)."""
    choice = {
        "index": 0,
        "finish_reason": "tool_calls",
        "message": json.dumps(
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            }
        ),
    }
    call = send_call(
        otlp,
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"},
        events=[
            ("gen_ai.system.message", {"content": SYSTEM}),
            ("gen_ai.user.message", {"content": QUESTION}),
            ("gen_ai.choice", choice),
        ],
    )
    seen = conversation(body(alice_client, model_step(workspace, call)))
    assert seen["reply"] == [("Model", [("calls", "get_weather", {"city": "Paris"})])]
    assert seen["prompt"] == [("System", [SYSTEM]), ("User", [QUESTION])]


def test_vercel_ai_sdk_prompt_messages(otlp, workspace, alice_client):
    """ai.prompt.messages with tool-call and tool-result parts (ai SDK v5: the result's
    output is {"type": "json", "value": ...})."""
    messages = [
        {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool-call",
                    "toolCallId": "c1",
                    "toolName": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "tool",
            "content": [
                {
                    "type": "tool-result",
                    "toolCallId": "c1",
                    "toolName": "get_weather",
                    "output": {"type": "json", "value": {"celsius": 18, "sky": "sunny"}},
                }
            ],
        },
    ]
    call = send_call(
        otlp,
        {
            "ai.operationId": "ai.generateText.doGenerate",
            "ai.model.id": "gpt-4o-mini",
            "ai.prompt.messages": json.dumps(messages),
            "ai.response.text": ANSWER,
        },
    )
    step = model_step(workspace, call)
    assert step.input[-1]["tool_call_id"] == "c1"
    seen = conversation(body(alice_client, step))
    assert seen["reply"] == [("Model", [ANSWER])]
    assert seen["prompt"] == [
        ("User", [QUESTION]),
        ("Model", [("calls", "get_weather", {"city": "Paris"})]),
        ("Tool result", [("from", "get_weather", {"celsius": "18", "sky": "sunny"})]),
    ]


# ---------------------------------------------------------------------------
# Bodies sent as they are through the JSON API


def api_call(agent_version, input, output, **fields):
    execution = ExecutionFactory(agent_version=agent_version, status=Status.COMPLETED)
    step = StepFactory(
        execution=execution,
        sequence=1,
        kind=StepKind.MODEL_CALL,
        name="chat",
        model="gpt-4o-mini",
        input=input,
        output=output,
        **fields,
    )
    return execution, step


def card_lines(client, execution) -> list[str]:
    page = parse(client.get(execution.get_absolute_url()).content)
    (card,) = page.select("li", cls="kind-model_call")
    return [p.text for p in card.select(cls="step-io")]


def test_openai_chat_request_and_response(alice_client, agent_version):
    request_body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "developer", "content": SYSTEM},
            {"role": "user", "content": [{"type": "text", "text": QUESTION}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": RESULT},
        ],
    }
    response = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER}}],
    }
    execution, step = api_call(agent_version, request_body, response)
    # The card previews what the model wrote, not the response's JSON.
    assert card_lines(alice_client, execution) == [f"reply{ANSWER}", f"prompttool: {RESULT}"]
    seen = conversation(body(alice_client, step))
    assert seen["reply"] == [("Model", [ANSWER])]
    assert seen["prompt"] == [("System", [SYSTEM]), ("User", [QUESTION]), *TOOL_TURN]


def test_anthropic_content_blocks(alice_client, agent_version):
    request_body = {
        "model": "claude-3-5-haiku-20241022",
        "system": [{"type": "text", "text": SYSTEM}],
        "messages": [
            {"role": "user", "content": QUESTION},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_2",
                        "name": "get_weather",
                        "input": {"city": "Lyon"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": RESULT}],
                    },
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "rain in Lyon"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                    },
                ],
            },
        ],
    }
    response = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Paris is sunny."},
            {"type": "text", "text": "It is **18 °C** in Paris."},
        ],
    }
    execution, step = api_call(agent_version, request_body, response)
    # A card's line is plain text: the reply's Markdown as written.
    assert card_lines(alice_client, execution)[0] == "replyIt is **18 °C** in Paris."
    html = body(alice_client, step)
    seen = conversation(html)
    assert seen["reply"] == [("Model", [("reasoning", "Paris is sunny."), ANSWER])]
    # The reply's Markdown is rendered (through the sanitiser), not shown as asterisks.
    assert parse(html).one("section", cls="convo-reply").select("strong")[0].text == "18 °C"
    assert seen["prompt"] == [
        ("System", [SYSTEM]),
        ("User", [QUESTION]),
        (
            "Model",
            [
                "Let me look.",
                ("calls", "get_weather", {"city": "Paris"}),
                ("calls", "get_weather", {"city": "Lyon"}),
            ],
        ),
        # The answers, each labelled with the call it answers; the image is named, not shown.
        (
            "Tool result",
            [
                ("from", "get_weather", RESULT),
                ("from", "get_weather", "rain in Lyon"),
                ("media", "[image (image/png)]"),
            ],
        ),
    ]


def test_a_reply_that_is_no_message_is_shown_as_it_is(alice_client, agent_version):
    """The demo's and many callers' model calls: messages in, a labelled object out."""
    _execution, step = api_call(
        agent_version,
        {"messages": [{"role": "user", "content": QUESTION}]},
        {"label": "weather", "confidence": 0.93},
    )
    seen = conversation(body(alice_client, step))
    assert seen["reply"] == [] and seen["prompt"] == [("User", [QUESTION])]
    other = parse(body(alice_client, step)).one(cls="msg-other")
    assert {
        dt.text: dd.text for dt, dd in zip(other.select("dt"), other.select("dd"), strict=True)
    } == {
        "label": "weather",
        "confidence": "0.93",
    }


def test_a_model_call_without_messages_keeps_its_json(alice_client, agent_version):
    _execution, step = api_call(agent_version, {"features": [1, 2]}, {"score": 0.5})
    tree = parse(body(alice_client, step))
    assert not tree.select(cls="convo") and not tree.select(cls="raw-json")
    assert len(tree.select("div", cls="json-view")) == 2


def test_a_failed_call_says_it_has_no_reply(alice_client, agent_version):
    _execution, step = api_call(
        agent_version,
        [{"role": "user", "content": QUESTION}],
        None,
        status=StepStatus.FAILED,
        error="BadRequestError: The model refused",
    )
    tree = parse(body(alice_client, step))
    assert tree.one(cls="step-error-full").text == "BadRequestError: The model refused"
    assert tree.one("section", cls="convo-reply").one("p").text == "No reply: the call failed."


def test_a_long_history_shows_its_newest_messages_and_folds_the_rest(alice_client, agent_version):
    system = "You are a weather assistant. " * 20
    history = [{"role": "system", "content": system}]
    for n in range(5):
        history += [
            {"role": "user", "content": f"question {n}"},
            {"role": "assistant", "content": f"answer {n}"},
        ]
    _execution, step = api_call(agent_version, history, {"role": "assistant", "content": "bye"})
    tree = parse(body(alice_client, step))
    prompt = tree.one("section", cls="convo-prompt")
    assert prompt.one("h4").text == "Prompt · 11 messages"
    earlier = prompt.one("details", cls="convo-earlier")
    assert summary(earlier) == "5 earlier messages"
    assert "open" not in earlier.attrs
    newest = [m for m in prompt.select(cls="msg") if m.parent is prompt]
    assert [m.one(cls="msg-plain").text for m in newest] == [
        "question 2", "answer 2", "question 3", "answer 3", "question 4", "answer 4",
    ]  # fmt: skip
    folded = [m for m in earlier.select(cls="msg")]
    assert [m.classes & {"msg-system", "msg-user", "msg-assistant"} for m in folded] == [
        {"msg-system"}, {"msg-user"}, {"msg-assistant"}, {"msg-user"}, {"msg-assistant"},
    ]  # fmt: skip
    # The long system prompt folds behind its first words.
    fold = folded[0].one("details", cls="msg-fold")
    assert fold.one(cls="msg-gist").text.startswith("You are a weather assistant.")
    assert fold.one(cls="msg-plain").text == system


def test_a_prompt_too_long_for_the_card_links_to_the_whole_step(alice_client, agent_version):
    long_question = "Is it sunny? " * 6000  # 78,000 characters: past the card's head
    _execution, step = api_call(
        agent_version,
        [{"role": "user", "content": long_question}],
        [{"role": "assistant", "content": ANSWER}],
    )
    tree = parse(body(alice_client, step))
    assert conversation(body(alice_client, step))["reply"] == [("Model", [ANSWER])]
    note = tree.one("section", cls="convo-prompt").one("p")
    assert note.text.startswith("The prompt is too long to read here")
    assert note.one("a").attrs["href"].endswith(f"/steps/{step.sequence}/?full=1")

    whole = conversation(body(alice_client, step, full=True))
    assert whole["prompt"] == [("User", [long_question.strip()])]


# ---------------------------------------------------------------------------
# Safety, and pages that work without JavaScript


XSS = [
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    "[click me](javascript:alert(1))",
    '<a href="javascript:alert(1)">link</a>',
    '"><svg onload=alert(1)>',
    "**bold** <iframe src=//evil.example></iframe>",
]


def test_hostile_message_text_is_escaped_or_sanitised(alice_client, agent_version):
    hostile = "\n\n".join(XSS)  # Markdown (it has **bold**): rendered, then sanitised
    plain = " ".join(XSS[:5])  # no Markdown in it: escaped as text
    execution, step = api_call(
        agent_version,
        [
            {"role": "system", "content": hostile},
            {"role": "user", "content": [{"type": "text", "text": plain}]},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": XSS[4],
                        "name": XSS[1],
                        "arguments": {XSS[0]: hostile, "nested": {XSS[1]: [XSS[3]]}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": XSS[4], "name": XSS[0], "content": plain},
        ],
        [{"role": "assistant", "content": hostile}],
    )
    url = execution.get_absolute_url()
    for html in (
        body(alice_client, step),
        body(alice_client, step, full=True),
        alice_client.get(f"{url}?step={step.sequence}").content.decode(),  # the inspector
    ):
        assert unsafe_markup(html) == []
        tree = parse(html)
        convo = tree.select(cls="convo")[0]
        # Shown as text, not run: the reply's Markdown is rendered, its HTML is not.
        reply = convo.one("section", cls="convo-reply")
        assert "<script>alert('x')</script>" in reply.text
        assert reply.select("strong")[0].text == "bold"
        assert not [a for a in convo.select("a") if "javascript" in a.attrs.get("href", "")]
        assert not convo.select("img") and not convo.select("svg")
        (call,) = convo.select(cls="msg-call")
        assert call.one(cls="call-name").text == XSS[1]
        (user,) = convo.select(cls="msg-user")
        assert user.one(cls="msg-plain").text == plain
        (result,) = convo.select(cls="msg-result")
        assert result.one(cls="msg-plain").text == plain


def test_the_step_page_reads_without_javascript(client, alice, agent_version):
    """What a browser with JavaScript off gets: the step's own page (the card's link)
    with the conversation drawn by the server and the raw JSON in a <details>."""
    execution, step = api_call(
        agent_version,
        [{"role": "user", "content": QUESTION}],
        [{"role": "assistant", "content": ANSWER}],
    )
    client.force_login(alice)
    page = parse(client.get(execution.get_absolute_url()).content)
    (card,) = page.select("li", cls="kind-model_call")
    link = card.one("div", cls="step-body").one("a").attrs["href"]
    html = client.get(link).content.decode()
    tree = parse(html)
    assert tree.select("main")
    seen = conversation(html)
    assert seen["reply"] == [("Model", [ANSWER])]
    (raw,) = seen["raw"]
    assert "open" not in raw.attrs and summary(raw) == "Raw JSON"
    inside = raw.select("div", cls="json-view")
    assert [json_of(v) for v in inside] == [step.input, step.output]


def test_the_inspector_shows_the_conversation(alice_client, agent_version):
    execution, step = api_call(
        agent_version,
        [{"role": "user", "content": QUESTION}],
        [{"role": "assistant", "content": ANSWER}],
    )
    page = parse(alice_client.get(f"{execution.get_absolute_url()}?step={step.sequence}").content)
    inspector = page.one("aside", id="inspector")
    assert [read_message(m) for m in inspector.select(cls="msg")] == [
        ("Model", [ANSWER]),
        ("User", [QUESTION]),
    ]
    assert inspector.one("details", cls="raw-json").select("div", cls="json-view")


def test_the_step_body_costs_the_same_queries_with_a_conversation(
    alice_client, agent_version, django_assert_num_queries
):
    _plain, plain_step = api_call(agent_version, {"features": [1]}, {"score": 1})
    _chat, chat_step = api_call(
        agent_version,
        [{"role": "user", "content": QUESTION}] * 40,
        [{"role": "assistant", "content": ANSWER}],
    )
    body(alice_client, plain_step)  # warm the session and the workspace
    with CaptureQueriesContext(connection) as baseline:
        body(alice_client, plain_step)
    with django_assert_num_queries(len(baseline)):
        body(alice_client, chat_step)
    assert Execution.objects.count() == 2


def test_semantic_kernel_messages_as_log_records(otlp, workspace, alice_client):
    """Semantic Kernel logs each message through Python logging: the event's name in an
    `event.name` attribute, the body json.dumps(message.to_dict()) (a string)."""
    trace, root = ids()
    call, tool = sid(), sid()
    records = [
        ("gen_ai.system.message", {"role": "system", "content": SYSTEM}),
        ("gen_ai.user.message", {"role": "user", "content": QUESTION}),
        (
            "gen_ai.choice",
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {
                                "name": "Weather-get_weather",
                                "arguments": '{"city": "Paris"}',
                            },
                        }
                    ],
                },
            },
        ),
    ]
    logs = ExportLogsServiceRequest()
    scope = logs.resource_logs.add().scope_logs.add()
    for name, message in records:
        record = scope.log_records.add(trace_id=trace, span_id=call, time_unix_nano=T0)
        record.attributes.add(key="event.name", value=value(name))
        record.attributes.add(key="gen_ai.system", value=value("openai"))
        record.body.CopyFrom(value(json.dumps(message)))
    response = otlp.post(
        "/v1/logs", logs.SerializeToString(), content_type="application/x-protobuf"
    )
    assert response.status_code == 200
    chat = {
        "gen_ai.operation.name": "chat.completions",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 70,
        "gen_ai.usage.output_tokens": 12,
    }
    function = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "Weather-get_weather",
        "gen_ai.tool.call.id": "c1",
    }
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather"}
    spans = request(
        span(trace, root, name="invoke_agent weather", end=100, attrs=agent),
        span(trace, call, root, name="chat.completions gpt-4o-mini", start=1, end=20, attrs=chat),
        span(trace, tool, root, name="execute_tool Weather-get_weather", start=21, end=30,
             attrs=function),
    )  # fmt: skip
    assert send(otlp, spans).status_code == 200
    step = model_step(workspace, call)
    assert step.kind == StepKind.MODEL_CALL
    assert step.input == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
    ]
    seen = conversation(body_html := body(alice_client, step))
    assert seen["reply"] == [("Model", [("calls", "Weather-get_weather", {"city": "Paris"})])]
    assert seen["prompt"] == [("System", [SYSTEM]), ("User", [QUESTION])]
    assert unsafe_markup(body_html) == []
    function_step = model_step(workspace, tool)
    assert (function_step.kind, function_step.name) == (StepKind.TOOL_CALL, "Weather-get_weather")
