"""Bad input that used to reach a 500 (issue 11, part 5): each is a 4xx naming the
field, with nothing written. On PostgreSQL these were errors of jsonb and text (NUL,
NaN, lone surrogates) or of a unique index (concurrent idempotent execute)."""

import json
import secrets
import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from agents.models import ApiKey, Role
from executions.models import Execution, SavedView, Step
from feedback.models import ExecutionNote
from tests.factories import (
    AgentVersionFactory,
    ApiKeyFactory,
    ExecutionFactory,
    MembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

T0 = 1_767_225_600_000_000_000


def post_raw(api, body: str, path="/api/v1/executions", content_type="application/json"):
    return api.post(path, body, content_type=content_type)


# --- JSON bodies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        ('{"agent": "d", "inputs": {"q": "\\udfff"}}', "$.inputs.q", "lone UTF-16 surrogate"),
        ('{"agent": "d", "inputs": {"\\udfff": 1}}', "$.inputs.\udfff (a key)", "surrogate"),
        ('{"agent": "d", "inputs": {"x": NaN}}', "$.inputs.x is NaN", "database can store"),
        ('{"agent": "d", "inputs": {"x": [1, Infinity]}}', "$.inputs.x[1] is Infinity", ""),
        ('{"agent": "d", "metadata": {"x": -Infinity}}', "$.metadata.x is -Infinity", ""),
        ('{"agent": "d", "inputs": {"big": 1e400}}', "$.inputs.big is 1e400", "±1.8e308"),
        ('{"agent": "d", "output": {"a": {"b": -1e400}}}', "$.output.a.b is -1e400", ""),
    ],
)
def test_unstorable_json_is_refused_naming_the_place(api, body, where, words):
    response = post_raw(api, body)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert where in detail and words in detail
    assert not Execution.objects.exists()


def test_unstorable_json_in_steps_and_feedback_is_refused(api, workspace):
    execution = ExecutionFactory(workspace=workspace, agent_version__agent__workspace=workspace)
    steps = post_raw(
        api, '{"steps": [{"name": "s", "output": NaN}]}', f"/api/v1/executions/{execution.pk}/steps"
    )
    assert steps.status_code == 400 and "$.steps[0].output is NaN" in steps.json()["detail"]
    assert not Step.objects.exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_json_sent_as_another_media_type_is_a_415(api, content_type):
    response = post_raw(api, '{"agent": "d"}', content_type=content_type)
    assert response.status_code == 415
    assert "application/json" in response.json()["detail"]
    assert not Execution.objects.exists()


def test_json_with_a_charset_or_a_json_suffix_is_read(api):
    assert (
        post_raw(api, '{"agent": "d"}', content_type="application/json; charset=utf-8").status_code
        == 201
    )
    assert (
        post_raw(api, '{"agent": "e"}', content_type="application/vnd.api+json").status_code == 201
    )


@pytest.mark.parametrize("stem", ["a" * 5000, "字" * 300, "é" * 200])
def test_an_over_long_upload_filename_answers_json(api, stem):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(stem + ".txt", b"hello", content_type="text/plain")
    response = api.post("/api/v1/files", {"file": upload})
    # 200 characters of CJK are 600 bytes, past the file system's 255 a name: it used
    # to fail writing the file, with Django's HTML error page.
    assert response.status_code == 201, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["name"].endswith(".txt") and len(body["name"]) == 200
    assert api.get(f"/api/v1/files/{body['id']}").status_code == 200


def test_unstorable_bounding_boxes_are_refused(api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("a.png", b"x", content_type="image/png")
    response = api.post("/api/v1/files", {"file": upload, "bounding_boxes": '[{"x": NaN}]'})
    assert response.status_code == 422
    assert "bounding_boxes" in response.json()["detail"]


# --- OTLP ---------------------------------------------------------------------------


def _pb_body(key: str) -> bytes:
    message = ExportTraceServiceRequest()
    span = message.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = secrets.token_bytes(16)
    span.span_id = secrets.token_bytes(8)
    span.name = "s"
    span.start_time_unix_nano = T0
    span.end_time_unix_nano = T0 + 1000
    span.attributes.append(KeyValue(key=key, value=AnyValue(string_value="v")))
    return message.SerializeToString()


def _json_body(attributes) -> str:
    span = {
        "traceId": secrets.token_hex(16),
        "spanId": secrets.token_hex(8),
        "name": "s",
        "startTimeUnixNano": str(T0),
        "endTimeUnixNano": str(T0 + 1000),
        "attributes": attributes,
    }
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})


def test_an_otlp_protobuf_key_holding_nul_is_refused(api):
    response = api.post(
        "/v1/traces", _pb_body("gen_ai.\x00x"), content_type="application/x-protobuf"
    )
    assert response.status_code == 400
    assert not Execution.objects.exists()
    ok = api.post("/v1/traces", _pb_body("gen_ai.x"), content_type="application/x-protobuf")
    assert ok.status_code == 200 and Execution.objects.count() == 1


@pytest.mark.parametrize("key", [5, None, {"a": 1}, ["k"]])
def test_an_otlp_json_attribute_with_a_non_string_key_is_refused(api, key):
    body = _json_body([{"key": key, "value": {"stringValue": "v"}}])
    response = api.post("/v1/traces", body, content_type="application/json")
    assert response.status_code == 400
    assert "key must be a string" in response.json()["message"]
    assert not Execution.objects.exists()


def test_otlp_bool_and_double_values_are_read_as_meant(api):
    from executions.ingest import otlp

    assert otlp._json_value({"boolValue": "false"}) is False
    assert otlp._json_value({"boolValue": "TRUE"}) is True
    assert otlp._json_value({"boolValue": False}) is False
    # The JSON mapping spells non-finite doubles as strings; jsonb keeps them as such.
    assert otlp._json_value({"doubleValue": "NaN"}) == "NaN"
    assert otlp._json_value({"doubleValue": "-Infinity"}) == "-Infinity"
    body = _json_body(
        [
            {"key": "flag.string", "value": {"boolValue": "false"}},
            {"key": "ratio", "value": {"doubleValue": "NaN"}},
        ]
    )
    root = json.loads(body)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    child = {**root, "spanId": secrets.token_hex(8), "parentSpanId": root["spanId"]}
    message = json.loads(body)
    message["resourceSpans"][0]["scopeSpans"][0]["spans"].append(child)
    response = api.post("/v1/traces", json.dumps(message), content_type="application/json")
    assert response.status_code == 200, response.content
    step = Step.objects.get(span_id=child["spanId"])
    assert step.attributes["flag.string"] is False
    assert step.attributes["ratio"] == "NaN"


def test_an_otlp_bool_value_that_is_not_a_boolean_is_refused(api):
    body = _json_body([{"key": "flag", "value": {"boolValue": "yes"}}])
    response = api.post("/v1/traces", body, content_type="application/json")
    assert response.status_code == 400 and "boolValue" in response.json()["message"]


def test_an_otlp_json_literal_nan_is_refused(api):
    body = _json_body([{"key": "x", "value": {"doubleValue": 1.5}}]).replace("1.5", "NaN")
    response = api.post("/v1/traces", body, content_type="application/json")
    assert response.status_code == 400 and "NaN" in response.json()["message"]
    assert not Execution.objects.exists()


# --- the dashboard's forms ------------------------------------------------------------


@pytest.fixture
def operator_client(client, workspace):
    user = UserFactory(username="olga")
    MembershipFactory(user=user, workspace=workspace, role=Role.OPERATOR)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("field", "text", "words"),
    [
        ("inputs", '{"x": NaN}', "inputs: $.x is NaN"),
        ("inputs", '{"x": 1e400}', "inputs: $.x is 1e400"),
        ("inputs", '{"x": "\\u0000"}', "inputs: $.x contains a NUL"),
        ("inputs", "[" * 5000 + "]" * 5000, "inputs: JSON nested deeper than 64 levels"),
        ("metadata", '{"k": Infinity}', "metadata: $.k is Infinity"),
        ("metadata", '{"k": "\\udfff"}', "metadata: $.k contains a lone UTF-16 surrogate"),
    ],
)
def test_the_run_form_refuses_unstorable_json(operator_client, workspace, field, text, words):
    version = AgentVersionFactory(agent__workspace=workspace)
    data = {"version": version.pk, "inputs": "{}", "priority": "normal", "metadata": ""}
    data[field] = text
    response = operator_client.post(reverse("executions:run"), data)
    assert response.status_code == 400
    assert words in " ".join(response.context["form"].errors[field])
    assert not Execution.objects.exists()


def test_a_nul_in_a_saved_view_name_is_refused(alice_client):
    url = reverse("executions:view_create")
    response = alice_client.post(url, {"name": "mine\x00", "query": "status=failed"})
    assert response.status_code == 302
    response = alice_client.post(
        url, {"name": "mine\x00", "query": "status=failed"}, HTTP_HX_REQUEST="true"
    )
    assert "Null characters are not allowed." in response.content.decode()
    assert not SavedView.objects.exists()


def test_a_nul_in_an_api_key_name_is_refused(client, workspace, alice):
    client.force_login(alice)
    before = ApiKey.objects.count()
    response = client.post(reverse("api_keys"), {"name": "ci\x00"})
    assert response.status_code == 422
    assert "Null characters are not allowed." in response.content.decode()
    assert ApiKey.objects.count() == before


def test_a_nul_in_a_note_is_refused(alice_client, workspace):
    execution = ExecutionFactory(workspace=workspace, agent_version__agent__workspace=workspace)
    response = alice_client.post(
        reverse("feedback:notes", args=[execution.pk]), {"rating": "up", "text": "good\x00"}
    )
    assert response.status_code == 422
    assert "Null characters are not allowed." in response.content.decode()
    assert not ExecutionNote.objects.exists()


def test_a_nul_in_a_workspace_slug_is_a_404(alice_client):
    response = alice_client.post(reverse("workspace_switch"), {"slug": "acme\x00"})
    assert response.status_code == 404


# --- concurrent idempotent execute ----------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="PostgreSQL only: SQLite's IMMEDIATE transactions serialise the writers",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_idempotent_executes_make_one_execution(workspace):
    AgentVersionFactory(agent__workspace=workspace, agent__name="bot", version="v1")
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    for trial in range(10):
        key = f"retry-{trial}"
        answers, barrier = [], threading.Barrier(5)

        def call(key=key, barrier=barrier, answers=answers):
            client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
            barrier.wait()
            response = client.post(
                "/api/v1/agents/bot:v1/execute",
                json.dumps({"inputs": {}, "idempotency_key": key}),
                content_type="application/json",
            )
            answers.append((response.status_code, response.json().get("execution_id")))
            connection.close()

        threads = [threading.Thread(target=call) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert {status for status, _ in answers} <= {200, 202}, answers
        assert len({execution_id for _, execution_id in answers}) == 1
        assert Execution.objects.filter(idempotency_key=key).count() == 1
