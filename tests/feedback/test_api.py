"""POST/GET /api/v1/executions/{id}/feedback through the project's NinjaAPI (config/api.py)."""

import pytest

from feedback.models import ExecutionNote, FieldCorrection

from ..factories import AgentVersionFactory, ApiKeyFactory, ExecutionFactory, UserFactory

pytestmark = pytest.mark.django_db

OUTPUT = {"vendor": {"name": "ACME"}, "total": 10.5, "items": [{"sku": "a"}, {"sku": "b"}]}


@pytest.fixture
def api(client, workspace):
    """The test client holding a key of alice's workspace, as an agent runtime would."""
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    return client


@pytest.fixture
def other_api(other_workspace):
    from django.test import Client

    _, raw = ApiKeyFactory.create_with_raw(workspace=other_workspace)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def execution(agent_version):
    return ExecutionFactory(agent_version=agent_version, output=OUTPUT)


def url(execution):
    return f"/api/v1/executions/{execution.pk}/feedback"


def send(api, execution, body):
    return api.post(url(execution), body, content_type="application/json")


def test_corrections_and_a_note_are_stored_and_returned(api, execution):
    response = send(
        api,
        execution,
        {
            "corrections": [
                {"path": "/vendor/name", "value": "ACME Ltd", "base": "ACME"},
                {"path": "/items/0", "op": "remove"},
                {"path": "/items/-", "op": "add", "value": {"sku": "c"}, "comment": "missed"},
            ],
            "comment": "From the PDF",
            "note": {"rating": "down", "text": "Vendor name truncated"},
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [
        (c["path"], c["op"], c["value_before"], c["value_after"], c["comment"])
        for c in body["corrections"]
    ] == [
        ("/vendor/name", "replace", "ACME", "ACME Ltd", "From the PDF"),
        ("/items/0", "remove", {"sku": "a"}, None, "From the PDF"),
        ("/items/-", "add", None, {"sku": "c"}, "missed"),
    ]
    assert body["corrected_output"] == {
        "vendor": {"name": "ACME Ltd"},
        "total": 10.5,
        "items": [{"sku": "b"}, {"sku": "c"}],
    }
    assert [(n["rating"], n["text"]) for n in body["notes"]] == [("down", "Vendor name truncated")]
    execution.refresh_from_db()
    assert (execution.correction_count, execution.note_count) == (3, 1)

    got = api.get(url(execution)).json()
    assert got["correction_count"] == 3 and got["note_count"] == 1
    assert [c["path"] for c in got["corrections"]] == ["/vendor/name", "/items/0", "/items/-"]
    assert got["corrected_output"] == body["corrected_output"]
    assert got["skipped_corrections"] == []


def test_the_key_creator_is_the_author(client, workspace, execution):
    creator = UserFactory(username="keymaker")
    _, raw = ApiKeyFactory.create_with_raw(workspace=workspace, created_by=creator)
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    response = send(client, execution, {"corrections": [{"path": "/total", "value": 11}]})
    assert response.json()["corrections"][0]["author"] == "keymaker"
    assert FieldCorrection.objects.get().author == creator


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"corrections": [{"path": "/nope", "value": 1}]}, "corrections[0].path", "no key 'nope'"),
        (
            {"corrections": [{"path": "/items/5/sku", "value": "x"}]},
            "corrections[0].path",
            "past the end",
        ),
        ({"corrections": [{"path": "total", "value": 1}]}, "corrections[0].path", "starts with"),
        (
            {"corrections": [{"path": "/total", "value": "eleven"}]},
            "corrections[0].value",
            "Expected a number",
        ),
        ({"corrections": [{"path": "/total"}]}, "corrections[0].value", "needs a value"),
        ({}, "body", "at least one correction or one note"),
        ({"notes": [{"rating": "up"}, {"text": ""}]}, "notes[1].text", "Give a rating"),
    ],
)
def test_bad_feedback_is_a_422_naming_the_field_and_saves_nothing(
    api, execution, body, field, message
):
    response = send(api, execution, body)
    assert response.status_code == 422, response.json()
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [field]
    assert message in errors[0]["message"]
    assert FieldCorrection.objects.count() == 0 and ExecutionNote.objects.count() == 0


def test_a_bad_rating_is_a_422_from_validation(api, execution):
    response = send(api, execution, {"notes": [{"rating": "meh"}]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"].startswith("notes[0].rating")


def test_schema_violations_are_422_on_the_correction_that_caused_them(api, workspace):
    version = AgentVersionFactory(
        agent__workspace=workspace,
        version="typed",
        output_schema={"type": "object", "properties": {"total": {"type": "number"}}},
    )
    execution = ExecutionFactory(agent_version=version, output={"total": 1})
    response = send(
        api,
        execution,
        {"corrections": [{"path": "/total", "value": 2}, {"path": "/total", "value": "two"}]},
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "corrections[1].value", "message": "'two' is not of type 'number'"}
    ]


def test_a_stale_base_is_a_409_with_the_newer_value_and_who(api, execution, bob, client):
    from feedback import services
    from feedback.jsonform import Change, value_hash

    services.field_corrections_create(
        execution=execution,
        membership=bob.memberships.get(),
        changes=[Change("replace", "/total", 12, "/total", value_hash(10.5), "/total")],
    )
    response = send(
        api,
        execution,
        {
            "corrections": [
                {"path": "/vendor/name", "value": "X"},
                {"path": "/total", "value": 11, "base": 10.5},
            ]
        },
    )
    assert response.status_code == 409
    (conflict,) = response.json()["conflicts"]
    assert conflict["field"] == "corrections[1]" and conflict["current"] == 12
    assert conflict["changed_by"] == "bob" and conflict["current_exists"]
    assert "bob" in response.json()["detail"]
    assert FieldCorrection.objects.count() == 1  # bob's only


def test_a_failing_note_rolls_back_the_corrections_too(api, execution):
    response = send(
        api, execution, {"corrections": [{"path": "/total", "value": 11}], "notes": [{"text": ""}]}
    )
    assert response.status_code == 422
    assert FieldCorrection.objects.count() == 0


def test_another_workspaces_execution_is_404_and_no_key_is_401(other_api, api, execution, client):
    assert other_api.get(url(execution)).status_code == 404
    assert send(other_api, execution, {"notes": [{"rating": "up"}]}).status_code == 404
    from django.test import Client

    assert Client().get(url(execution)).status_code == 401
    assert ExecutionNote.objects.count() == 0


def test_a_revoked_key_is_401(client, workspace, execution):
    from django.utils import timezone

    key, raw = ApiKeyFactory.create_with_raw(workspace=workspace)
    key.revoked_at = timezone.now()
    key.save()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
    assert send(client, execution, {"notes": [{"rating": "up"}]}).status_code == 401


def test_the_endpoints_are_in_the_openapi_document(api):
    doc = api.get("/api/v1/openapi.json").json()
    path = doc["paths"]["/api/v1/executions/{execution_id}/feedback"]
    assert set(path) == {"get", "post"}
    assert {"201", "409", "422"} <= set(path["post"]["responses"])


def test_the_execution_get_can_return_the_corrected_output(api, execution):
    send(api, execution, {"corrections": [{"path": "/total", "value": 12}]})
    plain = api.get(f"/api/v1/executions/{execution.pk}").json()
    assert plain["output"]["total"] == 10.5 and plain["corrected_output"] is None
    body = api.get(f"/api/v1/executions/{execution.pk}?corrected=true").json()
    assert body["output"]["total"] == 10.5
    assert body["corrected_output"]["total"] == 12
