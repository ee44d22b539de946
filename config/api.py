"""The JSON API (/api/v1/): one NinjaAPI, authenticated by workspace API keys.

Every error answers JSON with a `detail` that says what was wrong: 400 for a body
that cannot be read (with the parser's reason), 401 for a missing or revoked key,
404 for an id that is not in the key's workspace, 409 for an illegal status change,
413 for a body over MAX_REQUEST_BYTES, 422 naming each field that failed.
"""

import json
import re

import orjson
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import Http404
from django.shortcuts import render
from django.urls import URLPattern, URLResolver
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.openapi.docs import DocsBase
from ninja.parser import Parser
from ninja.security import HttpBearer

from agents.selectors import api_key_authenticate
from agents.services import api_key_touch
from executions.ingest import services
from executions.lifecycle import IllegalTransition


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer rb_...`: the key's workspace becomes request.workspace."""

    def __call__(self, request):
        header = request.headers.get("Authorization", "")
        if not header:
            raise AuthenticationError(
                message="Missing API key: send 'Authorization: Bearer rb_...'."
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError(message="The Authorization header must be 'Bearer rb_...'.")
        return self.authenticate(request, token.strip())

    def authenticate(self, request, token):
        key = api_key_authenticate(raw_key=token)
        if key is None:
            raise AuthenticationError(message="Invalid or revoked API key.")
        api_key_touch(key)
        request.api_key = key
        request.workspace = key.workspace
        return key


class BodyError(ValueError):
    pass


# JSON escapes of NUL and of UTF-16 surrogates: only a body holding one needs its
# strings checked one by one.
UNSTORABLE = re.compile(rb"\\u(0000|[dD][89abAB])")


def _path(where) -> str:
    parts = []
    while where is not None:
        where, part = where
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "$" + "".join(reversed(parts))


def _check_json(value, max_depth: int, *, texts: bool) -> None:
    """Refuse what the database cannot store or the server should not walk: nesting past
    MAX_JSON_DEPTH and, when `texts`, NUL characters and lone surrogates. Paths are
    kept as (parent, key) pairs and spelt out only for the error message."""
    stack = [(value, 1, None)]
    while stack:
        item, depth, where = stack.pop()
        if depth > max_depth:
            raise BodyError(f"JSON nested deeper than {max_depth} levels at {_path(where)}")
        if isinstance(item, dict):
            children = item.items()
        elif isinstance(item, list):
            children = enumerate(item)
        else:
            continue
        for key, child in children:
            if texts and isinstance(key, str):
                _check_text(key, (where, key), "a key")
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, (where, key)))
            elif texts and isinstance(child, str):
                _check_text(child, (where, key))


def _check_text(text: str, where, what: str = "") -> None:
    if "\x00" in text:
        place = f"{_path(where)} ({what})" if what else _path(where)
        raise BodyError(f"{place} contains a NUL (\\u0000) character, which cannot be stored")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        place = f"{_path(where)} ({what})" if what else _path(where)
        raise BodyError(f"{place} contains a lone UTF-16 surrogate, which is not text") from None


class JsonParser(Parser):
    def parse_body(self, request):
        body = request.body
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            # The standard parser reads what orjson refuses (integers past 64 bits,
            # UTF-16 bodies) and words its errors the way people know them.
            try:
                data = json.loads(body)
            except UnicodeDecodeError as exc:
                raise BodyError(f"the body is not UTF-8 ({exc.reason})") from None
            except json.JSONDecodeError as exc:
                raise BodyError(f"malformed JSON: {exc}") from None
            except RecursionError:
                raise BodyError("JSON nested too deeply") from None
        suspicious = b"\\u" in body and UNSTORABLE.search(body) is not None
        if suspicious or body.count(b"[") + body.count(b"{") > settings.RUNBOARD_MAX_JSON_DEPTH:
            _check_json(data, settings.RUNBOARD_MAX_JSON_DEPTH, texts=suspicious)
        return data


class LocalSwagger(DocsBase):
    """Swagger UI from static/vendor/swagger-ui/: no CDN, no inline script (CSP)."""

    def render_page(self, request, api, **kwargs):
        return render(
            request,
            "api/docs.html",
            {
                "api": api,
                "openapi_url": self.get_openapi_url(api, kwargs),
                "swagger_settings": {
                    "url": self.get_openapi_url(api, kwargs),
                    "layout": "BaseLayout",
                    "deepLinking": True,
                    "persistAuthorization": False,
                },
            },
        )


ERROR_BODY = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
FIELD_ERRORS_BODY = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "in": {"type": "string"},
                },
            },
        },
    },
    "required": ["detail"],
}
# What the handlers below may answer for any operation, so that the document says so.
COMMON_ERRORS = {
    400: ("The body cannot be read (malformed JSON, NUL characters, too deep)", ERROR_BODY),
    401: ("Missing, malformed or revoked API key", ERROR_BODY),
    413: ("The body is larger than MAX_REQUEST_BYTES", ERROR_BODY),
    422: ("A parameter or field is invalid; `errors` names each one", FIELD_ERRORS_BODY),
}


class RunboardAPI(NinjaAPI):
    @property
    def urls(self):
        patterns, app_name, namespace = super().urls
        _public(patterns)
        return patterns, app_name, namespace

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code, (description, body) in COMMON_ERRORS.items():
                    if code in (400, 413) and "requestBody" not in operation:
                        continue
                    if code == 401 and not operation.get("security"):
                        continue
                    if code not in responses and str(code) not in responses:
                        responses[code] = {
                            "description": description,
                            "content": {"application/json": {"schema": body}},
                        }
        return schema


def _public(patterns) -> None:
    # LoginRequiredMiddleware guards every page; the API authenticates by key instead.
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _public(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            login_not_required(pattern.callback)


api = RunboardAPI(
    title="Runboard API",
    version="1",
    description=(
        "Report agent executions and their steps, and read them back. Authenticate with a "
        "workspace API key: `Authorization: Bearer rb_...` (create one on the API keys page "
        "of the dashboard). OpenTelemetry traces go to `/v1/traces` (OTLP/HTTP)."
    ),
    auth=ApiKeyAuth(),
    parser=JsonParser(),
    docs=LocalSwagger(),
    docs_decorator=login_not_required,
    urls_namespace="api",
)


# --- errors ------------------------------------------------------------------------


def _field(loc) -> tuple[str, str]:
    """("body", "payload", "steps", 0, "name") -> ("body", "steps[0].name")."""
    parts = list(loc)
    where = str(parts.pop(0)) if parts else "body"
    if where == "body" and parts and parts[0] in BODY_PARAMS:
        parts.pop(0)
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return where, path or where


BODY_PARAMS = {"payload", "data"}


def _message(text: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def validation_response(request, errors: list[dict]):
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return api.create_response(
        request, {"detail": f"Invalid request: {detail}", "errors": errors}, status=422
    )


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    errors = []
    for error in exc.errors:
        where, path = _field(error.get("loc", ()))
        errors.append(
            {"field": path, "message": _message(error.get("msg", "is invalid")), "in": where}
        )
    return validation_response(request, errors)


@api.exception_handler(services.Invalid)
def on_invalid(request, exc: services.Invalid):
    return validation_response(
        request, [{"field": f, "message": m, "in": "body"} for f, m in exc.errors]
    )


@api.exception_handler(services.IngestError)
def on_ingest_error(request, exc: services.IngestError):
    return api.create_response(request, {"detail": exc.message}, status=exc.status)


@api.exception_handler(IllegalTransition)
def on_illegal_transition(request, exc: IllegalTransition):
    return api.create_response(
        request,
        {
            "detail": str(exc),
            "current_status": str(exc.current),
            "requested_status": str(exc.target),
        },
        status=409,
    )


@api.exception_handler(AuthenticationError)
def on_unauthenticated(request, exc: AuthenticationError):
    response = api.create_response(request, {"detail": exc.message}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="runboard"'
    return response


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    message = str(exc)
    cause = exc.__cause__
    if exc.status_code == 400 and cause is not None:
        if isinstance(cause, RequestDataTooBig):
            return on_too_big(request, cause)
        message = f"Cannot parse the request body: {cause}."
    return api.create_response(request, {"detail": message}, status=exc.status_code)


@api.exception_handler(RequestDataTooBig)
def on_too_big(request, exc):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return api.create_response(
        request,
        {"detail": f"The request body is larger than the {limit}-byte limit (MAX_REQUEST_BYTES)."},
        status=413,
    )


@api.exception_handler(TooManyFieldsSent)
def on_too_many_fields(request, exc):
    return api.create_response(request, {"detail": f"Too many form fields: {exc}"}, status=400)


@api.exception_handler(Http404)
def on_not_found(request, exc: Http404):
    return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)


from executions.control.api import router as control_router  # noqa: E402
from executions.ingest.api import router as executions_router  # noqa: E402
from feedback.api import router as feedback_router  # noqa: E402

api.add_router("/", executions_router)
api.add_router("/", control_router)
api.add_router("/", feedback_router)
