"""The review queue API: create, add, claim, submit, skip, with the key creator's role."""

import pytest
from django.test import Client

from feedback.queues.models import Queue, QueueItem, Review
from tests.factories import ApiKeyFactory, ExecutionFactory


def api(user, workspace):
    _key, raw = ApiKeyFactory.create_with_raw(workspace=workspace, created_by=user)
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def admin_api(alice, workspace):
    return api(alice, workspace)


@pytest.fixture
def reviewer_api(bob, workspace):
    return api(bob, workspace)


def post(client, url, body=None):
    return client.post(url, body or {}, content_type="application/json")


def test_a_queue_is_created_filled_claimed_and_submitted(admin_api, reviewer_api, runs):
    created = post(
        admin_api,
        "/api/v1/queues",
        {"name": "Invoices", "fields": ["/total"], "assignees": ["bob"]},
    )
    assert created.status_code == 201, created.content
    qid = created.json()["id"]
    added = post(
        admin_api, f"/api/v1/queues/{qid}/items", {"execution_ids": [str(r.pk) for r in runs]}
    )
    assert added.json() == {"added": 3}
    claim = post(reviewer_api, f"/api/v1/queues/{qid}/claim")
    assert claim.status_code == 200
    body = claim.json()
    assert body["fields"] == ["/total"]
    done = post(
        reviewer_api,
        f"/api/v1/reviews/{body['review_id']}/submit",
        {"fields": {"/total": {"verdict": "corrected", "value": 3}}},
    )
    assert done.status_code == 200, done.content
    assert done.json()["item_state"] == "done"
    listed = reviewer_api.get("/api/v1/queues").json()
    assert [(q["name"], q["open_items"]) for q in listed] == [("Invoices", 2)]


def test_errors_name_the_field(admin_api, reviewer_api, runs):
    bad = post(
        admin_api, "/api/v1/queues", {"name": "Q", "reviewers_per_item": 50, "assignees": ["zed"]}
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"assignees"}
    bad = post(admin_api, "/api/v1/queues", {"name": "Q", "reviewers_per_item": 50})
    assert [e["field"] for e in bad.json()["errors"]] == ["reviewers_per_item"]
    qid = post(admin_api, "/api/v1/queues", {"name": "Q", "fields": ["/total"]}).json()["id"]
    post(admin_api, f"/api/v1/queues/{qid}/items", {"execution_ids": [str(runs[0].pk)]})
    rid = post(reviewer_api, f"/api/v1/queues/{qid}/claim").json()["review_id"]
    wrong = post(
        reviewer_api, f"/api/v1/reviews/{rid}/submit", {"fields": {"/x": {"verdict": "ok"}}}
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "field:/x"


def test_reviewers_cannot_create_queues_and_nothing_left_is_204(reviewer_api, admin_api):
    assert post(reviewer_api, "/api/v1/queues", {"name": "Mine"}).status_code == 403
    qid = post(admin_api, "/api/v1/queues", {"name": "Empty"}).json()["id"]
    assert post(reviewer_api, f"/api/v1/queues/{qid}/claim").status_code == 204


def test_other_workspaces_get_404(admin_api, charlie, other_workspace, runs):
    qid = post(admin_api, "/api/v1/queues", {"name": "Invoices"}).json()["id"]
    outsider = api(charlie, other_workspace)
    assert post(outsider, f"/api/v1/queues/{qid}/claim").status_code == 404
    assert post(outsider, f"/api/v1/queues/{qid}/items", {"execution_ids": []}).status_code == 404
    foreign = ExecutionFactory(agent_version__agent__workspace=other_workspace)
    added = post(admin_api, f"/api/v1/queues/{qid}/items", {"execution_ids": [str(foreign.pk)]})
    assert added.json() == {"added": 0}
    assert not QueueItem.objects.exists() and Queue.objects.count() == 1
    assert not Review.objects.exists()
