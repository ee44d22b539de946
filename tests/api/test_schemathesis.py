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


def test_stream_frames_match_the_event_schema_in_the_document(client, workspace, settings):
    """The stream's 200 is text/event-stream, which schemathesis cannot read: its
    frames are checked against the document's `x-item-schema` here, every event kind."""
    import json

    import jsonschema

    from executions import lifecycle
    from executions.models import Status, StepKind, StepStatus
    from tests.factories import ExecutionFactory, StepFactory

    settings.RUNBOARD_API_POLL_SECONDS = 0.01
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/executions/{execution_id}/stream"]["get"]
    media = operation["responses"]["200"]["content"]["text/event-stream"]
    validator = jsonschema.Draft202012Validator(media["x-item-schema"])
    key = ApiKeyFactory.create_with_raw(workspace=workspace)[1]
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {key}"

    def frames_of(execution, end_as) -> list[tuple[str, dict]]:
        response = client.get(f"/api/v1/executions/{execution.pk}/stream")
        content = iter(response.streaming_content)
        chunks = [next(content).decode()]
        lifecycle.transition(execution, end_as, error="boom" if end_as == Status.FAILED else None)
        chunks.extend(chunk.decode() for chunk in content)
        out = []
        for block in "".join(chunks).split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
            if "event" in fields:
                out.append((fields["event"], json.loads(fields["data"])))
        return out

    running = ExecutionFactory(
        workspace=workspace, agent_version__agent__workspace=workspace, status=Status.RUNNING
    )
    StepFactory(execution=running, kind=StepKind.THOUGHT, output="plan")
    StepFactory(
        execution=running, kind=StepKind.TOOL_CALL, name="t", output={"a": 1},
        status=StepStatus.FAILED, error="tool broke",
    )  # fmt: skip
    StepFactory(execution=running, kind=StepKind.TOOL_CALL, name="r", status=StepStatus.RUNNING)
    StepFactory(execution=running, kind=StepKind.MODEL_CALL, model="m", output="answer")
    failing = ExecutionFactory(
        workspace=workspace, agent_version__agent__workspace=workspace, status=Status.RUNNING
    )
    seen = frames_of(running, Status.COMPLETED) + frames_of(failing, Status.FAILED)
    assert {event for event, _ in seen} == {
        "thinking", "tool_start", "tool_end", "content", "done", "error"
    }  # fmt: skip
    for event, data in seen:
        assert data["type"] == event
        assert not list(validator.iter_errors(data)), (event, data)
    # The schema is strict enough to fail: a frame with a stray field is refused.
    assert list(validator.iter_errors({"type": "thinking", "content": "x", "step": 1, "x": 1}))
