"""Claims: one reviewer per seat, locks that expire and are renewed, skips, roles,
workspaces."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from agents.models import Membership, Role
from feedback.models import FieldCorrection
from feedback.queues.models import QueueItem, Review
from feedback.queues.services import (
    LockLost,
    QueueError,
    claim_next,
    item_resolve,
    items_add,
    queue_create,
    review_renew,
    review_skip,
    review_submit,
)
from tests.factories import ExecutionFactory, MembershipFactory, UserFactory


def reviewer(workspace, name):
    user = UserFactory(username=name)
    return MembershipFactory(user=user, workspace=workspace, role=Role.REVIEWER)


def test_claims_take_the_oldest_open_item_and_hold_it(queue, alice_m, bob_m, order):
    mine = claim_next(queue=queue, membership=bob_m)
    assert mine.item.execution_id == order[0]
    # Asking again gives the same claim, not a second item.
    assert claim_next(queue=queue, membership=bob_m).pk == mine.pk
    theirs = claim_next(queue=queue, membership=alice_m)
    assert theirs.item.execution_id == order[1]


def test_an_expired_claim_goes_to_the_next_reviewer(queue, alice_m, bob_m, runs):
    now = timezone.now()
    first = claim_next(queue=queue, membership=bob_m, now=now)
    later = now + queue.lock_timeout + timedelta(seconds=1)
    taken = claim_next(queue=queue, membership=alice_m, now=later)
    assert taken.item_id == first.item_id
    # bob's lapsed claim cannot be renewed or submitted now that alice holds the item.
    with pytest.raises(LockLost):
        review_renew(review=first, membership=bob_m, now=later)
    with pytest.raises(LockLost):
        review_submit(review=first, membership=bob_m, fields={}, answers={}, now=later)


def test_a_lapsed_claim_nobody_took_is_renewed_on_submit(queue, bob_m):
    now = timezone.now()
    review = claim_next(queue=queue, membership=bob_m, now=now)
    later = now + queue.lock_timeout * 3
    review_submit(review=review, membership=bob_m, fields={}, answers={}, now=later)
    review.item.refresh_from_db()
    assert review.item.state == QueueItem.State.DONE


def test_renewing_moves_the_expiry(queue, bob_m):
    now = timezone.now()
    review = claim_next(queue=queue, membership=bob_m, now=now)
    review_renew(review=review, membership=bob_m, now=now + timedelta(minutes=10))
    review.refresh_from_db()
    assert review.expires_at == now + timedelta(minutes=10) + queue.lock_timeout


def test_a_skipped_item_never_comes_back_to_the_reviewer_but_does_to_others(
    queue, alice_m, bob_m, order
):
    review = claim_next(queue=queue, membership=bob_m)
    review_skip(review=review, membership=bob_m)
    assert claim_next(queue=queue, membership=bob_m).item.execution_id == order[1]
    assert claim_next(queue=queue, membership=alice_m).item.execution_id == order[0]


def test_submitting_every_item_leaves_nothing_to_claim(queue, bob_m):
    for _ in range(3):
        review = claim_next(queue=queue, membership=bob_m)
        review_submit(review=review, membership=bob_m, fields={}, answers={})
    assert claim_next(queue=queue, membership=bob_m) is None
    assert set(QueueItem.objects.values_list("state", flat=True)) == {"done"}


def test_one_reviewers_correction_becomes_the_correction_of_record(queue, bob_m):
    review = claim_next(queue=queue, membership=bob_m)
    run = review.item.execution
    review_submit(
        review=review,
        membership=bob_m,
        fields={"/total": {"verdict": "corrected", "value": 99}, "/invoice_id": {"verdict": "ok"}},
        answers={},
    )
    (fc,) = FieldCorrection.objects.filter(execution=run)
    assert (fc.path, fc.value_after, fc.author_id) == ("/total", 99, bob_m.user_id)
    assert fc.value_before == run.output["total"]


def test_bad_verdicts_and_answers_are_refused_by_field(alice_m, bob_m, runs):
    q = queue_create(
        membership=alice_m,
        name="Asked",
        fields=["/total"],
        questions=[{"key": "tone", "label": "Tone", "kind": "choice", "choices": ["ok", "rude"]}],
    )
    items_add(queue=q, membership=alice_m, executions=[runs[0].pk])
    review = claim_next(queue=q, membership=bob_m)
    with pytest.raises(QueueError) as exc:
        review_submit(
            review=review,
            membership=bob_m,
            fields={"/nope": {"verdict": "ok"}, "/total": {"verdict": "maybe"}},
            answers={"tone": "angry"},
        )
    assert set(exc.value.errors) == {"field:/nope", "field:/total", "answer:tone"}
    review.refresh_from_db()
    assert review.submitted_at is None


def test_two_reviewers_agreeing_finish_the_item_and_disagreeing_dispute_it(alice_m, bob_m, runs):
    q = queue_create(membership=alice_m, name="Pairs", reviewers_per_item=2, fields=["/total"])
    items_add(queue=q, membership=alice_m, executions=[runs[0].pk, runs[1].pk])
    fixed = {"/total": {"verdict": "corrected", "value": 7}}
    a = claim_next(queue=q, membership=alice_m)
    b = claim_next(queue=q, membership=bob_m)
    assert a.item_id == b.item_id  # two seats on the first item
    review_submit(review=a, membership=alice_m, fields=fixed, answers={})
    review_submit(review=b, membership=bob_m, fields=fixed, answers={})
    a.item.refresh_from_db()
    assert a.item.state == QueueItem.State.DONE
    assert FieldCorrection.objects.get(execution=a.item.execution).value_after == 7

    a = claim_next(queue=q, membership=alice_m)
    b = claim_next(queue=q, membership=bob_m)
    review_submit(review=a, membership=alice_m, fields=fixed, answers={})
    review_submit(review=b, membership=bob_m, fields={"/total": {"verdict": "ok"}}, answers={})
    item = QueueItem.objects.get(pk=a.item_id)
    assert item.state == QueueItem.State.DISPUTED
    assert not FieldCorrection.objects.filter(execution=item.execution).exists()

    with pytest.raises(PermissionDenied):
        item_resolve(item=item, membership=bob_m, values={"/total": {"verdict": "ok"}})
    with pytest.raises(QueueError) as exc:
        item_resolve(item=item, membership=alice_m, values={})
    assert "field:/total" in exc.value.errors
    item_resolve(
        item=item, membership=alice_m, values={"/total": {"verdict": "corrected", "value": 8}}
    )
    item.refresh_from_db()
    assert item.state == QueueItem.State.RESOLVED
    fc = FieldCorrection.objects.get(execution=item.execution)
    assert (fc.value_after, fc.author_id) == (8, alice_m.user_id)
    # ...and per-field accuracy counts it, like any correction of record.
    from feedback.selectors import field_accuracy

    (version,) = field_accuracy(workspace=item.workspace, agent=item.execution.agent)
    assert [(f.path, f.corrected) for f in version.fields] == [("/total", 2)]


def test_a_third_reviewer_gets_no_seat_on_a_full_item(alice_m, bob_m, workspace, runs):
    q = queue_create(membership=alice_m, name="Pairs", reviewers_per_item=2)
    items_add(queue=q, membership=alice_m, executions=[runs[0].pk])
    claim_next(queue=q, membership=alice_m)
    claim_next(queue=q, membership=bob_m)
    assert claim_next(queue=q, membership=reviewer(workspace, "cy")) is None


def test_viewers_and_unassigned_reviewers_cannot_claim(queue, alice_m, viewer, workspace):
    with pytest.raises(PermissionDenied):
        claim_next(queue=queue, membership=Membership.objects.get(user=viewer))
    assigned = reviewer(workspace, "dee")
    queue.assignees.set([assigned])
    with pytest.raises(PermissionDenied):
        claim_next(queue=queue, membership=reviewer(workspace, "eve"))
    assert claim_next(queue=queue, membership=assigned) is not None
    assert claim_next(queue=queue, membership=alice_m) is not None  # admins always


def test_only_admins_create_queues_and_names_are_checked(alice_m, bob_m):
    with pytest.raises(PermissionDenied):
        queue_create(membership=bob_m, name="Mine")
    with pytest.raises(QueueError) as exc:
        queue_create(
            membership=alice_m,
            name="",
            reviewers_per_item=0,
            fields=["no-slash"],
            questions=[{"key": "k", "kind": "colour"}],
        )
    assert set(exc.value.errors) == {"name", "reviewers_per_item", "fields", "questions"}


def test_runs_of_other_workspaces_are_never_added(queue, alice_m, other_workspace, charlie):
    foreign = ExecutionFactory(
        agent_version__agent__workspace=other_workspace, agent_version__agent__name="x"
    )
    assert items_add(queue=queue, membership=alice_m, executions=[foreign.pk]) == 0
    with pytest.raises(PermissionDenied):
        claim_next(queue=queue, membership=Membership.objects.get(user=charlie))


def test_adding_a_run_twice_adds_it_once(queue, alice_m, runs):
    assert items_add(queue=queue, membership=alice_m, executions=[r.pk for r in runs]) == 0
    assert QueueItem.objects.filter(queue=queue).count() == 3


def test_claiming_costs_a_fixed_number_of_queries(queue, bob_m, django_assert_max_num_queries):
    # 7 statements (assignees, user, held claim, lock next, live count, upsert's read
    # and insert) and 6 savepoint lines; the same whatever the queue's length.
    with django_assert_max_num_queries(13):
        claim_next(queue=queue, membership=bob_m)


@pytest.mark.postgres
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: SKIP LOCKED and real concurrent writers",
)
@pytest.mark.django_db(transaction=True)
def test_twenty_reviewers_claiming_at_once_never_share_an_item(workspace, alice, agent_version):
    from django.db import connections

    alice_m = Membership.objects.get(user=alice)
    members = [reviewer(workspace, f"r{i}") for i in range(20)]
    runs = ExecutionFactory.create_batch(60, agent_version=agent_version)
    q = queue_create(membership=alice_m, name="Race")
    items_add(queue=q, membership=alice_m, executions=[r.pk for r in runs])
    start = threading.Barrier(20)
    claimed: dict[int, list[int]] = {}
    errors = []

    def work(member):
        try:
            start.wait(timeout=30)
            for _ in range(3):  # each claims, submits, claims again: 60 items in all
                review = claim_next(queue=q, membership=member)
                claimed.setdefault(member.pk, []).append(review.item_id)
                review_submit(review=review, membership=member, fields={}, answers={})
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(m,)) for m in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    items = [i for got in claimed.values() for i in got]
    assert len(items) == 60
    assert len(set(items)) == 60
    assert Review.objects.filter(item__queue=q).count() == 60
    assert set(QueueItem.objects.filter(queue=q).values_list("state", flat=True)) == {"done"}


def test_the_admin_form_checks_the_rubric(workspace):
    from feedback.queues.admin import QueueForm

    form = QueueForm(
        data={
            "workspace": workspace.pk,
            "name": "Admin-made",
            "reviewers_per_item": 1,
            "lock_seconds": 600,
            "fields": '["no-slash"]',
            "questions": '[{"key": "k", "kind": "colour"}]',
        }
    )
    assert not form.is_valid()
    assert set(form.errors) == {"fields", "questions"}
