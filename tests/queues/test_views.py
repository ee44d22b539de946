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
from tests.feedback.browserform import edit, form_fields, to_post


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


def review_form(response) -> list[list[str]]:
    """What a browser without JavaScript submits from the review page's one form."""
    html = response.content.decode()
    start = html.index('id="review-form"')
    return form_fields(html[start : html.index("</form>", start)])


def submit(client, response, *, set_=None, extra=None, action="next"):
    fields = review_form(response)
    for ptr, text in (set_ or {}).items():
        fields = edit(fields, ptr, text)
    fields = [[n, v] for n, v in fields if n not in (extra or {})]
    fields += [[k, v] for k, v in (extra or {}).items()] + [["action", action]]
    return client.post(response.wsgi_request.path, to_post(fields))


def test_a_reviewer_works_through_the_queue_without_javascript(bob_client, bob, queue, order):
    response = bob_client.post(reverse("queues:start", args=[queue.pk]))
    first = Review.objects.get(reviewer=bob)
    assert response.status_code == 302
    assert response["Location"] == reverse("queues:review", args=[first.pk])
    page = bob_client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    # The run's Form tab (the feedback app's JSON form) inside the review's one form.
    assert 'name="v-0"' in html and "Submit and next" in html and 'data-tab="form"' in html
    assert [r["ptr"] for r in page.context["rows"]] == ["/invoice_id", "/total"]
    assert all(r["in_form"] for r in page.context["rows"])

    # Editing the total in the Form, with its verdict left at "Correct", corrects it:
    # an ordinary correction of the run.
    run = first.item.execution
    response = submit(bob_client, page, set_={"/total": "42"})
    second = Review.objects.exclude(pk=first.pk).get(reviewer=bob)
    assert response["Location"] == reverse("queues:review", args=[second.pk])
    fc = FieldCorrection.objects.get(execution=run)
    assert (fc.path, fc.value_after, fc.author) == ("/total", 42, bob)
    first.refresh_from_db()
    assert first.fields == {
        "/invoice_id": {"verdict": "ok"},
        "/total": {"verdict": "corrected", "value": 42},
    }
    assert second.item.execution_id == order[1]

    response = bob_client.post(response["Location"], {"action": "skip"})
    third = Review.objects.get(reviewer=bob, submitted_at__isnull=True)
    assert third.item.execution_id == order[2]
    # Nothing changed and nothing marked: a review all the same.
    response = submit(bob_client, bob_client.get(response["Location"]))
    assert response["Location"] == reverse("queues:mine")
    follow = bob_client.get(response["Location"])
    assert "Nothing left for you in Invoices." in follow.content.decode()
    states = dict(QueueItem.objects.values_list("execution_id", "state"))
    assert states == {order[0]: "done", order[1]: "open", order[2]: "done"}
    assert FieldCorrection.objects.count() == 1


def test_a_form_save_counts_in_accuracy_and_shows_as_the_record(
    bob_client, bob, queue, agent_version
):
    from feedback.selectors import field_accuracy

    bob_client.post(reverse("queues:start", args=[queue.pk]))
    review = Review.objects.get(reviewer=bob)
    page = bob_client.get(reverse("queues:review", args=[review.pk]))
    submit(bob_client, page, set_={"/invoice_id": "INV-X"})
    (version,) = field_accuracy(workspace=agent_version.agent.workspace, agent=agent_version.agent)
    assert {f.path: f.corrected for f in version.fields} == {"/invoice_id": 1}
    # The next item's page shows a correction of record on the Form's field.
    mine = Review.objects.filter(reviewer=bob, submitted_at__isnull=True).get()
    FieldCorrection.objects.update(execution=mine.item.execution)
    page = bob_client.get(reverse("queues:review", args=[mine.pk]))
    assert "Corrected by bob" in str(page.context["form_html"])
    assert page.context["rows"][0]["record"] == "INV-X"


def test_needs_fix_without_a_change_is_refused_naming_the_field(bob_client, queue):
    bob_client.post(reverse("queues:start", args=[queue.pk]))
    review = Review.objects.get()
    page = bob_client.get(reverse("queues:review", args=[review.pk]))
    response = submit(bob_client, page, extra={"v-1": "corrected"})
    assert response.status_code == 400
    (row,) = [r for r in response.context["rows"] if r["error"]]
    assert row["ptr"] == "/total" and "change its value in the Form" in row["error"]
    # Shown on the Form's field too, where the value is changed.
    assert "change its value in the Form" in str(response.context["form_html"])
    review.refresh_from_db()
    assert review.submitted_at is None


def test_a_bad_value_in_the_form_is_refused_and_kept(bob_client, queue):
    bob_client.post(reverse("queues:start", args=[queue.pk]))
    review = Review.objects.get()
    page = bob_client.get(reverse("queues:review", args=[review.pk]))
    response = submit(bob_client, page, set_={"/total": "forty-two"})
    assert response.status_code == 400
    assert "fix the fields marked in the Form" in response.context["general_error"]
    assert 'value="forty-two"' in str(response.context["form_html"])  # kept for fixing
    review.refresh_from_db()
    assert review.submitted_at is None and not FieldCorrection.objects.exists()


def test_with_two_reviewers_form_changes_wait_for_agreement(client, alice, bob, alice_m, runs):
    q = queue_create(membership=alice_m, name="Pairs", reviewers_per_item=2, fields=["/total"])
    items_add(queue=q, membership=alice_m, executions=[runs[1].pk])
    for user in (alice, bob):
        client.force_login(user)
        client.post(reverse("queues:start", args=[q.pk]))
        review = Review.objects.get(reviewer=user)
        page = client.get(reverse("queues:review", args=[review.pk]))
        # The other reviewer's answer is not shown: the form holds the agent's value.
        assert 'value="1"' in str(page.context["form_html"])
        if user == alice:
            refused = submit(client, page, set_={"/invoice_id": "INV-Z"})
            assert refused.status_code == 400
            assert "only the rubric&#x27;s fields" in str(refused.context["form_html"])
        submit(client, page, set_={"/total": "9"}, action="done")
        if user == alice:
            assert not FieldCorrection.objects.exists()  # held until both are in
    item = QueueItem.objects.get(queue=q)
    assert item.state == "done"
    assert FieldCorrection.objects.get(execution=runs[1]).value_after == 9


def test_reviews_that_change_nothing_are_done_and_agree(client, alice, bob, alice_m, runs):
    q = queue_create(membership=alice_m, name="Pairs", reviewers_per_item=2)
    items_add(queue=q, membership=alice_m, executions=[runs[2].pk])
    for user in (alice, bob):
        client.force_login(user)
        client.post(reverse("queues:start", args=[q.pk]))
        review = Review.objects.get(reviewer=user)
        page = client.get(reverse("queues:review", args=[review.pk]))
        assert submit(client, page).status_code == 302
    item = QueueItem.objects.get(queue=q)
    assert (item.state, item.reviews_done) == ("done", 2)
    page = client.get(reverse("queues:detail", args=[q.pk]))
    ag = page.context["agreement"]
    # Both left both fields unchanged: the item agrees, and so does every check.
    assert (ag.items_compared, ag.items_agreeing, ag.overall.units, ag.overall.raw) == (
        1,
        1,
        2,
        1.0,
    )
    done = {a.reviewer: a.done for a in page.context["progress"].assignees}
    assert done == {"alice": 1, "bob": 1}
    assert not FieldCorrection.objects.exists()


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


def test_admins_create_a_queue_from_the_dashboard(client, alice, bob, viewer, agent_version):
    agent_version.output_schema = {
        "type": "object",
        "properties": {
            "total": {"type": "number"},
            "buyer": {"type": "object", "properties": {"name": {"type": "string"}}},
            "lines": {"type": "array", "items": {"type": "object"}},
        },
    }
    agent_version.save()
    client.force_login(alice)
    assert reverse("queues:new") in client.get(reverse("queues:mine")).content.decode()
    page = client.get(reverse("queues:new"))
    assert page.status_code == 200
    # The rubric's fields are offered from the version's output schema.
    (group,) = page.context["offered"]
    assert sorted(group.fields) == ["/buyer/name", "/lines", "/total"]
    bob_m = Membership.objects.get(user=bob)
    response = client.post(
        reverse("queues:new"),
        {
            "name": "Totals",
            "reviewers_per_item": "2",
            "lock_seconds": "600",
            "field": ["/total", "/buyer/name"],
            "fields_other": "/invoice_id\n",
            "qn-count": "3",
            "qn-0-label": "Tone",
            "qn-0-kind": "choice",
            "qn-0-choices": "fine, rude",
            "qn-0-required": "on",
            "qn-1-label": "Minutes spent",
            "qn-1-key": "minutes",
            "qn-1-kind": "number",
            "qn-2-label": "",
            "assignees": [bob_m.pk],
        },
    )
    assert response.status_code == 302
    q = Queue.objects.get(name="Totals")
    assert (q.reviewers_per_item, q.lock_seconds) == (2, 600)
    assert q.fields == ["/total", "/buyer/name", "/invoice_id"]
    assert q.questions == [
        {
            "key": "tone",
            "label": "Tone",
            "kind": "choice",
            "choices": ["fine", "rude"],
            "required": True,
        },
        {"key": "minutes", "label": "Minutes spent", "kind": "number"},
    ]
    assert list(q.assignees.all()) == [bob_m]


def test_queue_form_errors_name_the_field(client, alice, viewer, queue):
    client.force_login(alice)
    url = reverse("queues:new")
    bad = client.post(url, {"name": "", "reviewers_per_item": "0", "lock_seconds": "5"})
    assert bad.status_code == 400
    assert {"name", "reviewers_per_item", "lock_seconds"} <= set(bad.context["errors"])
    bad = client.post(url, {"name": "Invoices", "fields_other": "total"})
    assert "exists" in bad.context["errors"]["name"]
    assert "total" in bad.context["errors"]["fields"]
    bad = client.post(
        url,
        {
            "name": "Q",
            "qn-count": "2",
            "qn-0-label": "Tone",
            "qn-0-kind": "choice",
            "qn-1-label": "Tone",
            "qn-1-kind": "weird",
            "lock_seconds": "5",
        },
    )
    assert bad.status_code == 400
    assert "choices" in bad.context["errors"]["question-0"]
    assert "kind" in bad.context["errors"]["question-1"]
    assert "used twice" in bad.context["errors"]["question-1"]
    # The other fields are checked in the same save.
    assert "lock_seconds" in bad.context["errors"]
    assert "Question 2: " in bad.content.decode()
    assert 'value="Tone"' in bad.content.decode()  # kept for fixing
    assert not Queue.objects.filter(name="Q").exists()
    client.force_login(viewer)
    assert reverse("queues:new") not in client.get(reverse("queues:mine")).content.decode()
    assert client.get(url).status_code == 403
    assert client.post(url, {"name": "Z"}).status_code == 403
    assert client.get(reverse("queues:edit", args=[queue.pk])).status_code == 403


def test_admins_edit_a_queue(client, alice, bob, queue, charlie, other_workspace):
    client.force_login(alice)
    url = reverse("queues:edit", args=[queue.pk])
    assert url in client.get(reverse("queues:detail", args=[queue.pk])).content.decode()
    page = client.get(url)
    assert page.context["form"]["name"] == "Invoices"
    assert page.context["fields_other"] == "/invoice_id\n/total"
    assert len(page.context["question_rows"]) == 2  # no questions yet: two blank rows
    bob_m = Membership.objects.get(user=bob)
    response = client.post(
        url,
        {
            "name": "Invoices (May)",
            "instructions": "Check the PDF.",
            "reviewers_per_item": "3",
            "lock_seconds": "900",
            "fields_other": "/total",
            "qn-count": "1",
            "qn-0-label": "Notes",
            "assignees": [bob_m.pk],
        },
    )
    assert response.status_code == 302
    queue.refresh_from_db()
    assert (queue.name, queue.reviewers_per_item, queue.lock_seconds, queue.fields) == (
        "Invoices (May)",
        3,
        900,
        ["/total"],
    )
    assert queue.questions == [{"key": "notes", "label": "Notes", "kind": "text"}]
    assert list(queue.assignees.all()) == [bob_m]
    # The page shows the queue's questions and two blank rows.
    assert len(client.get(url).context["question_rows"]) == 3
    client.force_login(charlie)
    assert client.get(url).status_code == 404
