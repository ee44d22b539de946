import itertools

import pytest

from executions import lifecycle
from executions.lifecycle import ALLOWED, IllegalTransition, parse_status, transition
from executions.models import TERMINAL_STATUSES, Execution, Status

from ..factories import ExecutionFactory

# The documented lifecycle (executions/lifecycle.py's docstring and docs/), written out
# by hand: the production table must equal it, and the transition tests below run
# over these pairs, not over pairs read from the code they test.
EXPECTED = {
    "pending": {"queued", "running", "cancelled", "failed", "terminated"},
    "queued": {"running", "cancelled", "failed", "timed_out", "terminated"},
    "running": {
        "completed", "failed", "timed_out", "awaiting_approval", "cancelled", "terminated",
    },
    "awaiting_approval": {"running", "rejected", "cancelled", "timed_out", "terminated"},
    "completed": set(),
    "failed": set(),
    "timed_out": set(),
    "cancelled": set(),
    "rejected": set(),
    "terminated": set(),
}  # fmt: skip
ALLOWED_PAIRS = sorted((src, dst) for src, targets in EXPECTED.items() for dst in targets)
REFUSED_PAIRS = sorted(
    (src, dst) for src, dst in itertools.product(EXPECTED, EXPECTED) if dst not in EXPECTED[src]
)


def test_the_table_is_the_documented_lifecycle():
    assert set(EXPECTED) == set(Status.values)
    assert {str(src): {str(d) for d in dst} for src, dst in ALLOWED.items()} == EXPECTED
    assert len(ALLOWED_PAIRS) == 21 and len(REFUSED_PAIRS) == 100 - 21


def test_terminal_statuses_allow_nothing():
    assert set(TERMINAL_STATUSES) == {
        "completed", "failed", "timed_out", "cancelled", "rejected", "terminated",
    }  # fmt: skip
    for status in TERMINAL_STATUSES:
        assert ALLOWED[status] == frozenset()


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), ALLOWED_PAIRS)
def test_allowed_transition_changes_status(current, target):
    execution = ExecutionFactory(status=current, started_at=None, completed_at=None)
    transition(execution, target)
    stored = Execution.objects.get(pk=execution.pk)
    assert stored.status == target
    if target in TERMINAL_STATUSES:
        assert stored.completed_at is not None
    if target == Status.RUNNING:
        assert stored.started_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(("current", "target"), REFUSED_PAIRS)
def test_refused_transition_raises_and_changes_nothing(current, target):
    execution = ExecutionFactory(status=current)
    before = Execution.objects.filter(pk=execution.pk).values().get()
    with pytest.raises(IllegalTransition) as excinfo:
        transition(execution, target)
    assert str(execution.id) in str(excinfo.value)
    assert current in str(excinfo.value)
    assert Execution.objects.filter(pk=execution.pk).values().get() == before
    assert execution.status == current


@pytest.mark.django_db
def test_finishing_stamps_duration_from_start():
    execution = ExecutionFactory(status=Status.PENDING, started_at=None, completed_at=None)
    transition(execution, "running")
    started = execution.started_at
    transition(execution, "completed", at=started + __import__("datetime").timedelta(seconds=2))
    execution.refresh_from_db()
    assert execution.duration_ms == 2000


@pytest.mark.django_db
def test_a_stale_copy_cannot_overwrite_a_newer_status():
    execution = ExecutionFactory(status=Status.RUNNING)
    stale = Execution.objects.get(pk=execution.pk)
    transition(execution, "completed")
    with pytest.raises(IllegalTransition, match="changed to completed"):
        transition(stale, "failed")
    assert Execution.objects.get(pk=execution.pk).status == Status.COMPLETED


@pytest.mark.parametrize(
    ("spelling", "status"),
    [
        ("processing", "running"),
        ("canceled", "cancelled"),
        ("created", "pending"),
        ("RUNNING", "running"),
        ("timed_out", "timed_out"),
    ],
)
def test_aliases_from_other_systems_are_accepted(spelling, status):
    assert parse_status(spelling) == status


def test_unknown_status_names_the_valid_ones():
    with pytest.raises(lifecycle.UnknownStatus, match="expected one of: pending"):
        parse_status("exploded")
