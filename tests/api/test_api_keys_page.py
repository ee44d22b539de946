"""The dashboard's API keys page: admins create (the raw key shown once) and revoke."""

import pytest

from agents.models import ApiKey
from tests.executions.detail_html import parse
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


def soup(response):
    return parse(response.content)


def test_an_admin_creates_a_key_shown_only_in_that_response(alice_client, workspace, alice):
    response = alice_client.post("/workspace/api-keys/", {"name": "prod runtime"})
    assert response.status_code == 200
    raw = soup(response).one(id="apikey-raw").text
    assert raw.startswith("rb_")
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.get(workspace=workspace)
    assert (key.name, key.created_by, key.prefix) == ("prod runtime", alice, raw[:10])
    assert key.hashed_key == ApiKey.hash(raw) and raw not in key.hashed_key
    again = alice_client.get("/workspace/api-keys/")
    assert raw not in again.content.decode()
    assert soup(again).select(id="apikey-raw") == []
    table = soup(again).one("table", cls="apikey-table")
    assert [c.text for c in table.select("code")] == [f"{raw[:10]}…"]


def test_a_key_needs_a_name(alice_client):
    response = alice_client.post("/workspace/api-keys/", {"name": "  "})
    assert response.status_code == 422
    assert "Give the key a name" in soup(response).one(cls="field-error").text
    assert not ApiKey.objects.exists()


def test_an_admin_revokes_a_key(alice_client, workspace):
    key, _ = ApiKeyFactory.create_with_raw(workspace=workspace, name="old")
    response = alice_client.post(f"/workspace/api-keys/{key.pk}/revoke/", follow=True)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "Revoked “old”" in response.content.decode()
    assert len(soup(response).select("tr", cls="is-revoked")) == 1
    # Revoking twice is harmless and keeps the first time.
    first = key.revoked_at
    alice_client.post(f"/workspace/api-keys/{key.pk}/revoke/")
    key.refresh_from_db()
    assert key.revoked_at == first


def test_only_admins_see_or_change_keys(client, bob, viewer, workspace):
    key, _ = ApiKeyFactory.create_with_raw(workspace=workspace, name="keep")
    for user in (bob, viewer):
        client.force_login(user)
        listing = client.get("/workspace/api-keys/")
        assert listing.status_code == 403
        assert "Only admins" in listing.content.decode()
        assert client.post("/workspace/api-keys/", {"name": "x"}).status_code == 403
        assert client.post(f"/workspace/api-keys/{key.pk}/revoke/").status_code == 403
        # No link to the page on the agents page either.
        assert "/workspace/api-keys/" not in client.get("/agents/").content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
    assert ApiKey.objects.count() == 1


def test_another_workspaces_key_cannot_be_revoked(alice_client, other_workspace):
    theirs, _ = ApiKeyFactory.create_with_raw(workspace=other_workspace)
    assert alice_client.post(f"/workspace/api-keys/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert alice_client.get("/workspace/api-keys/").content.decode().count(theirs.prefix) == 0


def test_the_list_page_query_count(alice_client, workspace, django_assert_num_queries):
    for i in range(3):
        ApiKeyFactory.create_with_raw(workspace=workspace, name=f"k{i}")
    alice_client.get("/workspace/api-keys/")
    # session, user, membership, workspaces for the switcher, the keys (with their creators)
    with django_assert_num_queries(5) as queries:
        response = alice_client.get("/workspace/api-keys/")
    body = soup(response).one("table", cls="apikey-table").one("tbody")
    assert len(body.select("tr")) == 3
    assert sum("agents_apikey" in q["sql"] for q in queries.captured_queries) == 1


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get("/workspace/api-keys/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
