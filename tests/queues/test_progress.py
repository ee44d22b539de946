"""Progress per queue and reviewer, counted and timed in SQL (issue 20)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from feedback.queues.models import QueueItem, Review
from feedback.queues.selectors import queue_progress
from feedback.queues.services import items_add, queue_create
from tests.factories import ExecutionFactory


def _review(item, user, seconds, *, skipped=False, submitted=True):
    start = timezone.now() - timedelta(hours=1)
    return Review.objects.create(
        workspace_id=item.workspace_id,
        item=item,
        reviewer=user,
        started_at=start,
        expires_at=start + timedelta(hours=2),
        submitted_at=start + timedelta(seconds=seconds) if submitted else None,
        skipped=skipped,
    )


@pytest.fixture
def worked(alice, bob, alice_m, bob_m, agent_version):
    """bob: 10, 30 and 20 s on three items and a skip (999 s, not timed); alice: 10 and
    40 s and one claim still open (not counted); one item done, the others open."""
    q = queue_create(membership=alice_m, name="Timed", reviewers_per_item=3)
    runs = ExecutionFactory.create_batch(4, agent_version=agent_version)
    items_add(queue=q, membership=alice_m, executions=[r.pk for r in runs])
    items = list(QueueItem.objects.filter(queue=q).order_by("id"))
    q.assignees.set([alice_m, bob_m])
    for item, s in zip(items[:3], (10, 30, 20), strict=True):
        _review(item, bob, s)
    _review(items[3], bob, 999, skipped=True)
    _review(items[0], alice, 10)
    _review(items[1], alice, 40)
    _review(items[2], alice, 5, submitted=False)
    QueueItem.objects.filter(pk=items[0].pk).update(state=QueueItem.State.DONE)
    return q


def test_progress_per_reviewer_worked_by_hand(worked, django_assert_num_queries):
    with django_assert_num_queries(4):
        progress = queue_progress(queue=worked)
    assert progress.items == 4
    assert progress.by_state == {"open": 3, "done": 1, "disputed": 0, "resolved": 0}
    rows = {a.reviewer: a for a in progress.assignees}
    bob, alice = rows["bob"], rows["alice"]
    assert (bob.done, bob.skipped, bob.median_seconds) == (3, 1, pytest.approx(20, abs=0.01))
    # bob reviewed or skipped every open item; alice reviewed one of the three open.
    assert (bob.remaining, alice.remaining) == (0, 2)
    assert (alice.done, alice.skipped, alice.median_seconds) == (
        2,
        0,
        pytest.approx(25, abs=0.01),
    )


def test_an_assignee_without_reviews_is_listed_with_nothing_done(worked, operator, workspace):
    from agents.models import Membership, Role

    carol = Membership.objects.get(user=operator, workspace=workspace)
    carol.role = Role.REVIEWER
    carol.save()
    worked.assignees.add(carol)
    row = {a.reviewer: a for a in queue_progress(queue=worked).assignees}[operator.username]
    assert (row.done, row.skipped, row.remaining, row.median_seconds) == (0, 0, 3, None)


def test_the_queue_page_costs_the_same_queries_with_more_reviews(
    client, alice, worked, agent_version, django_assert_num_queries
):
    client.force_login(alice)
    url = reverse("queues:detail", args=[worked.pk])
    client.get(url)  # the session's first request caches what later ones reuse
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    extra = ExecutionFactory.create_batch(5, agent_version=agent_version)
    items_add(
        queue=worked, membership=worked.assignees.get(user=alice), executions=[e.pk for e in extra]
    )
    for item in QueueItem.objects.filter(execution__in=extra):
        _review(item, alice, 7)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert {a.reviewer: a.done for a in response.context["progress"].assignees} == {
        "alice": 7,
        "bob": 3,
    }
