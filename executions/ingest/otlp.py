"""OTLP/HTTP trace ingestion at /v1/traces: protobuf or JSON bodies, gzip or not,
authenticated by workspace API key.

Bodies are decoded here into raw span tuples; semconv.map_span reads what each
span says (GenAI semantic conventions, OpenInference) and traces.traces_ingest
stores them: a trace becomes one execution, its spans steps.
"""

import json
import logging
import math
import zlib
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from agents.selectors import api_key_authenticate
from agents.services import api_key_touch
from executions import json_input

from . import logs, traces
from .semconv import SPAN_KINDS, UNSTORABLE_BYTES, clean, map_span, scrub

logger = logging.getLogger(__name__)


class OtlpError(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


# --- decoding ----------------------------------------------------------------------


def _pb_value(value) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return clean(value.string_value)
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        number = value.double_value
        return number if math.isfinite(number) else str(number)
    if kind == "bool_value":
        return value.bool_value
    if kind == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _pb_attrs(value.kvlist_value.values)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return None


def _pb_attrs(kvs) -> dict:
    attrs = {}
    for kv in kvs:
        if "\x00" in kv.key:
            # A key is a name a query or a rule will use: refused, not quietly renamed.
            raise OtlpError(
                400,
                f"The attribute key {kv.key!r} contains a NUL character, which cannot be stored.",
            )
        attrs[kv.key] = _pb_value(kv.value)
    return attrs


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
                    clean(span.name),
                    span.kind,
                    span.start_time_unix_nano,
                    span.end_time_unix_nano,
                    _pb_attrs(span.attributes),
                    [(e.name, e.time_unix_nano, _pb_attrs(e.attributes)) for e in span.events],
                    span.status.code,
                    clean(span.status.message),
                )


def _bool(value) -> bool:
    # bool("false") is True: the JSON mapping says true or false, and a string
    # spelling of either is read as meant rather than as "not empty".
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise ValueError(f"boolValue must be true or false, got {value!r}")


def _double(value) -> float | str:
    # The JSON mapping spells NaN and the infinities as strings; jsonb cannot hold
    # them as numbers, so they are kept as those strings.
    number = float(value)
    return number if math.isfinite(number) else str(value)


def _json_value(value: dict) -> Any:
    if not isinstance(value, dict):
        return None
    for key, cast in (
        ("stringValue", str),
        ("string_value", str),
        ("boolValue", _bool),
        ("bool_value", _bool),
        ("intValue", int),
        ("int_value", int),
        ("doubleValue", _double),
        ("double_value", _double),
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
    attrs = {}
    for item in items:
        key = item["key"]
        if not isinstance(key, str):
            raise ValueError(f"an attribute key must be a string, got {key!r}")
        attrs[key] = _json_value(item.get("value"))
    return attrs


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
        message = json_input.loads(body, depth=0, texts=False)
    except json_input.JsonInputError as exc:
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
                            clean(str(span.get("name") or "")),
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
                            clean(str(status.get("message") or "")),
                        )
                    )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise OtlpError(400, f"The body is not OTLP/JSON trace data: {exc!r}.") from None
    if b"\\u" in body and UNSTORABLE_BYTES.search(body):
        spans = [scrub(s) for s in spans]
    return spans


def _decode_logs_protobuf(body: bytes):
    message = ExportLogsServiceRequest()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise OtlpError(400, f"The body is not an OTLP ExportLogsServiceRequest: {exc}.") from None
    for resource_logs in message.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                yield (
                    record.trace_id.hex(),
                    record.span_id.hex(),
                    clean(record.event_name),
                    record.time_unix_nano or record.observed_time_unix_nano,
                    _pb_attrs(record.attributes),
                    _pb_value(record.body) if record.HasField("body") else None,
                )


def _decode_logs_json(body: bytes):
    try:
        message = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OtlpError(400, f"The body is not valid JSON: {exc}.") from None
    if not isinstance(message, dict):
        raise OtlpError(400, "The body must be a JSON object with resourceLogs.")
    try:
        records = []
        for resource_logs in _get(message, "resourceLogs") or []:
            for scope_logs in _get(resource_logs, "scopeLogs") or []:
                for record in _get(scope_logs, "logRecords") or []:
                    body_value = record.get("body")
                    records.append(
                        (
                            _hex_id(_get(record, "traceId")),
                            _hex_id(_get(record, "spanId")),
                            clean(str(_get(record, "eventName") or "")),
                            int(_get(record, "timeUnixNano") or 0),
                            _json_attrs(record.get("attributes") or []),
                            _json_value(body_value) if body_value is not None else None,
                        )
                    )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise OtlpError(400, f"The body is not OTLP/JSON log data: {exc!r}.") from None
    return records


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


GRPC_CODES = {400: 3, 401: 16, 404: 5, 413: 8, 415: 3, 500: 13, 503: 14}


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


def unavailable(request, message: str) -> HttpResponse:
    """503 (gRPC UNAVAILABLE) in the encoding the exporter sent: it retries this one."""
    as_json = (request.content_type or "").split(";")[0].strip() == "application/json"
    return _error(503, message, as_json)


def _bearer(request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _accept(request, what: str, as_json: bool):
    """(the API key, the body) of an OTLP export, or the error response to send."""
    if request.method != "POST":
        response = _error(405, f"Send {what} with POST.", as_json)
        response["Allow"] = "POST"
        return None, response
    token = _bearer(request)
    if not token:
        return None, _error(401, "Missing API key: send 'Authorization: Bearer rb_...'.", as_json)
    key = api_key_authenticate(raw_key=token)
    if key is None:
        return None, _error(401, "Invalid or revoked API key.", as_json)
    api_key_touch(key)
    try:
        return key, request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return None, _error(
            413, f"The body is larger than the {limit}-byte limit (MAX_REQUEST_BYTES).", as_json
        )


@csrf_exempt
@login_not_required
def logs_view(request):
    """POST /v1/logs: an OTLP ExportLogsServiceRequest. GenAI content events are
    attached to their spans (logs.py); other records are accepted and dropped."""
    as_json = request.content_type == "application/json"
    key, body = _accept(request, "logs", as_json)
    if key is None:
        return body
    media = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    try:
        data = _decompress(body, request.headers.get("Content-Encoding", ""))
        if media in ("application/x-protobuf", "application/protobuf", "application/octet-stream"):
            records = list(_decode_logs_protobuf(data))
        elif media == "application/json":
            records = _decode_logs_json(data)
        else:
            raise OtlpError(
                415,
                f"Content-Type {media or '(none)'!r} is not OTLP; send application/x-protobuf "
                "or application/json.",
            )
    except OtlpError as exc:
        return _error(exc.status, exc.message, as_json)
    if b"\\u" in data and UNSTORABLE_BYTES.search(data):
        records = [scrub(r) for r in records]
    logs.logs_ingest(workspace=key.workspace, grouped=logs.content_records(records))
    if as_json:
        return HttpResponse("{}", content_type="application/json")
    return HttpResponse(
        ExportLogsServiceResponse().SerializeToString(), content_type="application/x-protobuf"
    )


@csrf_exempt
@login_not_required
def traces_view(request):
    """POST /v1/traces: an OTLP ExportTraceServiceRequest, stored before the response."""
    as_json = request.content_type == "application/json"
    key, body = _accept(request, "traces", as_json)
    if key is None:
        return body
    try:
        spans, rejected, reasons = decode(
            body, request.META.get("CONTENT_TYPE", ""), request.headers.get("Content-Encoding", "")
        )
    except OtlpError as exc:
        return _error(exc.status, exc.message, as_json)
    stops = []
    if spans:
        result = traces.traces_ingest(workspace=key.workspace, spans=spans)
        # OTLP has no field for "stop": the partial-success message is what exporters
        # log, so a runtime without a webhook learns there that its run was stopped.
        stops = [
            f"execution {e.pk} (trace {e.trace_id}) is {stop['status']}: {stop['reason']}; "
            "stop sending its spans"
            for e, stop in result.stops
        ]

    message = ExportTraceServiceResponse()
    if rejected or stops:
        message.partial_success.rejected_spans = rejected
        message.partial_success.error_message = "; ".join([*reasons, *stops])
    if as_json:
        payload = {}
        if rejected or stops:
            payload["partialSuccess"] = {
                "rejectedSpans": str(rejected),
                "errorMessage": message.partial_success.error_message,
            }
        return HttpResponse(json.dumps(payload), content_type="application/json")
    return HttpResponse(message.SerializeToString(), content_type="application/x-protobuf")
