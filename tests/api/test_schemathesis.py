"""Schemathesis over the OpenAPI document: generated requests for every operation, run
against the WSGI application in-process, must never meet a server error and must get
answers that the document describes."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import ApiKeyFactory


@pytest.fixture
def api_schema(db):
    # Calling the WSGI application directly sends request_started/finished, whose
    # close_old_connections would close the test's transaction on PostgreSQL; Django's
    # own test client disconnects it the same way.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def bearer(workspace):
    return {"Authorization": f"Bearer {ApiKeyFactory.create_with_raw(workspace=workspace)[1]}"}


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_never_fails_on_generated_requests(case, bearer):
    case.call_and_validate(
        headers=bearer,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


def test_the_document_is_served_with_every_operation(client):
    document = client.get("/api/v1/openapi.json").json()
    paths = document["paths"]
    assert set(paths) >= {
        "/api/v1/executions",
        "/api/v1/executions/{execution_id}",
        "/api/v1/executions/{execution_id}/steps",
        "/api/v1/executions/{execution_id}/wait",
        "/api/v1/executions/{execution_id}/stream",
        "/api/v1/files",
        "/api/v1/executions/{execution_id}/artifacts/{object_id}",
    }
    assert document["components"]["securitySchemes"]["ApiKeyAuth"]["scheme"] == "bearer"


def test_the_docs_page_needs_no_cdn(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert "<script>" not in html  # every script is a file (the CSP allows no inline one)
    assert "Content-Security-Policy" in response.headers
