"""How spans say what they did: the OpenTelemetry GenAI semantic conventions (current
names and the older ones still emitted by default, e.g. gen_ai.usage.prompt_tokens and
gen_ai.prompt.N.*) and OpenInference (openinference.span.kind, llm.*, tool.*,
input.value, output.value, session.id), read into a step: kind, model, tokens, cost,
input, output, tool name and arguments, session id, errors.

otlp.py decodes request bodies into raw span tuples; map_span() here turns one into
a TraceSpan for traces.traces_ingest.
"""

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from executions import timestamps
from executions.models import StepKind, StepStatus

from . import traces
from .steps import StepRecord

INT32_MAX = 2_147_483_647
COST_LIMIT = Decimal("99999999")
SPAN_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
STATUS_ERROR = 2

STEP_KINDS = frozenset(StepKind.values)
OPENINFERENCE_KINDS = {
    "LLM": StepKind.MODEL_CALL,
    "EMBEDDING": StepKind.MODEL_CALL,
    "RERANKER": StepKind.MODEL_CALL,
    "TOOL": StepKind.TOOL_CALL,
    "RETRIEVER": StepKind.TOOL_CALL,
    "CHAIN": StepKind.BLOCK,
    "AGENT": StepKind.BLOCK,
    "GUARDRAIL": StepKind.GUARDRAIL,
    "EVALUATOR": StepKind.GUARDRAIL,
}
GENAI_OPERATIONS = {
    "chat": StepKind.MODEL_CALL,
    "text_completion": StepKind.MODEL_CALL,
    "generate_content": StepKind.MODEL_CALL,
    "embeddings": StepKind.MODEL_CALL,
    "execute_tool": StepKind.TOOL_CALL,
    "retrieval": StepKind.TOOL_CALL,
    "invoke_agent": StepKind.BLOCK,
    "create_agent": StepKind.BLOCK,
    "invoke_workflow": StepKind.BLOCK,
}
TRACELOOP_KINDS = {
    "workflow": StepKind.BLOCK,
    "task": StepKind.BLOCK,
    "agent": StepKind.BLOCK,
    "tool": StepKind.TOOL_CALL,
}

MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
PROMPT_TOKEN_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
)
COMPLETION_TOKEN_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
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
)
CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
    "gen_ai.usage.details.cache_write_tokens",
    "llm.usage.cache_creation_input_tokens",
)
SESSION_KEYS = ("session.id", "gen_ai.conversation.id", "langfuse.session.id")
TOOL_NAME_KEYS = ("gen_ai.tool.name", "tool.name", "tool_call.function.name")
# Attributes whose content becomes the step's input or output, so not kept twice.
CONTENT_KEYS = frozenset(
    {
        "input.value",
        "input.mime_type",
        "output.value",
        "output.mime_type",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.prompt",
        "gen_ai.completion",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "tool_call.function.arguments",
        "traceloop.entity.input",
        "traceloop.entity.output",
        "metadata",
    }
)
CONTENT_PREFIXES = (
    "llm.input_messages.",
    "llm.output_messages.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
)
CONTENT_EVENTS = frozenset(
    {
        "gen_ai.content.prompt",
        "gen_ai.content.completion",
        "gen_ai.client.inference.operation.details",
    }
)


# JSON escapes of what PostgreSQL cannot store: NUL, and UTF-16 surrogates (a lone one
# cannot be encoded). Looked for only when a "\u" escape is present at all.
UNSTORABLE_TEXT = re.compile(r"\\u(0000|[dD][89a-fA-F])")
UNSTORABLE_BYTES = re.compile(rb"\\u(0000|[dD][89a-fA-F])")


def clean(text: str) -> str:
    # NUL cannot be stored in PostgreSQL text or jsonb, and a lone surrogate cannot be
    # encoded: neither carries meaning in telemetry, so they are dropped, not refused.
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text


def scrub(value):
    if isinstance(value, str):
        return clean(value).encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, tuple):
        return tuple(scrub(v) for v in value)
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value


# --- mapping spans to steps -----------------------------------------------------------

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
    ("agent", ("gen_ai.agent.name", "agent.name")),
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


def _maybe_json(value: Any, mime: Any = None) -> Any:
    """Parse a JSON string attribute (OpenInference values, GenAI messages)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if mime == "application/json" or text[:1] in ("{", "["):
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            return value
        if "\\u" in text and UNSTORABLE_TEXT.search(text):
            parsed = scrub(parsed)
        return parsed
    return value


def _unflatten(attrs: dict, prefix: str) -> list | None:
    """`llm.input_messages.0.message.role` style attributes as a list of objects."""
    items: dict[int, dict] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if not index.isdigit():
            continue
        if rest.startswith("message."):
            rest = rest[len("message.") :]
        items.setdefault(int(index), {})[rest or "value"] = _maybe_json(value)
    if not items:
        return None
    return [items[i] for i in sorted(items)]


def _event_attr(events, names: tuple[str, ...], key: str) -> Any:
    for name, _time, attrs in events:
        if name in names and key in attrs:
            return attrs[key]
    return None


# Where each convention keeps a span's input and output, newest convention first:
# OpenInference value, GenAI messages (attribute, then event), flattened messages
# (OpenInference, older GenAI), the older GenAI prompt/completion (attribute, then
# event), and Traceloop's entity payload.
_SIDES = {
    "input": {
        "value": ("input.value", "input.mime_type"),
        "messages": "gen_ai.input.messages",
        "flattened": ("llm.input_messages.", "gen_ai.prompt."),
        "legacy": ("gen_ai.prompt", "gen_ai.content.prompt"),
        "traceloop": "traceloop.entity.input",
    },
    "output": {
        "value": ("output.value", "output.mime_type"),
        "messages": "gen_ai.output.messages",
        "flattened": ("llm.output_messages.", "gen_ai.completion."),
        "legacy": ("gen_ai.completion", "gen_ai.content.completion"),
        "traceloop": "traceloop.entity.output",
    },
}


def _content(attrs: dict, events, side: str, kind: str) -> Any:
    """The input (side="input") or output of a span, from the first convention present."""
    if kind == StepKind.TOOL_CALL:
        if side == "input":
            args = _first(attrs, ("gen_ai.tool.call.arguments", "tool_call.function.arguments"))
            if args is not None:
                return _maybe_json(args)
        elif "gen_ai.tool.call.result" in attrs:
            return _maybe_json(attrs["gen_ai.tool.call.result"])
    names = _SIDES[side]
    value_key, mime_key = names["value"]
    value = attrs.get(value_key)
    if value is not None:
        return _maybe_json(value, attrs.get(mime_key))
    messages = attrs.get(names["messages"])
    if messages is None:
        messages = _event_attr(
            events, ("gen_ai.client.inference.operation.details",), names["messages"]
        )
    if messages is not None:
        return _maybe_json(messages)
    for prefix in names["flattened"]:
        flat = _unflatten(attrs, prefix)
        if flat is not None:
            return flat
    legacy_key, legacy_event = names["legacy"]
    value = attrs.get(legacy_key)
    if value is None:
        value = _event_attr(events, (legacy_event,), legacy_key)
    if value is None:
        value = attrs.get(names["traceloop"])
    return _maybe_json(value)
    if kind == StepKind.TOOL_CALL and "gen_ai.tool.call.result" in attrs:
        return _maybe_json(attrs["gen_ai.tool.call.result"])
    value = attrs.get("output.value")
    if value is not None:
        return _maybe_json(value, attrs.get("output.mime_type"))
    messages = attrs.get("gen_ai.output.messages")
    if messages is None:
        messages = _event_attr(
            events, ("gen_ai.client.inference.operation.details",), "gen_ai.output.messages"
        )
    if messages is not None:
        return _maybe_json(messages)
    flat = _unflatten(attrs, "llm.output_messages.") or _unflatten(attrs, "gen_ai.completion.")
    if flat is not None:
        return flat
    value = attrs.get("gen_ai.completion")
    if value is None:
        value = _event_attr(events, ("gen_ai.content.completion",), "gen_ai.completion")
    if value is None:
        value = attrs.get("traceloop.entity.output")
    return _maybe_json(value)


def _kind(attrs: dict, picked: dict) -> str:
    explicit = attrs.get("runboard.step.kind")
    if isinstance(explicit, str) and explicit in STEP_KINDS:
        return explicit
    kind = OPENINFERENCE_KINDS.get(str(attrs.get("openinference.span.kind", "")).upper())
    if kind:
        return kind
    kind = GENAI_OPERATIONS.get(str(attrs.get("gen_ai.operation.name", "")).lower())
    if kind:
        return kind
    kind = TRACELOOP_KINDS.get(str(attrs.get("traceloop.span.kind", "")).lower())
    if kind:
        return kind
    if "tool" in picked:
        return StepKind.TOOL_CALL
    if "model" in picked:
        return StepKind.MODEL_CALL
    return StepKind.OTHER


def _time(ns: int) -> datetime | None:
    return timestamps.from_unix_nanos(ns)[0]


RESOURCE_METADATA_KEYS = (
    "service.name",
    "service.version",
    "deployment.environment",
    "deployment.environment.name",
)


def _metadata(attrs: dict, resource: dict) -> dict:
    metadata: dict[str, Any] = {}
    for key in RESOURCE_METADATA_KEYS:
        if isinstance(resource.get(key), str | int | float | bool):
            metadata[key] = resource[key]
    raw = attrs.get("metadata")
    parsed = _maybe_json(raw) if raw is not None else None
    if isinstance(parsed, dict):
        metadata.update(parsed)
    tags = attrs.get("tag.tags")
    if isinstance(tags, list):
        metadata["tags"] = tags
    user = attrs.get("user.id")
    if user is not None:
        metadata["user_id"] = user
    return metadata


def map_span(raw) -> traces.TraceSpan:
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
    kind = _kind(attrs, picked)
    prompt = picked.get("prompt")
    completion = picked.get("completion")
    prompt_tokens, completion_tokens = _int(prompt), _int(completion)
    if prompt is None and completion is None:
        prompt_tokens = _int(picked.get("total"))
    cost = picked.get("cost")
    if kind == StepKind.BLOCK:
        # An agent or chain span's cost is its calls' cost summed (OpenInference,
        # Langfuse): the calls are steps of their own, so it is not counted twice.
        cost = None
    elif cost is None and ("cost_prompt" in picked or "cost_completion" in picked):
        cost = sum(_decimal(picked.get(k, 0)) or 0 for k in ("cost_prompt", "cost_completion"))
    model = picked.get("model")
    tool = picked.get("tool") if kind == StepKind.TOOL_CALL else None

    error = ""
    other_events = []
    for event_name, event_ns, event_attrs in events:
        if event_name == "exception":
            kind_of = event_attrs.get("exception.type", "")
            text = event_attrs.get("exception.message", "")
            described = f"{kind_of}: {text}" if kind_of and text else str(kind_of or text)
            kept["exception.type"] = kind_of
            kept["exception.message"] = text
            if "exception.stacktrace" in event_attrs:
                kept["exception.stacktrace"] = event_attrs["exception.stacktrace"]
            if status_code == STATUS_ERROR and not error:
                error = described
        elif event_name not in CONTENT_EVENTS and len(other_events) < 50:
            at = _time(event_ns)
            other_events.append(
                {
                    "name": event_name,
                    "time": at.isoformat() if at else None,
                    "attributes": event_attrs,
                }
            )
    if other_events:
        kept["events"] = other_events
    if span_kind in SPAN_KINDS:
        kept["otel.span.kind"] = SPAN_KINDS[span_kind]
    if scope:
        kept["otel.scope.name"] = scope
    if status_code == STATUS_ERROR:
        status = StepStatus.FAILED
        if status_message:
            error = (
                f"{status_message}\n{error}"
                if error and error != status_message
                else status_message
            )
        error = error or str(attrs.get("error.type") or "Error")
    else:
        status = StepStatus.COMPLETED if end_ns else StepStatus.RUNNING

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
        name=str(tool or name)[:500],
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
    version = resource.get("service.version")
    agent_version = attrs.get("gen_ai.agent.version")
    return traces.TraceSpan(
        trace_id=trace_id,
        step=step,
        service_name=str(resource.get("service.name") or ""),
        service_version=str(version) if version not in (None, "") else None,
        agent_name=str(picked.get("agent") or "") or None,
        agent_version=str(agent_version) if agent_version not in (None, "") else None,
        session_id=str(picked.get("session") or ""),
        metadata=_metadata(attrs, resource) if not parent_span_id else {},
        resource=resource,
    )
