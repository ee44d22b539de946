"""API keys and workspace isolation; each kind of bad input with its status and message."""

import pytest
from django.test import Client
from django.utils import timezone

from agents.models import ApiKey
from executions.models import Execution, Status
from tests.factories import ApiKeyFactory, ExecutionFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/v1/executions/{id}"),
    ("patch", "/api/v1/executions/{id}"),
    ("post", "/api/v1/executions/{id}/steps"),
    ("get", "/api/v1/executions/{id}/steps"),
    ("get", "/api/v1/executions/{id}/wait?timeout=0"),
    ("get", "/api/v1/executions/{id}/stream"),
]


def call(client, method, path, body=None):
    if method == "get":
        return client.get(path)
    return getattr(client, method)(path, body or {}, content_type="application/json")


class TestKeys:
    def test_no_key_is_401_with_a_message(self, db):
        response = Client().get("/api/v1/executions")
        assert response.status_code == 401
        assert "Authorization: Bearer" in response.json()["detail"]
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_a_wrong_scheme_or_unknown_key_is_401(self, db):
        basic = Client(HTTP_AUTHORIZATION="Basic YWxpY2U6cHc=").get("/api/v1/executions")
        assert basic.status_code == 401
        unknown = Client(HTTP_AUTHORIZATION="Bearer rb_nope").get("/api/v1/executions")
        assert (unknown.status_code, unknown.json()["detail"]) == (
            401,
            "Invalid or revoked API key.",
        )

    def test_a_revoked_key_stops_working(self, api, workspace):
        assert api.get("/api/v1/executions").status_code == 200
        ApiKey.objects.filter(workspace=workspace).update(revoked_at=timezone.now())
        response = api.post(
            "/api/v1/executions", {"agent": "a:v1"}, content_type="application/json"
        )
        assert response.status_code == 401
        assert not Execution.objects.exists()

    def test_use_is_recorded(self, api, workspace):
        api.get("/api/v1/executions")
        assert ApiKey.objects.get(workspace=workspace).last_used_at is not None

    def test_a_session_login_is_not_an_api_key(self, alice_client):
        """The dashboard's cookie does not open the API: no CSRF-able writes."""
        response = alice_client.post(
            "/api/v1/executions", {"agent": "a:v1"}, content_type="application/json"
        )
        assert response.status_code == 401


class TestIsolation:
    @pytest.mark.parametrize(("method", "path"), ENDPOINTS)
    def test_another_workspaces_execution_is_404(self, other_api, agent_version, method, path):
        execution = ExecutionFactory(agent_version=agent_version, status=Status.RUNNING)
        response = call(other_api, method, path.format(id=execution.pk))
        assert response.status_code == 404
        assert "detail" in response.json()
        execution.refresh_from_db()
        assert execution.status == Status.RUNNING

    def test_lists_show_only_the_keys_workspace(self, api, other_api, agent_version):
        mine = ExecutionFactory(agent_version=agent_version)
        ExecutionFactory()  # another workspace's
        assert [r["id"] for r in api.get("/api/v1/executions").json()["data"]] == [str(mine.pk)]
        assert str(mine.pk) not in other_api.get("/api/v1/executions").content.decode()

    def test_a_batch_of_another_workspace_is_404(self, api, other_api):
        body = api.post(
            "/api/v1/executions",
            {"agent": "a:v1", "batch": "6f1c2b9e-0d7a-4c55-9f57-4b7f3e6f1a00"},
            content_type="application/json",
        )
        assert body.status_code == 201
        response = other_api.post(
            "/api/v1/executions",
            {"agent": "a:v1", "batch": "6f1c2b9e-0d7a-4c55-9f57-4b7f3e6f1a00"},
            content_type="application/json",
        )
        assert response.status_code == 404
        assert Execution.objects.count() == 1


class TestBadInput:
    def test_malformed_json_is_400_with_the_reason(self, api):
        response = api.post("/api/v1/executions", '{"agent": ', content_type="application/json")
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert detail.startswith("Cannot parse the request body: malformed JSON")
        assert "line 1" in detail

    def test_text_that_cannot_be_stored_is_400(self, api):
        nul = api.post(
            "/api/v1/executions",
            '{"agent": "a:v1", "input": {"x": "a\\u0000b"}}',
            content_type="application/json",
        )
        assert nul.status_code == 400
        assert "$.input.x" in nul.json()["detail"] and "NUL" in nul.json()["detail"]
        surrogate = api.post(
            "/api/v1/executions",
            '{"agent": "a:v1", "input": {"x": "\\ud800"}}',
            content_type="application/json",
        )
        assert surrogate.status_code == 400
        assert "surrogate" in surrogate.json()["detail"]

    def test_json_nested_too_deep_is_400(self, api, settings):
        settings.RUNBOARD_MAX_JSON_DEPTH = 5
        body = '{"agent": "a:v1", "input": ' + '{"a": ' * 6 + "1" + "}" * 6 + "}"
        response = api.post("/api/v1/executions", body, content_type="application/json")
        assert response.status_code == 400
        assert "deeper than 5 levels" in response.json()["detail"]

    def test_a_body_over_the_limit_is_413(self, api, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
        response = api.post(
            "/api/v1/executions",
            {"agent": "a:v1", "input": {"text": "x" * 200}},
            content_type="application/json",
        )
        assert response.status_code == 413
        assert "100-byte limit" in response.json()["detail"]

    def test_wrong_types_are_422_naming_each_field_path(self, api):
        response = api.post(
            "/api/v1/executions",
            {
                "agent": "a:v1",
                "input": "not an object",
                "priority": "urgent",
                "usage": {"prompt_tokens": "many"},
                "batch": "not-a-uuid",
                "colour": "blue",
            },
            content_type="application/json",
        )
        assert response.status_code == 422
        fields = {e["field"]: e["message"] for e in response.json()["errors"]}
        assert set(fields) == {"input", "priority", "usage.prompt_tokens", "batch", "colour"}
        assert "'low', 'normal' or 'high'" in fields["priority"]
        assert "usage.prompt_tokens" in response.json()["detail"]

    def test_a_missing_agent_is_422(self, api):
        response = api.post("/api/v1/executions", {}, content_type="application/json")
        assert response.status_code == 422
        assert "`agent` is required" in response.json()["detail"]

    def test_an_impossible_creation_status_is_422(self, api):
        response = api.post(
            "/api/v1/executions",
            {"agent": "a:v1", "status": "running", "completed_at": "2026-01-01T00:00:00Z"},
            content_type="application/json",
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "completed_at"
        assert not Execution.objects.exists()

    def test_a_bad_path_id_is_422(self, api):
        response = api.get("/api/v1/executions/not-a-uuid")
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "execution_id"

    def test_an_unknown_execution_is_404_with_a_message(self, api):
        response = api.get("/api/v1/executions/6f1c2b9e-0d7a-4c55-9f57-4b7f3e6f1a00")
        assert response.status_code == 404
        assert response.json() == {"detail": "No such execution in this workspace."}


def test_keys_of_two_workspaces_each_see_their_own(workspace, other_workspace):
    _, raw_a = ApiKeyFactory.create_with_raw(workspace=workspace)
    _, raw_b = ApiKeyFactory.create_with_raw(workspace=other_workspace)
    a = Client(HTTP_AUTHORIZATION=f"Bearer {raw_a}")
    b = Client(HTTP_AUTHORIZATION=f"Bearer {raw_b}")
    made = a.post("/api/v1/executions", {"agent": "x:v1"}, content_type="application/json")
    assert Execution.objects.get(pk=made.json()["execution_id"]).workspace == workspace
    assert b.get(f"/api/v1/executions/{made.json()['execution_id']}").status_code == 404
