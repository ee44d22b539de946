"""What a span's payload says, whichever library wrote it: JSON-in-strings decoded once,
traceloop's {"args", "kwargs"} unwrapped, and model conversations in one shape.

A model call's input and output are stored as a conversation, a list of messages:

    {"role": "user" | "assistant" | "system" | "tool", "content": "text",
     "tool_calls": [{"id": ..., "name": ..., "arguments": {...}}],   (when it calls tools)
     "tool_call_id": ...}                                              (a tool's answer)

read from every form instrumentations send: OpenTelemetry GenAI "parts"
(gen_ai.input.messages), OpenAI chat messages and whole responses, OpenInference's
flattened llm.*_messages, Anthropic content blocks, Strands' toolUse/toolResult parts,
the Vercel AI SDK's ai.prompt and LangChain's serialised messages. The detail page
then shows every model call the same way, whatever sent it. semconv.py decides which
attribute holds what.
"""

import re
from typing import Any

import orjson

# JSON escapes of what PostgreSQL cannot store: NUL, and UTF-16 surrogates (a lone one
# cannot be encoded). Looked for only when a "\u" escape is present at all.
UNSTORABLE_TEXT = re.compile(r"\\u(0000|[dD][89a-fA-F])")

ROLES = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "system": "system",
    "developer": "system",
    "tool": "tool",
    "function": "tool",
    # smolagents' roles for its tool calls and their results (OpenInference sends them as
    # they are; the model was sent them as assistant and user messages).
    "tool-call": "assistant",
    "tool-response": "tool",
}


def scrub(value):
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, tuple):
        return tuple(scrub(v) for v in value)
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value


def decode(value: Any, mime: Any = None) -> Any:
    """A string attribute that holds JSON, parsed once.

    Objects and arrays, and also a JSON-encoded string (traceloop's entity output is
    json.dumps of what the function returned, so a returned text arrives quoted, with
    its non-ASCII escaped). The result is not decoded again: a text that happens to
    look like JSON inside it stays text.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return value
    if mime == "application/json" or text[0] in "{[" or (text[0] == '"' and text[-1] == '"'):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return value
        if "\\u" in text and UNSTORABLE_TEXT.search(text):
            parsed = scrub(parsed)
        return parsed
    return value


def unwrap_tool_result(value: Any) -> Any:
    """A tool's result as the value the tool returned: LangChain's serialised
    ToolMessage, LlamaIndex's ToolOutput ({"blocks", "tool_name", "raw_output"...})."""
    if not isinstance(value, dict):
        return value
    if value.get("type") == "tool" and isinstance(value.get("data"), dict):
        return value["data"].get("content", value)
    if "raw_output" in value and "tool_name" in value:
        return value["raw_output"]
    return value


# A Python object's repr, as OpenInference writes a value it cannot serialise:
# "StopEvent(result=AgentOutput(...", "AgentWorkflowStartEvent()", "<... object at 0x...>".
OBJECT_REPR = re.compile(r"^(?:[A-Z]\w*\((?:\)|\w+=)|<[\w.]+ object at 0x[0-9a-f]+>$)")


def object_repr(value: Any) -> bool:
    return isinstance(value, str) and OBJECT_REPR.match(value) is not None


def workflow_run(value: Any) -> Any:
    """A LlamaIndex workflow's run span records its arguments (the workflow's internal
    state and the start event): the start event is the input, and one whose repr shows
    nothing of it is no input at all (the run's question comes from its model calls)."""
    if isinstance(value, dict) and "init_state" in value and "start_event" in value:
        start = value["start_event"]
        return None if start is None or object_repr(start) else start
    return value


def unwrap_call(value: Any) -> Any:
    """A call recorded as {"args": [...], "kwargs": {...}} (traceloop's decorators,
    OpenInference's smolagents tools) or {"kwargs": {...}} (OpenInference's LlamaIndex
    tools): show the arguments the function was given, as a tool's arguments look."""
    if isinstance(value, dict) and "sanitize_inputs_outputs" in value:
        # smolagents' Tool.__call__ flag, bound with the tool's own arguments.
        value = {k: v for k, v in value.items() if k != "sanitize_inputs_outputs"}
    if not isinstance(value, dict) or not value or not set(value) <= {"args", "kwargs"}:
        return value
    args, kwargs = value.get("args", []), value.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        return value
    if not args:
        return kwargs
    if not kwargs and len(args) == 1:
        return args[0]
    return {"args": args, **kwargs}


def unflatten(attrs: dict, prefix: str) -> list | None:
    """`llm.input_messages.0.message.role` style attributes as a list of nested objects
    (`...0.message.tool_calls.1.tool_call.function.name` too)."""
    items: dict[int, dict] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if not index.isdigit():
            continue
        node = items.setdefault(int(index), {})
        parts = (rest or "value").split(".")
        for i, part in enumerate(parts[:-1]):
            if part.isdigit() and i > 0:
                continue
            following = parts[i + 1]
            if following.isdigit():
                node = node.setdefault(part, {}).setdefault(int(following), {})
            else:
                node = node.setdefault(part, {})
        node[parts[-1]] = value
    if not items:
        return None
    return [_lists(items[i]) for i in sorted(items)]


def _lists(node):
    """Dicts keyed by list positions (from unflatten) as lists."""
    if isinstance(node, dict):
        if node and all(isinstance(k, int) for k in node):
            return [_lists(node[k]) for k in sorted(node)]
        return {k: _lists(v) for k, v in node.items()}
    return node


# --- conversations --------------------------------------------------------------------


def _text_of(content: Any) -> tuple[str, list[dict]]:
    """The text of a message's content and the tool calls among its parts."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return str(content), []
    texts: list[str] = []
    calls: list[dict] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = str(part.get("type") or "")
        if not kind and isinstance(part.get("toolUse"), dict):
            # Strands (Bedrock's Converse shapes): {"toolUse": {"toolUseId", "name", "input"}}.
            calls.append(_tool_call(part["toolUse"]))
        elif not kind and isinstance(part.get("toolResult"), dict):
            texts.append(_text_of(part["toolResult"].get("content"))[0])
        elif kind in ("tool_call", "tool_use", "tool-call", "function_call"):
            calls.append(_tool_call(part))
        elif kind in RESULT_PARTS:
            texts.append(_result_text(part))
        elif kind in ("reasoning", "thinking"):
            continue
        else:
            # GenAI {"type": "text", "content"}, OpenAI/Anthropic {"type": "text", "text"},
            # OpenInference {"message_content": {"type": "text", "text"}}.
            inner = part.get("message_content", part)
            text = inner.get("text", inner.get("content")) if isinstance(inner, dict) else None
            if isinstance(text, str):
                texts.append(text)
    return "\n".join(t for t in texts if t), calls


def _compact(value: Any) -> str:
    return orjson.dumps(value).decode() if value is not None else ""


# Parts that carry a tool's answer: GenAI, Anthropic, the Vercel AI SDK.
RESULT_PARTS = ("tool_call_response", "tool_result", "tool-result")


def _result_text(part: dict) -> str:
    """A tool result part's answer as text: Anthropic's list of text blocks joined, the
    Vercel AI SDK's {"type": "text" | "json", "value"} unwrapped, anything else as JSON."""
    result = next((part[k] for k in ("response", "result", "content", "output") if k in part), None)
    if isinstance(result, dict) and "value" in result and result.get("type") in (
        "text", "json", "error-text", "error-json",
    ):  # fmt: skip
        result = result["value"]
    if (
        isinstance(result, list)
        and result
        and all(isinstance(b, dict) and b.get("type") == "text" for b in result)
    ):
        return "\n".join(str(b.get("text", "")) for b in result)
    return result if isinstance(result, str) else _compact(result)


def _is_result(part: Any) -> bool:
    return isinstance(part, dict) and part.get("type") in RESULT_PARTS


def _result_id(part: dict) -> str | None:
    found = part.get("tool_use_id") or part.get("toolCallId") or part.get("id")
    return str(found) if found else None


def _tool_call(call: dict) -> dict:
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    inner = call.get("tool_call") if isinstance(call.get("tool_call"), dict) else None
    if inner is not None:  # OpenInference: {"tool_call": {"id", "function": {...}}}
        return _tool_call(inner)
    name = call.get("name") or call.get("toolName") or function.get("name") or ""
    arguments = call.get("arguments", call.get("args", call.get("input")))
    if arguments is None:
        arguments = function.get("arguments")
    out = {"name": str(name), "arguments": decode(arguments)}
    call_id = call.get("id") or call.get("toolCallId") or call.get("toolUseId")
    if call_id:
        out = {"id": str(call_id), **out}
    return out


def as_messages(raw: Any) -> list[dict] | None:
    """One message of any known form, in the conversation shape (None: not a message).

    Usually one message; a turn made only of tool results (Anthropic's and
    pydantic-ai's user turn answering tool calls, the Vercel AI SDK's tool message)
    is one "tool" message per result, each with the call it answers.
    """
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    if not isinstance(raw, dict):
        return None
    if "message" in raw and isinstance(raw["message"], dict) and "role" not in raw:
        raw = raw["message"]  # OpenAI choice, OpenInference {"message": {...}}
    if raw.get("lc") == 1 and isinstance(raw.get("kwargs"), dict):
        kind = raw.get("id", [""])[-1] if isinstance(raw.get("id"), list) else ""
        role = {"HumanMessage": "user", "AIMessage": "assistant", "SystemMessage": "system"}
        raw = {"role": role.get(kind, "tool" if kind == "ToolMessage" else "user"),
               **raw["kwargs"]}  # fmt: skip
    elif "data" in raw and isinstance(raw["data"], dict) and "type" in raw:
        raw = {"role": raw["type"], **raw["data"]}  # LangChain's messages_to_dict
    role = raw.get("role") or raw.get("type")
    if not isinstance(role, str) or role.lower() not in ROLES:
        return None
    out: dict[str, Any] = {"role": ROLES[role.lower()]}
    content = raw.get("parts", raw.get("content", raw.get("contents")))
    results = [p for p in content if _is_result(p)] if isinstance(content, list) else []
    if results and len(results) == len(content) and not raw.get("tool_calls"):
        answers = []
        for part in results:
            answer = {"role": "tool", "content": _result_text(part)}
            if call_id := _result_id(part):
                answer["tool_call_id"] = call_id
            if part.get("toolName") or part.get("name"):
                answer["name"] = str(part.get("toolName") or part.get("name"))
            answers.append(answer)
        return answers
    text, calls = _text_of(content)
    for call in raw.get("tool_calls") or []:
        if isinstance(call, dict):
            calls.append(_tool_call(call))
    if text or not calls:
        out["content"] = text
    if calls:
        out["tool_calls"] = calls
    call_id = raw.get("tool_call_id") or raw.get("toolCallId")
    if not call_id and isinstance(content, list):
        call_id = next((_result_id(p) for p in content if _is_result(p)), None)
    if call_id:
        out["tool_call_id"] = str(call_id)
    if raw.get("name") and out["role"] == "tool":
        out["name"] = str(raw["name"])
    return [out]


def conversation(value: Any) -> list[dict] | None:
    """A payload as a list of messages, when it is one (else None: leave it as sent).

    Knows a list of messages, {"messages": [...]} (OpenAI request bodies, LangChain),
    an OpenAI response ({"choices": [...]}), a Vercel ai.prompt ({"system", "prompt",
    "messages"}), LangChain generations ({"generations": [[...]]}) and a bare text.
    """
    value = decode(value)
    if isinstance(value, dict):
        if isinstance(value.get("choices"), list):
            value = value["choices"]
        elif isinstance(value.get("generations"), list):
            value = [g for batch in value["generations"] for g in (batch or [])]
            value = [g.get("message", {"role": "assistant", "content": g.get("text")})
                     for g in value if isinstance(g, dict)]  # fmt: skip
        elif "messages" in value or "prompt" in value or "system" in value:
            items = []
            if isinstance(value.get("system"), str):
                items.append({"role": "system", "content": value["system"]})
            if isinstance(value.get("prompt"), str):
                items.append({"role": "user", "content": value["prompt"]})
            messages = value.get("messages")
            if isinstance(messages, list) and messages and isinstance(messages[0], list):
                messages = messages[0]  # LangChain chat model input: one batch
            items.extend(messages if isinstance(messages, list) else [])
            value = items
        else:
            value = [value]
    elif isinstance(value, str):
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        return None
    found = [as_messages(item) for item in value]
    if any(m is None for m in found):
        return None
    return [m for group in found for m in group]


def reply(value: Any) -> list[dict] | None:
    """A model's output as a conversation: a bare text is the assistant's."""
    decoded = decode(value)
    if isinstance(decoded, str):
        return [{"role": "assistant", "content": decoded}] if decoded else None
    messages = conversation(decoded)
    if messages and not any(m.get("content") or m.get("tool_calls") for m in messages):
        return None  # a failed call's empty placeholder reply
    if messages:
        for m in messages:
            if m["role"] == "user":
                m["role"] = "assistant"  # a bare text in a list is still the model's
    return messages


def first_user_text(messages: Any) -> str | None:
    for item in messages if isinstance(messages, list) else []:
        if isinstance(item, dict) and item.get("role") == "user" and item.get("content"):
            return item["content"]
    return None


def last_reply_text(messages: Any) -> str | None:
    for item in reversed(messages if isinstance(messages, list) else []):
        if isinstance(item, dict) and item.get("role") == "assistant" and item.get("content"):
            return item["content"]
    return None


def _is_conversation(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m for m in value)
    )


def _as_conversation(value: Any) -> Any:
    """{"messages": [...]} (LangChain's agent state) as its conversation."""
    if isinstance(value, dict) and set(value) == {"messages"}:
        return conversation(value) or value
    return value


def run_input(value: Any) -> dict:
    """An execution's input from its root span: a conversation is read as the question
    its first user message asks; a dict stays as sent."""
    value = _as_conversation(value)
    if _is_conversation(value):
        question = first_user_text(value)
        return {"input": question} if len(value) == 1 else {"input": question, "messages": value}
    if isinstance(value, dict):
        return value
    return {} if value is None else {"input": value}


def run_output(value: Any) -> Any:
    """An execution's output from its root span: a conversation's last reply."""
    value = _as_conversation(value)
    if _is_conversation(value):
        return last_reply_text(value) or value
    if isinstance(value, str):
        # Strands' result ends each text block with a newline: layout, not the answer.
        return value.strip()
    return value
