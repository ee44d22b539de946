"""OTLP/HTTP trace ingestion at /v1/traces: protobuf or JSON bodies, gzip or not.

Spans are read the way the common instrumentation libraries write them: the
OpenTelemetry GenAI semantic conventions (current names and the older ones still
emitted by default, e.g. gen_ai.usage.prompt_tokens and gen_ai.prompt.N.*), and the
OpenInference attributes (openinference.span.kind, llm.*, tool.*, input.value,
output.value, session.id). services.traces_ingest turns them into executions and steps.
"""

import json
import logging
import re
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from agents.selectors import api_key_authenticate
from agents.services import api_key_touch

from . import services
from .models import StepKind, StepStatus
from .steps_writer import StepRecord

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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
UNSTORABLE_TEXT = re.compile(r"\\u(0000|[dD][89abAB])")
UNSTORABLE_BYTES = re.compile(rb"\\u(0000|[dD][89abAB])")


class OtlpError(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


# --- decoding ----------------------------------------------------------------------


def _clean(text: str) -> str:
    # NUL cannot be stored in PostgreSQL text or jsonb, and a lone surrogate cannot be
    # encoded: neither carries meaning in telemetry, so they are dropped, not refused.
    if "\x00" in text:
        text = text.replace("\x00", "")
    return text


def _pb_value(value) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return _clean(value.string_value)
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return None


def _pb_attrs(kvs) -> dict:
    return {kv.key: _pb_value(kv.value) for kv in kvs}


def _decode_protobuf(body: bytes):
    message = ExportTraceServiceRequest()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise OtlpError(400, f"The body is not an OTLP ExportTraceServiceRequest: {exc}.") from None
    for resource_spans in message.resource_spans:
        resource = _pb_attrs(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                yield (
                    resource,
                    scope,
                    span.trace_id.hex(),
                    span.span_id.hex(),
                    span.parent_span_id.hex(),
                    _clean(span.name),
                    span.kind,
                    span.start_time_unix_nano,
                    span.end_time_unix_nano,
                    _pb_attrs(span.attributes),
                    [(e.name, e.time_unix_nano, _pb_attrs(e.attributes)) for e in span.events],
                    span.status.code,
                    _clean(span.status.message),
                )


def _json_value(value: dict) -> Any:
    if not isinstance(value, dict):
        return None
    for key, cast in (
        ("stringValue", str),
        ("string_value", str),
        ("boolValue", bool),
        ("bool_value", bool),
        ("intValue", int),
        ("int_value", int),
        ("doubleValue", float),
        ("double_value", float),
    ):
        if key in value:
            return cast(value[key])
    for key in ("arrayValue", "array_value"):
        if key in value:
            return [_json_value(v) for v in (value[key] or {}).get("values") or []]
    for key in ("kvlistValue", "kvlist_value"):
        if key in value:
            return _json_attrs((value[key] or {}).get("values") or [])
    for key in ("bytesValue", "bytes_value"):
        if key in value:
            return str(value[key])
    return None


def _json_attrs(items) -> dict:
    if not isinstance(items, list):
        raise TypeError("attributes must be a list of {key, value}")
    return {item["key"]: _json_value(item.get("value")) for item in items}


def _get(obj: dict, camel: str, default=None):
    # OTLP/JSON uses lowerCamelCase; the protobuf JSON mapping also accepts field names.
    if camel in obj:
        return obj[camel]
    snake = "".join("_" + c.lower() if c.isupper() else c for c in camel)
    return obj.get(snake, default)


def _enum(value, names: dict[str, int]) -> int:
    if isinstance(value, str) and not value.isdigit():
        return names.get(value, 0)
    return int(value or 0)


SPAN_KIND_NAMES = {f"SPAN_KIND_{v}": k for k, v in SPAN_KINDS.items()}
STATUS_NAMES = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}


def _hex_id(value) -> str:
    text = str(value or "").strip().lower()
    if text:
        bytes.fromhex(text)  # ValueError for anything that is not hex
    return text


def _decode_json(body: bytes):
    try:
        message = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OtlpError(400, f"The body is not valid JSON: {exc}.") from None
    if not isinstance(message, dict):
        raise OtlpError(400, "The body must be a JSON object with resourceSpans.")
    try:
        spans = []
        for resource_spans in _get(message, "resourceSpans") or []:
            resource = _json_attrs((_get(resource_spans, "resource") or {}).get("attributes") or [])
            for scope_spans in _get(resource_spans, "scopeSpans") or []:
                scope = (_get(scope_spans, "scope") or {}).get("name", "")
                for span in _get(scope_spans, "spans") or []:
                    status = _get(span, "status") or {}
                    spans.append(
                        (
                            resource,
                            scope,
                            _hex_id(_get(span, "traceId")),
                            _hex_id(_get(span, "spanId")),
                            _hex_id(_get(span, "parentSpanId")),
                            _clean(str(span.get("name") or "")),
                            _enum(span.get("kind"), SPAN_KIND_NAMES),
                            int(_get(span, "startTimeUnixNano") or 0),
                            int(_get(span, "endTimeUnixNano") or 0),
                            _json_attrs(span.get("attributes") or []),
                            [
                                (
                                    str(e.get("name") or ""),
                                    int(_get(e, "timeUnixNano") or 0),
                                    _json_attrs(e.get("attributes") or []),
                                )
                                for e in span.get("events") or []
                            ],
                            _enum(status.get("code"), STATUS_NAMES),
                            _clean(str(status.get("message") or "")),
                        )
                    )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise OtlpError(400, f"The body is not OTLP/JSON trace data: {exc!r}.") from None
    if b"\\u" in body and UNSTORABLE_BYTES.search(body):
        spans = [_scrub(s) for s in spans]
    return spans


def _scrub(value):
    if isinstance(value, str):
        return _clean(value).encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, tuple):
        return tuple(_scrub(v) for v in value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    return value


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise OtlpError(415, f"Content-Encoding {encoding!r} is not supported; use gzip.")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise OtlpError(400, f"The body is not valid {encoding} data: {exc}.") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise OtlpError(
            413, f"The decompressed body is larger than the {limit}-byte limit (MAX_REQUEST_BYTES)."
        )
    return data


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
    ("cost", ("llm.cost.total", "gen_ai.usage.cost")),
    ("cost_prompt", ("llm.cost.prompt",)),
    ("cost_completion", ("llm.cost.completion",)),
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
            parsed = _scrub(parsed)
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


def _content(attrs: dict, events, side: str, kind: str) -> Any:
    """The input (side="input") or output of a span, from the first convention present."""
    if side == "input":
        if kind == StepKind.TOOL_CALL:
            args = _first(attrs, ("gen_ai.tool.call.arguments", "tool_call.function.arguments"))
            if args is not None:
                return _maybe_json(args)
        value = attrs.get("input.value")
        if value is not None:
            return _maybe_json(value, attrs.get("input.mime_type"))
        messages = attrs.get("gen_ai.input.messages")
        if messages is None:
            messages = _event_attr(
                events, ("gen_ai.client.inference.operation.details",), "gen_ai.input.messages"
            )
        if messages is not None:
            return _maybe_json(messages)
        flat = _unflatten(attrs, "llm.input_messages.") or _unflatten(attrs, "gen_ai.prompt.")
        if flat is not None:
            return flat
        value = attrs.get("gen_ai.prompt")
        if value is None:
            value = _event_attr(events, ("gen_ai.content.prompt",), "gen_ai.prompt")
        if value is None:
            value = attrs.get("traceloop.entity.input")
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
    if not ns:
        return None
    try:
        return EPOCH + timedelta(microseconds=ns // 1000)
    except OverflowError:
        return None


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


def map_span(raw) -> services.TraceSpan:
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
    if cost is None and ("cost_prompt" in picked or "cost_completion" in picked):
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

    started, ended = _time(start_ns), _time(end_ns)
    step = StepRecord(
        span_id=span_id,
        parent_span_id=parent_span_id,
        kind=kind,
        name=str(tool or name)[:500],
        status=status,
        started_at=started,
        ended_at=ended,
        duration_ms=(end_ns - start_ns) // 1_000_000 if start_ns and end_ns >= start_ns else None,
        input=_content(attrs, events, "input", kind),
        output=_content(attrs, events, "output", kind),
        error=error,
        model=str(model or "")[:200],
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost_usd=_decimal(cost) if cost is not None else None,
        attributes=kept,
    )
    version = resource.get("service.version")
    agent_version = attrs.get("gen_ai.agent.version")
    return services.TraceSpan(
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


def decode(body: bytes, content_type: str, content_encoding: str = ""):
    """(spans, rejected, reasons) from a request body; OtlpError for a body we cannot read."""
    media = content_type.split(";")[0].strip().lower()
    body = _decompress(body, content_encoding)
    if media in ("application/x-protobuf", "application/protobuf", "application/octet-stream"):
        raw_spans = _decode_protobuf(body)
    elif media == "application/json":
        raw_spans = _decode_json(body)
    else:
        raise OtlpError(
            415,
            f"Content-Type {media or '(none)'!r} is not OTLP; send application/x-protobuf "
            "or application/json.",
        )
    spans, rejected, reasons = [], 0, []
    for raw in raw_spans:
        trace_id, span_id, parent_span_id = raw[2], raw[3], raw[4]
        problem = None
        if len(trace_id) != 32 or trace_id == "0" * 32:
            problem = f"span {span_id or '?'} has an invalid trace id {trace_id!r}"
        elif len(span_id) != 16 or span_id == "0" * 16:
            problem = f"a span of trace {trace_id} has an invalid span id {span_id!r}"
        elif parent_span_id and len(parent_span_id) != 16:
            problem = f"span {span_id} has an invalid parent span id {parent_span_id!r}"
        if problem:
            rejected += 1
            if len(reasons) < 5:
                reasons.append(problem)
            continue
        if parent_span_id == "0" * 16:
            raw = (*raw[:4], "", *raw[5:])
        spans.append(map_span(raw))
    return spans, rejected, reasons


# --- the view ----------------------------------------------------------------------


def _status_bytes(code: int, message: str) -> bytes:
    """A google.rpc.Status message, encoded by hand (code = 1, message = 2)."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            if n:
                out.append(byte | 0x80)
            else:
                out.append(byte)
                return bytes(out)

    text = message.encode()
    return b"\x08" + varint(code) + b"\x12" + varint(len(text)) + text


GRPC_CODES = {400: 3, 401: 16, 404: 5, 413: 8, 415: 3, 500: 13}


def _error(status: int, message: str, as_json: bool) -> HttpResponse:
    code = GRPC_CODES.get(status, 2)
    if as_json:
        body = json.dumps({"code": code, "message": message})
        response = HttpResponse(body, status=status, content_type="application/json")
    else:
        response = HttpResponse(
            _status_bytes(code, message), status=status, content_type="application/x-protobuf"
        )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="runboard"'
    return response


def _bearer(request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@csrf_exempt
@login_not_required
def traces_view(request):
    """POST /v1/traces: an OTLP ExportTraceServiceRequest, stored before the response."""
    as_json = request.content_type == "application/json"
    if request.method != "POST":
        response = _error(405, "Send traces with POST.", as_json)
        response["Allow"] = "POST"
        return response
    token = _bearer(request)
    if not token:
        return _error(401, "Missing API key: send 'Authorization: Bearer rb_...'.", as_json)
    key = api_key_authenticate(raw_key=token)
    if key is None:
        return _error(401, "Invalid or revoked API key.", as_json)
    api_key_touch(key)
    try:
        body = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _error(
            413, f"The body is larger than the {limit}-byte limit (MAX_REQUEST_BYTES).", as_json
        )
    try:
        spans, rejected, reasons = decode(
            body, request.META.get("CONTENT_TYPE", ""), request.headers.get("Content-Encoding", "")
        )
    except OtlpError as exc:
        return _error(exc.status, exc.message, as_json)
    if spans:
        services.traces_ingest(workspace=key.workspace, spans=spans)

    message = ExportTraceServiceResponse()
    if rejected:
        message.partial_success.rejected_spans = rejected
        message.partial_success.error_message = "; ".join(reasons)
    if as_json:
        payload = {}
        if rejected:
            payload["partialSuccess"] = {
                "rejectedSpans": str(rejected),
                "errorMessage": message.partial_success.error_message,
            }
        return HttpResponse(json.dumps(payload), content_type="application/json")
    return HttpResponse(message.SerializeToString(), content_type="application/x-protobuf")
