"""OpenTelemetry JS's OTLP exporter sends every body chunked (no Content-Length).
Under a WSGI server that de-chunks it (gunicorn: wsgi.input_terminated) config.wsgi
hands Django the body Django's own handler would not read."""

import io
import json

import pytest
from django.test import override_settings

from config import wsgi
from executions.models import Execution
from tests.factories import ApiKeyFactory

# A real WSGI call closes the connection at the end of the request, as a server does.
pytestmark = pytest.mark.django_db(transaction=True)

SPAN = {
    "traceId": "5b8efff798038103d269b633813fc60c",
    "spanId": "eee19b7ec3c1b174",
    "name": "ai.generateText",
    "startTimeUnixNano": "1767225600000000000",
    "endTimeUnixNano": "1767225601000000000",
}
BODY = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [SPAN]}]}]}).encode()


def post(app, key: str, body: bytes) -> tuple[str, bytes]:
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/v1/traces",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),  # as gunicorn gives it: de-chunked, no length
        "wsgi.input_terminated": True,
        "wsgi.errors": io.StringIO(),
        "CONTENT_TYPE": "application/json",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "HTTP_AUTHORIZATION": f"Bearer {key}",
        "HTTP_HOST": "testserver",
    }
    status = []
    answer = b"".join(app(environ, lambda s, headers, *exc: status.append(s)))
    return status[0], answer


@pytest.fixture
def key(workspace):
    return ApiKeyFactory.create_with_raw(workspace=workspace)[1]


def test_a_chunked_body_is_read(key, workspace):
    status, _ = post(wsgi.application, key, BODY)
    assert status.startswith("200")
    assert Execution.objects.get(workspace=workspace).trace_id == SPAN["traceId"]


def test_without_it_django_reads_no_body(key, workspace):
    status, answer = post(wsgi.django_application, key, BODY)
    assert status.startswith("400") and b"JSON" in answer


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
def test_a_chunked_body_over_the_limit_is_413(key):
    status, answer = post(wsgi.application, key, BODY)
    assert status.startswith("413") and b"limit" in answer
