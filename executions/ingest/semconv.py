"""How spans say what they did, read into a step: kind, name, model, tokens, cost, input,
output, tool name and arguments, session, errors.

Conventions read (each from its library's source and from spans it really sends):
OpenTelemetry GenAI, current names and the older ones (gen_ai.usage.prompt_tokens,
gen_ai.prompt.N.*, gen_ai.*.message events; message content may also come as log
records, see logs.py); OpenInference (openinference.span.kind, llm.*, tool.*,
input.value / output.value); OpenLLMetry / traceloop (traceloop.span.kind,
traceloop.entity.*); pydantic-ai / Logfire (operation.cost, pydantic_ai.all_messages,
final_result, tool_arguments); MLflow (mlflow.span*); the Vercel AI SDK (ai.*);
Langfuse's SDK (langfuse.observation.*, langfuse.trace.*); LiveKit (lk.*).
content.py turns their payloads into one shape.

otlp.py decodes request bodies into raw span tuples; map_span() here turns one into
a TraceSpan for traces.traces_ingest.

Over 500 lines on purpose: it is the table of conventions, one reader per library,
and the one place to change when a new attribute is read (docs/architecture.md).
"""

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from executions import timestamps
from executions.models import StepKind, StepStatus

from . import traces
from .content import (
    conversation,
    decode,
    first_user_text,
    last_reply_text,
    object_repr,
    reply,
    scrub,
    unflatten,
    unwrap_call,
    unwrap_tool_result,
    workflow_run,
)
from .steps import UPDATABLE, StepRecord

__all__ = ["SPAN_KINDS", "UNSTORABLE_BYTES", "clean", "map_span", "scrub"]

INT32_MAX = 2_147_483_647
COST_LIMIT = Decimal("99999999")
SPAN_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_ERROR = 2
UNSTORABLE_BYTES = re.compile(rb"\\u(0000|[dD][89a-fA-F])")

STEP_KINDS = frozenset(StepKind.values)
MODEL, TOOL, BLOCK = StepKind.MODEL_CALL, StepKind.TOOL_CALL, StepKind.BLOCK
EMBEDDING, RERANKER = StepKind.EMBEDDING, StepKind.RERANKER
# What each library calls its kinds of span, and the step kind each is.
KIND_NAMES = {
    "openinference.span.kind": {
        "llm": MODEL, "embedding": EMBEDDING, "reranker": RERANKER, "tool": TOOL,
        "retriever": TOOL, "chain": BLOCK, "agent": BLOCK, "guardrail": StepKind.GUARDRAIL,
        "evaluator": StepKind.GUARDRAIL, "prompt": StepKind.OTHER,
    },
    "gen_ai.operation.name": {
        "chat": MODEL, "text_completion": MODEL, "completion": MODEL, "generate": MODEL,
        "generate_content": MODEL, "chat.completions": MODEL, "text.completions": MODEL,
        "embeddings": EMBEDDING, "embedding": EMBEDDING, "rerank": RERANKER,
        "execute_tool": TOOL, "retrieval": TOOL, "invoke_agent": BLOCK, "create_agent": BLOCK,
        "invoke_workflow": BLOCK,
    },
    "traceloop.span.kind": {"workflow": BLOCK, "task": BLOCK, "agent": BLOCK, "tool": TOOL},
    "llm.request.type": {"chat": MODEL, "completion": MODEL, "embedding": EMBEDDING,
                         "rerank": RERANKER},
    "mlflow.spanType": {
        "llm": MODEL, "chat_model": MODEL, "embedding": EMBEDDING, "reranker": RERANKER,
        "tool": TOOL, "retriever": TOOL, "agent": BLOCK, "chain": BLOCK,
        "guardrail": StepKind.GUARDRAIL,
    },
    "langfuse.observation.type": {
        "generation": MODEL, "embedding": EMBEDDING, "tool": TOOL, "retriever": TOOL,
        "agent": BLOCK, "chain": BLOCK, "span": BLOCK, "guardrail": StepKind.GUARDRAIL,
        "evaluator": StepKind.GUARDRAIL,
    },
}  # fmt: skip
# The Vercel AI SDK names its spans by operation: ai.generateText is the whole call
# (tool loop included), its .doGenerate a single model request.
VERCEL_MODEL = re.compile(r"^ai\.\w+\.(doGenerate|doStream)$")
VERCEL_EMBED = re.compile(r"^ai\.embed(Many)?\.doEmbed$")

MODEL_KEYS = (
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.model_name",
    "ai.response.model",
    "ai.model.id",
    "langfuse.observation.model.name",
)
PROMPT_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
    "ai.usage.inputTokens",
    "ai.usage.promptTokens",
)
COMPLETION_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
    "ai.usage.outputTokens",
    "ai.usage.completionTokens",
)
TOTAL_TOKEN_KEYS = ("gen_ai.usage.total_tokens", "llm.token_count.total", "llm.usage.total_tokens")
COST_KEYS = (
    "operation.cost",
    "gen_ai.usage.cost",
    "llm.cost.total",
    "gen_ai.usage.cost_usd",
    "llm.usage.cost",
)
CACHE_READ_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
    "gen_ai.usage.details.cache_read_tokens",
    "llm.usage.cache_read_input_tokens",
    "ai.usage.cachedInputTokens",
)
CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
    "gen_ai.usage.details.cache_write_tokens",
    "llm.usage.cache_creation_input_tokens",
)
SESSION_KEYS = (
    "session.id",
    "gen_ai.conversation.id",
    "langfuse.session.id",
    "ai.telemetry.metadata.sessionId",
)
TOOL_NAME_KEYS = (
    "gen_ai.tool.name",
    "tool.name",
    "ai.toolCall.name",
    "lk.function_tool.name",
    "tool_call.function.name",
)
AGENT_KEYS = ("gen_ai.agent.name", "agent.name", "agent_name", "ai.telemetry.functionId")

# Where each convention keeps a tool's arguments and result.
TOOL_INPUT_KEYS = (
    "gen_ai.tool.call.arguments",
    "tool_arguments",
    "ai.toolCall.args",
    "ai.toolCall.input",
    "lk.function_tool.arguments",
    "tool_call.function.arguments",
)
TOOL_OUTPUT_KEYS = (
    "gen_ai.tool.call.result",
    "tool_response",
    "ai.toolCall.result",
    "ai.toolCall.output",
    "lk.function_tool.output",
)
# Where a span's input and output are when they are not a conversation, newest first.
VALUE_INPUT_KEYS = (
    ("input.value", "input.mime_type"),
    ("traceloop.entity.input", None),
    ("mlflow.spanInputs", None),
    ("langfuse.observation.input", None),
    ("langfuse.trace.input", None),
    ("lk.user_input", None),
)
VALUE_OUTPUT_KEYS = (
    ("output.value", "output.mime_type"),
    ("traceloop.entity.output", None),
    ("mlflow.spanOutputs", None),
    ("langfuse.observation.output", None),
    ("langfuse.trace.output", None),
    ("final_result", None),
    ("lk.response.text", None),
    ("ai.response.text", None),
)
# Where a model call's conversation is: (messages attribute, flattened prefixes).
MESSAGES_IN = ("gen_ai.input.messages", ("llm.input_messages.", "gen_ai.prompt."))
MESSAGES_OUT = ("gen_ai.output.messages", ("llm.output_messages.", "gen_ai.completion."))
# Older GenAI events, on the span or as log records: one per message.
MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CONTENT_EVENTS = frozenset(
    {
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.client.inference.operation.details",
        "gen_ai.choice",
        *MESSAGE_EVENTS,
    }
)
# Attributes whose content becomes the step's input or output, so not kept twice.
CONTENT_KEYS = frozenset(
    {
        *(k for k, _ in VALUE_INPUT_KEYS),
        *(m for _, m in VALUE_INPUT_KEYS if m),
        *(k for k, _ in VALUE_OUTPUT_KEYS),
        *(m for _, m in VALUE_OUTPUT_KEYS if m),
        *TOOL_INPUT_KEYS,
        *TOOL_OUTPUT_KEYS,
        MESSAGES_IN[0],
        MESSAGES_OUT[0],
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.system_instructions",
        "pydantic_ai.all_messages",
        "all_messages_events",
        "ai.prompt",
        "ai.prompt.messages",
        "ai.response.toolCalls",
        "metadata",
    }
)
CONTENT_PREFIXES = (*MESSAGES_IN[1], *MESSAGES_OUT[1])


def clean(text: str) -> str:
    # NUL cannot be stored in PostgreSQL text or jsonb, and a lone surrogate cannot be
    # encoded: neither carries meaning in telemetry, so they are dropped, not refused.
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text


# --- reading attributes -----------------------------------------------------------------

# attribute -> (what it tells, rank): when a span carries several conventions, the
# lowest rank wins. One pass over a span's attributes reads them all.
PICKS: dict[str, tuple[str, int]] = {}
for _what, _keys in (
    ("model", MODEL_KEYS),
    ("prompt", PROMPT_TOKEN_KEYS),
    ("completion", COMPLETION_TOKEN_KEYS),
    ("total", TOTAL_TOKEN_KEYS),
    ("session", SESSION_KEYS),
    ("tool", TOOL_NAME_KEYS),
    ("agent", AGENT_KEYS),
    # What the instrumentation priced itself wins over the price table: pydantic-ai's
    # operation.cost (genai-prices), OpenInference's llm.cost.*, others' gen_ai.usage.*.
    ("cost", COST_KEYS),
    ("cost_prompt", ("llm.cost.prompt", "gen_ai.usage.input_cost")),
    ("cost_completion", ("llm.cost.completion", "gen_ai.usage.output_cost")),
    ("cache_read", CACHE_READ_KEYS),
    ("cache_write", CACHE_WRITE_KEYS),
):
    for _rank, _key in enumerate(_keys):
        PICKS[_key] = (_what, _rank)


def _scan(attrs: dict) -> tuple[dict[str, Any], dict]:
    """(what the span says, by PICKS name; the attributes kept on the step)."""
    picked: dict[str, tuple[int, Any]] = {}
    kept = {}
    for key, value in attrs.items():
        pick = PICKS.get(key)
        if pick is not None and value is not None and value != "":
            what, rank = pick
            current = picked.get(what)
            if current is None or rank < current[0]:
                picked[what] = (rank, value)
        if key in CONTENT_KEYS or key.startswith(CONTENT_PREFIXES):
            continue
        kept[key] = value
    return {what: value for what, (_rank, value) in picked.items()}, kept


def _first(attrs: dict, keys) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None and value != "":
            return value
    return None


def _int(value) -> int:
    if type(value) is int:
        return min(max(value, 0), INT32_MAX)
    try:
        number = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return 0
    return min(max(number, 0), INT32_MAX)


def _decimal(value) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number < 0 or number >= COST_LIMIT:
        return None
    return number


def _langfuse_usage(attrs: dict, picked: dict) -> None:
    """Langfuse's SDK sends usage and cost as JSON objects."""
    usage = decode(attrs.get("langfuse.observation.usage_details"))
    if isinstance(usage, dict):
        picked.setdefault("prompt", usage.get("input", usage.get("prompt_tokens")))
        picked.setdefault("completion", usage.get("output", usage.get("completion_tokens")))
    cost = decode(attrs.get("langfuse.observation.cost_details"))
    if isinstance(cost, dict) and "cost" not in picked:
        total = cost.get("total")
        if total is None and cost:
            total = sum(_decimal(v) or 0 for v in cost.values())
        picked["cost"] = total
    usage = decode(attrs.get("mlflow.chat.tokenUsage"))
    if isinstance(usage, dict):
        picked.setdefault("prompt", usage.get("input_tokens"))
        picked.setdefault("completion", usage.get("output_tokens"))


def _kind(name: str, attrs: dict, picked: dict) -> str:
    explicit = attrs.get("runboard.step.kind")
    if isinstance(explicit, str) and explicit in STEP_KINDS:
        return explicit
    for key, kinds in KIND_NAMES.items():
        kind = kinds.get(str(attrs.get(key, "")).lower())
        if kind:
            return kind
    operation = str(attrs.get("ai.operationId") or name)
    if operation.startswith("ai."):
        if operation == "ai.toolCall":
            return TOOL
        if VERCEL_MODEL.match(operation):
            return MODEL
        if VERCEL_EMBED.match(operation):
            return EMBEDDING
        return BLOCK
    if "tool" in picked:
        return TOOL
    # Tokens mean a model was called, even when the span does not say which one.
    if "model" in picked or "prompt" in picked or "completion" in picked:
        return MODEL
    return StepKind.OTHER


def _name(name: str, kind: str, attrs: dict, picked: dict) -> str:
    if kind == TOOL and picked.get("tool"):
        return str(picked["tool"])
    # traceloop's decorators name spans "<function>.<kind>"; the entity name is the name.
    entity = attrs.get("traceloop.entity.name")
    if isinstance(entity, str) and entity:
        return entity
    return name


# --- content ------------------------------------------------------------------------------


def _events(events, names) -> list[tuple[str, dict]]:
    return [(n, a) for n, _t, a in events if n in names]


def _event_messages(events, side: str) -> list | None:
    """The older GenAI events (gen_ai.user.message... gen_ai.choice), one per message."""
    messages = []
    for name, attrs in _events(events, CONTENT_EVENTS):
        # Semantic Kernel logs each message as json.dumps(message.to_dict()): a string.
        body = decode(attrs.get("body", attrs))
        if side == "input" and name in MESSAGE_EVENTS:
            item = dict(body) if isinstance(body, dict) else {"content": body}
            item.setdefault("role", MESSAGE_EVENTS[name])
            if isinstance(item.get("content"), str) and item["content"][:1] == "[":
                # Strands sends the content parts JSON-encoded: [{"text": ...}].
                item["content"] = decode(item["content"])
            messages.append(item)
        elif side == "output" and name == "gen_ai.choice":
            item = decode(body.get("message", body)) if isinstance(body, dict) else body
            if not isinstance(item, dict):
                item = {"content": item}
            messages.append({"role": "assistant", **item} if isinstance(item, dict) else item)
    return messages or None


def _messages(attrs: dict, events, side: str) -> list | None:
    """A model call's conversation, from the first convention that carries one."""
    key, prefixes = MESSAGES_IN if side == "input" else MESSAGES_OUT
    found = attrs.get(key)
    if found is None:
        details = _events(events, ("gen_ai.client.inference.operation.details",))
        found = next((a[key] for _n, a in details if key in a), None)
    if found is None:
        for prefix in prefixes:
            found = unflatten(attrs, prefix)
            if found is not None:
                break
    if found is None:
        found = _event_messages(events, side)
    if found is None:
        legacy = "gen_ai.prompt" if side == "input" else "gen_ai.completion"
        found = attrs.get(legacy)
        if found is None:
            event = "gen_ai.content.prompt" if side == "input" else "gen_ai.content.completion"
            found = next((a.get(legacy) for _n, a in _events(events, (event,))), None)
    if found is None and side == "input":
        found = _first(attrs, ("ai.prompt.messages", "ai.prompt"))
    if found is None and side == "output" and "ai.response.toolCalls" in attrs:
        calls = decode(attrs["ai.response.toolCalls"])
        text = attrs.get("ai.response.text")
        found = [{"role": "assistant", "content": text or "", "tool_calls": calls or []}]
    if found is None:
        return None
    messages = conversation(found) if side == "input" else reply(found)
    if messages is not None and side == "input":
        system = decode(attrs.get("gen_ai.system_instructions"))
        if system and not any(m["role"] == "system" for m in messages):
            text = conversation([{"role": "system", "parts": system}])
            messages = (text or []) + messages
    return messages


def content_from_events(events) -> tuple[Any, Any]:
    """(input, output) of a model call from its GenAI events alone (log records)."""
    return _messages({}, events, "input"), _messages({}, events, "output")


def _value(attrs: dict, keys) -> Any:
    for key, mime_key in keys:
        value = attrs.get(key)
        if value is not None:
            value = workflow_run(
                unwrap_call(decode(value, attrs.get(mime_key) if mime_key else None))
            )
            # An object's repr says what type a value was, not what it held: no content
            # (the span keeps it in its attributes; the run's falls back to its model calls).
            return None if object_repr(value) else value
    return None


def _model_content(attrs: dict, events, side: str) -> Any:
    messages = _messages(attrs, events, side)
    if messages is not None:
        return messages
    value = _value(attrs, VALUE_INPUT_KEYS if side == "input" else VALUE_OUTPUT_KEYS)
    if value is None:
        return None
    # input.value of an OpenAI request or response: the messages inside it.
    as_messages = conversation(value) if side == "input" else reply(value)
    return as_messages if as_messages is not None else value


def _content(attrs: dict, events, side: str, kind: str) -> Any:
    """The input (side="input") or output of a span."""
    if kind == MODEL:
        return _model_content(attrs, events, side)
    if kind == TOOL:
        found = _first(attrs, TOOL_INPUT_KEYS if side == "input" else TOOL_OUTPUT_KEYS)
        if found is None:
            found = _tool_event(events, side)
        if found is not None:
            return unwrap_call(decode(found))
    value = _value(attrs, VALUE_INPUT_KEYS if side == "input" else VALUE_OUTPUT_KEYS)
    if value is not None:
        return unwrap_tool_result(value) if kind == TOOL else value
    if kind == BLOCK:
        # An agent span that carries its conversation (pydantic-ai, GenAI) but no value.
        messages = _agent_messages(attrs, events)
        if messages:
            text = first_user_text(messages) if side == "input" else last_reply_text(messages)
            return text
    return None


def _tool_event(events, side: str) -> Any:
    """A tool's arguments and result as the older GenAI events carry them on its span
    (Strands): gen_ai.tool.message holds the arguments, gen_ai.choice the result, as
    content parts ([{"text": ...}]) read as their text."""
    name, key = (
        ("gen_ai.tool.message", "content") if side == "input" else ("gen_ai.choice", "message")
    )
    for _n, event_attrs in _events(events, (name,)):
        body = event_attrs.get("body", event_attrs)
        value = decode(body.get(key)) if isinstance(body, dict) else None
        if isinstance(value, list) and value and all(isinstance(p, dict) for p in value):
            texts = [p["text"] for p in value if isinstance(p.get("text"), str)]
            if len(texts) == len(value):
                return "\n".join(texts)
        if value is not None:
            return value
    return None


def _agent_messages(attrs: dict, events) -> list | None:
    found = _first(attrs, ("pydantic_ai.all_messages", "all_messages_events"))
    if found is not None:
        return conversation(found)
    inputs = _messages(attrs, events, "input") or []
    outputs = _messages(attrs, events, "output") or []
    return inputs + outputs or None


# --- errors ---------------------------------------------------------------------------------

TRACEBACK = "Traceback (most recent call last)"
# repr() of an exception, as LangChain's tracer writes it before the traceback.
EXCEPTION_REPR = re.compile(r"^([A-Za-z_][\w.]*)\((['\"])(.*)\2\)$", re.S)
EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)): (.+)$")


def _described(kind_of: str, text: str) -> str:
    # `openai.BadRequestError` reads as `BadRequestError`; the traceback keeps the module.
    kind_of = kind_of.rsplit(".", 1)[-1]
    return f"{kind_of}: {text}" if kind_of and text else str(kind_of or text)


def _from_status(message: str) -> tuple[str, str]:
    """(the error, its traceback) from a status message that may hold a traceback."""
    if TRACEBACK not in message:
        return message.strip(), ""
    head, _, rest = message.partition(TRACEBACK)
    traceback = TRACEBACK + rest
    head = head.strip()
    found = EXCEPTION_REPR.match(head)
    if found:
        return _described(found.group(1), found.group(3)), traceback
    if head:
        return head, traceback
    for line in reversed(rest.strip().splitlines()):
        found = EXCEPTION_LINE.match(line.strip())
        if found:
            return _described(found.group(1), found.group(2)), traceback
    return rest.strip().splitlines()[-1].strip(), traceback


def _error(attrs: dict, events, kept: dict, status_message: str) -> str:
    """The step's error, once: the exception's type and message when one was recorded,
    else the status message (its traceback, if it holds one, kept apart)."""
    exceptions = [a for n, _t, a in events if n == "exception"]
    if exceptions:
        last = exceptions[-1]
        kept["exception.type"] = last.get("exception.type", "")
        kept["exception.message"] = last.get("exception.message", "")
        if "exception.stacktrace" in last:
            kept["exception.stacktrace"] = last["exception.stacktrace"]
        error = _described(
            str(last.get("exception.type", "")), str(last.get("exception.message", ""))
        )
        if error:
            return error
    if status_message:
        error, traceback = _from_status(status_message)
        if traceback and "exception.stacktrace" not in kept:
            kept["exception.stacktrace"] = traceback
        kind_of = str(attrs.get("error.type") or "")
        if error and kind_of and not error.startswith(kind_of.rsplit(".", 1)[-1]):
            # The GenAI conventions: the type in error.type, the message in the status.
            error = _described(kind_of, error)
        if error:
            return error
    message = attrs.get("langfuse.observation.status_message")
    if message:
        return str(message)
    return str(attrs.get("error.type") or "Error")


def _time(ns: int) -> datetime | None:
    return timestamps.from_unix_nanos(ns)[0]


RESOURCE_METADATA_KEYS = (
    "service.name",
    "service.version",
    "deployment.environment",
    "deployment.environment.name",
)


def _metadata(attrs: dict, resource: dict, name: str) -> dict:
    metadata: dict[str, Any] = {}
    for key in RESOURCE_METADATA_KEYS:
        if isinstance(resource.get(key), str | int | float | bool):
            metadata[key] = resource[key]
    raw = attrs.get("metadata")
    parsed = decode(raw) if raw is not None else None
    if isinstance(parsed, dict):
        metadata.update(parsed)
    tags = attrs.get("tag.tags", attrs.get("langfuse.trace.tags"))
    if isinstance(tags, list):
        metadata["tags"] = tags
    user = _first(attrs, ("user.id", "langfuse.user.id", "enduser.id"))
    if user is not None:
        metadata["user_id"] = user
    if name:
        # The root span's own name ("weather-agent run"), shown beside the agent's.
        metadata["root_span"] = name
    return metadata


def map_span(raw) -> "traces.TraceSpan":
    (
        resource,
        scope,
        trace_id,
        span_id,
        parent_span_id,
        name,
        span_kind,
        start_ns,
        end_ns,
        attrs,
        events,
        status_code,
        status_message,
    ) = raw
    picked, kept = _scan(attrs)
    _langfuse_usage(attrs, picked)
    kind = _kind(name, attrs, picked)
    prompt = picked.get("prompt")
    completion = picked.get("completion")
    prompt_tokens, completion_tokens = _int(prompt), _int(completion)
    if prompt is None and completion is None:
        prompt_tokens = _int(picked.get("total"))
    cost = picked.get("cost")
    if cost is None and ("cost_prompt" in picked or "cost_completion" in picked):
        cost = sum(_decimal(picked.get(k, 0)) or 0 for k in ("cost_prompt", "cost_completion"))
    if kind == BLOCK:
        # An agent or chain span's tokens and cost are its calls' summed (Strands,
        # OpenInference, Langfuse): the calls are steps of their own, counted there.
        prompt_tokens = completion_tokens = 0
        cost = None
    model = picked.get("model")

    other_events = []
    for event_name, event_ns, event_attrs in events:
        skip = event_name == "exception" or event_name in CONTENT_EVENTS
        if not skip and len(other_events) < 50:
            at = _time(event_ns)
            other_events.append(
                {
                    "name": event_name,
                    "time": at.isoformat() if at else None,
                    "attributes": event_attrs,
                }
            )
    failed = status_code == STATUS_ERROR or attrs.get("langfuse.observation.level") == "ERROR"
    error = _error(attrs, events, kept, status_message or "") if failed else ""
    if other_events:
        kept["events"] = other_events
    if span_kind in SPAN_KINDS:
        kept["otel.span.kind"] = SPAN_KINDS[span_kind]
    if scope:
        kept["otel.scope.name"] = scope
    status = StepStatus.COMPLETED if end_ns else StepStatus.RUNNING
    if failed:
        status = StepStatus.FAILED

    (started, start_moved), (ended, end_moved) = (
        timestamps.from_unix_nanos(start_ns),
        timestamps.from_unix_nanos(end_ns),
    )
    duration_ms = (end_ns - start_ns) // 1_000_000 if start_ns and end_ns >= start_ns else None
    if start_moved or end_moved:
        # Kept, not dropped: the time goes to the nearest storable one and the span says
        # what it really sent, so nobody mistakes the clamped time for the real one.
        kept[timestamps.CLAMPED_KEY] = {
            "start_time_unix_nano": str(start_ns),
            "end_time_unix_nano": str(end_ns),
            "reason": f"a span time was not {timestamps.RANGE_TEXT}",
        }
        duration_ms = None
        if started and ended and ended >= started:
            duration_ms = int((ended - started).total_seconds() * 1000)
    step = StepRecord(
        span_id=span_id,
        parent_span_id=parent_span_id,
        kind=kind,
        name=_name(name, kind, attrs, picked)[:500],
        status=status,
        started_at=started,
        ended_at=ended,
        duration_ms=duration_ms,
        input=_content(attrs, events, "input", kind),
        output=_content(attrs, events, "output", kind),
        error=error,
        model=str(model or "")[:200],
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=_decimal(cost) if cost is not None else None,
        cache_read_tokens=_int(picked.get("cache_read")),
        cache_write_tokens=_int(picked.get("cache_write")),
        attributes=kept,
    )
    for side, keys in (("input", VALUE_INPUT_KEYS), ("output", VALUE_OUTPUT_KEYS)):
        key = keys[0][0]
        if getattr(step, side) is None and attrs.get(key) is not None:
            kept[key] = attrs[key]  # not readable content, but what the span said
    if step.input is None or step.output is None:
        # A span re-sent without content (its messages came as log records, logs.py)
        # keeps the content it has.
        step.provided = {a for _c, a in UPDATABLE} - {
            side for side in ("input", "output") if getattr(step, side) is None
        }
    version = resource.get("service.version")
    agent_version = attrs.get("gen_ai.agent.version")
    agent = picked.get("agent")
    if not agent and not parent_span_id and attrs.get("traceloop.span.kind") == "agent":
        agent = attrs.get("traceloop.entity.name")
    return traces.TraceSpan(
        trace_id=trace_id,
        step=step,
        service_name=str(resource.get("service.name") or ""),
        service_version=str(version) if version not in (None, "") else None,
        agent_name=str(agent or "") or None,
        agent_version=str(agent_version) if agent_version not in (None, "") else None,
        session_id=str(picked.get("session") or ""),
        metadata=_metadata(attrs, resource, name) if not parent_span_id else {},
        resource=resource,
    )
