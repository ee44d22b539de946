"""config/errors.py on both databases: an OperationalError anywhere (here from the API
key lookup, or the session read in middleware) answers 503 with Retry-After in the
caller's format; any other error stays a 500. The real outage is tests/api/test_outage.py."""

import json

import pytest
from django.db import OperationalError
from django.test import Client
from google.rpc.status_pb2 import Status as RpcStatus

pytestmark = pytest.mark.django_db


def refuse(*args, **kwargs):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


@pytest.fixture
def away(monkeypatch):
    monkeypatch.setattr("config.api.api_key_authenticate", refuse)
    monkeypatch.setattr("executions.ingest.otlp.api_key_authenticate", refuse)
    return Client(raise_request_exception=False, HTTP_AUTHORIZATION="Bearer rb_x")


def test_the_api_answers_503_json(away):
    response = away.get("/api/v1/executions")
    assert response.status_code == 503 and response["Retry-After"] == "2"
    assert "database cannot be reached" in response.json()["detail"]


def test_otlp_answers_503_as_a_status_in_the_senders_encoding(away):
    response = away.post("/v1/traces", b"", content_type="application/x-protobuf")
    assert response.status_code == 503 and response["Retry-After"] == "2"
    assert RpcStatus.FromString(response.content).code == 14
    response = away.post("/v1/traces", "{}", content_type="application/json")
    assert response.status_code == 503 and json.loads(response.content)["code"] == 14


def test_pages_answer_503_when_the_session_cannot_be_read(monkeypatch, client):
    monkeypatch.setattr("django.contrib.sessions.backends.db.SessionStore.load", refuse)
    browser = Client(raise_request_exception=False)
    browser.cookies["sessionid"] = "a" * 32
    response = browser.get("/executions/")
    assert response.status_code == 503 and b"unavailable" in response.content


def test_other_errors_stay_a_500(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("config.api.api_key_authenticate", broken)
    response = Client(raise_request_exception=False, HTTP_AUTHORIZATION="Bearer rb_x").get(
        "/api/v1/executions"
    )
    assert response.status_code == 500 and "Retry-After" not in response
