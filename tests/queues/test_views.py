"""The review pages, driven as a browser without JavaScript would: links, plain form
posts and redirects."""

import json

import pytest
from django.urls import reverse

from agents.models import Membership
from feedback.models import FieldCorrection
from feedback.queues.models import Queue, QueueItem, Review
from feedback.queues.services import claim_next, items_add, queue_create, review_submit
from tests.factories import ExecutionFactory


@pytest.fixture
def bob_client(client, bob):
    client.force_login(bob)
    return client


def test_my_reviews_lists_what_waits_for_me(bob_client, queue, charlie, other_workspace):
    queue_create(membership=Membership.objects.get(user=charlie), name="Charlie's queue")
    response = bob_client.get(reverse("queues:mine"))
    assert response.status_code == 200
    (q,) = response.context["queues"]
    assert (q.name, q.waiting, q.open_items) == ("Invoices", 3, 3)
    assert "Charlie&#x27;s queue" not in response.content.decode()


def test_my_reviews_costs_a_fixed_number_of_queries(
    bob_client, queue, alice_m, django_assert_max_num_queries
):
    queue_create(membership=alice_m, name="Second")
    with django_assert_max_num_queries(12):
        bob_client.get(reverse("queues:mine"))


def test_a_reviewer_works_through_the_queue_without_javascript(bob_client, bob, queue, order):
    response = bob_client.post(reverse("queues:start", args=[queue.pk]))
    first = Review.objects.get(reviewer=bob)
    assert response.status_code == 302
    assert response["Location"] == reverse("queues:review", args=[first.pk])
    page = bob_client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="v-0"' in html and 'name="x-1"' in html and "Submit and next" in html
    assert [r["ptr"] for r in page.context["rows"]] == ["/invoice_id", "/total"]

    # Editing the total without pressing its "Corrected to" button still corrects it.
    run = first.item.execution
    response = bob_client.post(
        response["Location"],
        {"v-0": "ok", "x-0": run.output["invoice_id"], "v-1": "ok", "x-1": "42", "action": "next"},
    )
    second = Review.objects.exclude(pk=first.pk).get(reviewer=bob)
    assert response["Location"] == reverse("queues:review", args=[second.pk])
    assert FieldCorrection.objects.get(execution=run).value_after == 42
    assert second.item.execution_id == order[1]

    response = bob_client.post(response["Location"], {"action": "skip"})
    third = Review.objects.get(reviewer=bob, submitted_at__isnull=True)
    assert third.item.execution_id == order[2]
    response = bob_client.post(
        reverse("queues:review", args=[third.pk]), {"v-0": "ok", "v-1": "ok", "action": "next"}
    )
    assert response["Location"] == reverse("queues:mine")
    follow = bob_client.get(response["Location"])
    assert "Nothing left for you in Invoices." in follow.content.decode()
    states = dict(QueueItem.objects.values_list("execution_id", "state"))
    assert states == {order[0]: "done", order[1]: "open", order[2]: "done"}


def test_a_bad_corrected_value_is_refused_naming_the_field(bob_client, queue):
    bob_client.post(reverse("queues:start", args=[queue.pk]))
    review = Review.objects.get()
    response = bob_client.post(
        reverse("queues:review", args=[review.pk]),
        {"v-0": "ok", "v-1": "corrected", "x-1": "forty-two", "action": "next"},
    )
    assert response.status_code == 400
    (row,) = [r for r in response.context["rows"] if r["error"]]
    assert row["ptr"] == "/total" and "JSON value" in row["error"]
    assert response.context["rows"][1]["corrected"] == "forty-two"  # kept for fixing
    review.refresh_from_db()
    assert review.submitted_at is None


def test_other_workspaces_and_other_reviewers_get_404(client, charlie, bob, queue, alice_m):
    review = claim_next(queue=queue, membership=Membership.objects.get(user=bob))
    client.force_login(charlie)
    assert client.get(reverse("queues:detail", args=[queue.pk])).status_code == 404
    assert client.post(reverse("queues:start", args=[queue.pk])).status_code == 404
    assert client.get(reverse("queues:review", args=[review.pk])).status_code == 404
    assert client.get(reverse("queues:resolve", args=[review.item_id])).status_code == 404
    client.force_login(alice_m.user)  # same workspace, not her claim
    assert client.get(reverse("queues:review", args=[review.pk])).status_code == 404


def test_viewers_cannot_start(client, viewer, queue):
    client.force_login(viewer)
    response = client.post(reverse("queues:start", args=[queue.pk]))
    assert response.status_code == 403
    assert "reviewers and admins" in response.content.decode()


def test_renewal_answers_json(bob_client, queue):
    bob_client.post(reverse("queues:start", args=[queue.pk]))
    review = Review.objects.get()
    response = bob_client.post(reverse("queues:renew", args=[review.pk]))
    assert response.status_code == 200
    assert "expires_at" in response.json()


def test_queue_page_shows_progress_agreement_and_resolution_makes_the_correction(
    client, alice, alice_m, bob_m, runs
):
    q = queue_create(membership=alice_m, name="Pairs", reviewers_per_item=2, fields=["/total"])
    items_add(queue=q, membership=alice_m, executions=[runs[0].pk])
    a = claim_next(queue=q, membership=alice_m)
    b = claim_next(queue=q, membership=bob_m)
    review_submit(
        review=a,
        membership=alice_m,
        fields={"/total": {"verdict": "corrected", "value": 5}},
        answers={},
    )
    review_submit(review=b, membership=bob_m, fields={"/total": {"verdict": "ok"}}, answers={})
    client.force_login(alice)
    page = client.get(reverse("queues:detail", args=[q.pk]))
    assert page.status_code == 200
    ag = page.context["agreement"]
    assert (ag.items_compared, ag.items_agreeing, ag.overall.raw) == (1, 0, 0.0)
    assert [p.reviewer for p in page.context["progress"].assignees] == ["alice", "bob"]
    assert [i.pk for i in page.context["disputed"]] == [a.item_id]

    resolve = reverse("queues:resolve", args=[a.item_id])
    form = client.get(resolve)
    picks = [o["value"] for o in form.context["rows"][0]["options"]]
    response = client.post(resolve, {"pick-0": picks[0]})  # alice's 5
    assert response.status_code == 302
    fc = FieldCorrection.objects.get(execution=a.item.execution)
    assert fc.value_after == 5
    assert QueueItem.objects.get(pk=a.item_id).state == "resolved"


def test_export_is_one_json_line_per_reviewed_item(client, alice, alice_m, queue, bob_m):
    review = claim_next(queue=queue, membership=bob_m)
    review_submit(review=review, membership=bob_m, fields={}, answers={})
    client.force_login(alice)
    response = client.get(reverse("queues:export", args=[queue.pk]))
    assert response["Content-Type"] == "application/x-ndjson"
    lines = b"".join(response.streaming_content).decode().splitlines()
    (row,) = [json.loads(line) for line in lines]
    assert row["execution_id"] == str(review.item.execution_id)
    assert row["reviews"][0]["reviewer"] == "bob"


def test_add_ticked_rows_to_a_queue_from_the_table(client, operator, queue, agent_version):
    extra = ExecutionFactory.create_batch(2, agent_version=agent_version)
    client.force_login(operator)
    ids = [str(e.pk) for e in extra]
    page = client.get(reverse("queues:add"), {"ids": ids})
    assert page.status_code == 200 and page.context["count"] == 2
    response = client.post(reverse("queues:add"), {"ids": ids, "queue": queue.pk})
    assert response.status_code == 302
    assert QueueItem.objects.filter(queue=queue).count() == 5


def test_add_every_run_the_filters_match(client, operator, queue, agent_version):
    failed = ExecutionFactory.create_batch(2, agent_version=agent_version, status="failed")
    client.force_login(operator)
    page = client.get(reverse("queues:add"), {"all": "1", "status": "failed", "sort": "-created"})
    assert page.context["count"] == 2
    client.post(reverse("queues:add"), {"all": "1", "status": "failed", "queue": queue.pk})
    in_queue = set(QueueItem.objects.filter(queue=queue).values_list("execution_id", flat=True))
    assert {e.pk for e in failed} <= in_queue and len(in_queue) == 5


def test_adding_answers_bad_input_naming_the_field(client, operator, queue, viewer):
    client.force_login(operator)
    response = client.get(reverse("queues:add"), {"ids": ["nope"]})
    assert response.status_code == 400 and "ids" in response.context["errors"]
    response = client.get(reverse("queues:add"), {"all": "1", "status": "exploded"})
    assert response.status_code == 400 and "status" in response.context["errors"]
    response = client.post(reverse("queues:add"), {"all": "1", "queue": "999"})
    assert response.status_code == 400 and "queue" in response.context["errors"]
    client.force_login(viewer)
    response = client.post(reverse("queues:add"), {"all": "1", "queue": queue.pk})
    assert response.status_code == 403


def test_the_table_offers_add_to_queue(client, operator, queue):
    client.force_login(operator)
    html = client.get(reverse("executions:list"), {"status": "failed"}).content.decode()
    assert reverse("queues:add") in html and 'id="add-all-to-queue"' in html
    assert "status=failed" in html.split('id="add-all-to-queue"')[0].rsplit("href=", 1)[1]


def test_admins_create_a_queue_from_the_dashboard(client, alice, bob, viewer):
    client.force_login(alice)
    assert reverse("queues:new") in client.get(reverse("queues:mine")).content.decode()
    assert client.get(reverse("queues:new")).status_code == 200
    bob_m = Membership.objects.get(user=bob)
    response = client.post(
        reverse("queues:new"),
        {
            "name": "Totals",
            "reviewers_per_item": "2",
            "fields": "/total\n/invoice_id\n",
            "questions": '[{"key": "tone", "kind": "text"}]',
            "assignees": [bob_m.pk],
        },
    )
    assert response.status_code == 302
    q = Queue.objects.get(name="Totals")
    assert (q.reviewers_per_item, q.fields) == (2, ["/total", "/invoice_id"])
    assert list(q.assignees.all()) == [bob_m]
    bad = client.post(reverse("queues:new"), {"name": "", "questions": "[oops"})
    assert bad.status_code == 400 and "questions" in bad.context["errors"]
    bad = client.post(reverse("queues:new"), {"name": "", "reviewers_per_item": "0"})
    assert {"name", "reviewers_per_item"} <= set(bad.context["errors"])
    client.force_login(viewer)
    assert reverse("queues:new") not in client.get(reverse("queues:mine")).content.decode()
    assert client.get(reverse("queues:new")).status_code == 403
