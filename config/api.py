"""The JSON API (/api/v1/): one NinjaAPI, authenticated by workspace API keys.

Every error answers JSON with a `detail` that says what was wrong: 400 for a body
that cannot be read (with the parser's reason), 401 for a missing or revoked key,
404 for an id that is not in the key's workspace, 409 for an illegal status change,
413 for a body over MAX_REQUEST_BYTES, 422 naming each field that failed.
"""

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.db import InterfaceError, OperationalError
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
from config import errors
from executions import json_input
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


class UnsupportedMediaType(ValueError):
    pass


def _is_json(content_type: str) -> bool:
    # No Content-Type at all is read as JSON (minimal clients); anything else must say so.
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind in {"", "application/json"} or kind.endswith("+json")


class JsonParser(Parser):
    def parse_body(self, request):
        if not _is_json(request.content_type or ""):
            # A form post or text/plain that happens to hold JSON would otherwise be read
            # as JSON: a cross-site form could then call the API with a leaked key.
            raise UnsupportedMediaType(
                f"send the body as application/json, not {request.content_type}"
            )
        try:
            return json_input.loads(request.body)
        except json_input.JsonInputError as exc:
            raise BodyError(str(exc)) from None


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
    415: ("The body is not application/json", ERROR_BODY),
    422: ("A parameter or field is invalid; `errors` names each one", FIELD_ERRORS_BODY),
    503: ("The database cannot be reached for a moment: retry after Retry-After", ERROR_BODY),
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
                    if code in (400, 413, 415) and "requestBody" not in operation:
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
        if isinstance(cause, UnsupportedMediaType):
            return api.create_response(
                request, {"detail": f"Unsupported media type: {cause}."}, status=415
            )
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


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def on_database_unavailable(request, exc):
    # Also under DEBUG, where ninja would answer a traceback: exporters and runtimes
    # retry a 503 with Retry-After, and lose data on a 500.
    return errors.unavailable_response(request)


@api.exception_handler(Http404)
def on_not_found(request, exc: Http404):
    return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)


from executions.automation.api import router as rules_router  # noqa: E402
from executions.control.api import router as control_router  # noqa: E402
from executions.ingest.api import router as executions_router  # noqa: E402
from executions.tags.api import router as tags_router  # noqa: E402
from feedback.api import router as feedback_router  # noqa: E402
from feedback.queues.api import router as queues_router  # noqa: E402

api.add_router("/", executions_router)
api.add_router("/", control_router)
api.add_router("/", feedback_router)
api.add_router("/", queues_router)
api.add_router("/", tags_router)
api.add_router("/", rules_router)
