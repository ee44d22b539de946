"""Corrections, undo and notes through the service layer."""

import pytest
from django.core.exceptions import PermissionDenied

from agents.models import Membership
from executions.models import Execution
from feedback import selectors, services
from feedback.jsonform import ABSENT, Change, value_hash
from feedback.models import ExecutionNote, FieldCorrection

from ..factories import AgentVersionFactory, ExecutionFactory, FieldCorrectionFactory

pytestmark = pytest.mark.django_db

OUTPUT = {
    "vendor": {"name": "ACME", "city": "Leeds"},
    "total": 10.5,
    "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}, {"sku": "c", "qty": 3}],
}


def member(user):
    return Membership.objects.get(user=user)


def replace(path, value, before):
    return Change("replace", path, value, path, value_hash(before), path)


@pytest.fixture
def execution(agent_version):
    return ExecutionFactory(agent_version=agent_version, output=OUTPUT)


def corrected(execution):
    return selectors.execution_corrected(workspace=execution.workspace, execution=execution).output


def test_each_change_is_one_correction_with_before_after_author_and_comment(execution, bob):
    rows = services.field_corrections_create(
        execution=execution,
        membership=member(bob),
        changes=[replace("/vendor/name", "ACME Ltd", "ACME"), replace("/items/1/qty", 5, 2)],
        comment="Checked the PDF",
    )
    assert [(r.path, r.op, r.value_before, r.value_after) for r in rows] == [
        ("/vendor/name", "replace", "ACME", "ACME Ltd"),
        ("/items/1/qty", "replace", 2, 5),
    ]
    stored = FieldCorrection.objects.filter(execution=execution)
    assert stored.count() == 2
    assert {(c.author, c.comment, c.workspace_id) for c in stored} == {
        (bob, "Checked the PDF", execution.workspace_id)
    }
    execution.refresh_from_db()
    assert execution.correction_count == 2
    assert execution.output == OUTPUT  # the original is never overwritten
    assert corrected(execution)["vendor"]["name"] == "ACME Ltd"
    assert corrected(execution)["items"][1]["qty"] == 5


def test_a_change_to_the_same_value_is_not_stored(execution, bob):
    rows = services.field_corrections_create(
        execution=execution, membership=member(bob), changes=[replace("/total", 10.5, 10.5)]
    )
    assert rows == []
    execution.refresh_from_db()
    assert execution.correction_count == 0


def test_one_and_one_point_oh_are_different_values(execution, bob):
    rows = services.field_corrections_create(
        execution=execution, membership=member(bob), changes=[replace("/items/0/qty", 1.0, 1)]
    )
    assert [r.value_after for r in rows] == [1.0]


def test_without_a_schema_a_value_keeps_its_json_type(execution, bob):
    with pytest.raises(services.FieldErrors) as refused:
        services.field_corrections_create(
            execution=execution,
            membership=member(bob),
            changes=[replace("/items/1/qty", True, 2), replace("/vendor/name", 5, "ACME")],
        )
    assert refused.value.errors == {
        "/items/1/qty": ["Expected a number like the value there now, got a boolean."],
        "/vendor/name": ["Expected a string like the value there now, got a number."],
    }
    # null goes either way: a reviewer may blank a field, or fill in one that was null.
    rows = services.field_corrections_create(
        execution=execution, membership=member(bob), changes=[replace("/total", None, 10.5)]
    )
    assert rows[0].value_after is None


def test_added_and_removed_items_replay_in_order(execution, bob):
    services.field_corrections_create(
        execution=execution,
        membership=member(bob),
        changes=[
            Change("remove", "/items/0", None, "/items", value_hash(OUTPUT["items"]), "/items"),
            Change(
                "add",
                "/items/2",
                {"sku": "d", "qty": 4},
                "/items",
                value_hash(OUTPUT["items"]),
                "/items",
            ),
            Change("add", "/vendor/vat", "GB123", "/vendor/vat", ABSENT, "/vendor/vat"),
        ],
    )
    out = corrected(execution)
    assert [i["sku"] for i in out["items"]] == ["b", "c", "d"]
    assert out["vendor"]["vat"] == "GB123"
    ops = list(FieldCorrection.objects.values_list("op", "path", "value_before"))
    assert ops == [
        ("remove", "/items/0", {"sku": "a", "qty": 1}),
        ("add", "/items/2", None),
        ("add", "/vendor/vat", None),
    ]


def test_a_stale_base_is_refused_with_the_newer_value_and_who_set_it(execution, alice, bob):
    # Both opened the form when the name was "ACME"; alice saves first.
    services.field_corrections_create(
        execution=execution,
        membership=member(alice),
        changes=[replace("/vendor/name", "ACME Corp", "ACME")],
    )
    with pytest.raises(services.StaleBase) as refused:
        services.field_corrections_create(
            execution=execution,
            membership=member(bob),
            changes=[replace("/total", 11, 10.5), replace("/vendor/name", "ACME Ltd", "ACME")],
        )
    (conflict,) = refused.value.conflicts
    assert conflict.path == "/vendor/name"
    assert conflict.current == "ACME Corp"
    assert conflict.by.author == alice
    assert "changed to “ACME Corp” by alice" in conflict.message
    # Nothing of bob's save was stored, not even the field that was not stale.
    assert FieldCorrection.objects.filter(author=bob).count() == 0
    assert corrected(execution)["total"] == 10.5
    execution.refresh_from_db()
    assert execution.correction_count == 1


def test_a_removed_field_is_a_conflict_too(execution, alice, bob):
    items = OUTPUT["items"]
    services.field_corrections_create(
        execution=execution,
        membership=member(alice),
        changes=[Change("remove", "/items/2", None, "/items", value_hash(items), "/items")],
    )
    with pytest.raises(services.StaleBase) as refused:
        services.field_corrections_create(
            execution=execution, membership=member(bob), changes=[replace("/items/2/qty", 9, 3)]
        )
    assert "was removed by alice" in refused.value.conflicts[0].message


def test_two_reviewers_making_the_same_fix_is_not_a_conflict(execution, alice, bob):
    for who in (alice, bob):
        services.field_corrections_create(
            execution=execution, membership=member(who), changes=[replace("/total", 12, 10.5)]
        )
    assert FieldCorrection.objects.count() == 1


def test_unknown_paths_are_field_errors_and_nothing_is_saved(execution, bob):
    with pytest.raises(services.FieldErrors) as refused:
        services.field_corrections_create(
            execution=execution,
            membership=member(bob),
            changes=[
                replace("/total", 1, 10.5),
                Change("replace", "/nope", 1, "/nope", None, "/nope"),
                Change("remove", "/items/9", None, "/items/9", None, "/items/9"),
            ],
        )
    assert set(refused.value.kinds.values()) == {"path"}
    assert set(refused.value.errors) == {"/nope", "/items/9"}
    assert FieldCorrection.objects.count() == 0


SCHEMA = {
    "type": "object",
    "properties": {
        "total": {"type": "number", "minimum": 0},
        "currency": {"enum": ["EUR", "GBP"]},
        "items": {"type": "array", "items": {"type": "object", "required": ["sku"]}},
    },
}


def test_schema_violations_the_changes_introduce_are_refused_by_field(bob):
    version = AgentVersionFactory(
        agent__workspace=member(bob).workspace, version="typed", output_schema=SCHEMA
    )
    execution = ExecutionFactory(
        agent_version=version, output={"total": 1, "currency": "EUR", "items": []}
    )
    with pytest.raises(services.FieldErrors) as refused:
        services.field_corrections_create(
            execution=execution,
            membership=member(bob),
            changes=[
                replace("/total", -3, 1),
                replace("/currency", "USD", "EUR"),
                Change("add", "/items/0", {"qty": 1}, "/items", value_hash([]), "/items"),
            ],
        )
    errors = refused.value.errors
    assert "-3 is less than the minimum of 0" in errors["/total"][0]
    assert "is not one of" in errors["/currency"][0]
    assert "'sku' is a required property" in errors["/items/0"][0]
    assert FieldCorrection.objects.count() == 0


def test_violations_already_in_the_output_do_not_block_other_fixes(bob):
    version = AgentVersionFactory(
        agent__workspace=member(bob).workspace, version="typed", output_schema=SCHEMA
    )
    execution = ExecutionFactory(agent_version=version, output={"total": -1, "currency": "XXX"})
    rows = services.field_corrections_create(
        execution=execution, membership=member(bob), changes=[replace("/total", 5, -1)]
    )
    assert len(rows) == 1


def test_undo_is_a_new_correction_back_to_the_earlier_value(execution, alice, bob):
    (first,) = services.field_corrections_create(
        execution=execution, membership=member(alice), changes=[replace("/total", 12, 10.5)]
    )
    services.field_correction_undo(execution=execution, membership=member(bob), correction=first)
    history = list(
        FieldCorrection.objects.order_by("id").values_list("value_before", "value_after")
    )
    assert history == [(10.5, 12), (12, 10.5)]
    assert corrected(execution)["total"] == 10.5
    execution.refresh_from_db()
    assert execution.correction_count == 2


def test_undo_of_an_add_removes_and_of_a_remove_puts_back(execution, bob):
    items = OUTPUT["items"]
    removed, added = services.field_corrections_create(
        execution=execution,
        membership=member(bob),
        changes=[
            Change("remove", "/items/1", None, "/items", value_hash(items), "/items"),
            Change("add", "/vendor/vat", "GB1", "/vendor/vat", ABSENT, "/vendor/vat"),
        ],
    )
    services.field_correction_undo(execution=execution, membership=member(bob), correction=added)
    services.field_correction_undo(execution=execution, membership=member(bob), correction=removed)
    assert corrected(execution) == OUTPUT


def test_undo_of_a_field_changed_since_is_stale(execution, alice, bob):
    (first,) = services.field_corrections_create(
        execution=execution, membership=member(alice), changes=[replace("/total", 12, 10.5)]
    )
    services.field_corrections_create(
        execution=execution, membership=member(bob), changes=[replace("/total", 13, 12)]
    )
    with pytest.raises(services.StaleBase):
        services.field_correction_undo(
            execution=execution, membership=member(alice), correction=first
        )


@pytest.mark.parametrize("who", ["viewer", "operator"])
def test_viewers_and_operators_cannot_correct_or_note(execution, who, request):
    user = request.getfixturevalue(who)
    with pytest.raises(PermissionDenied, match="Only reviewers and admins"):
        services.field_corrections_create(
            execution=execution, membership=member(user), changes=[replace("/total", 1, 10.5)]
        )
    with pytest.raises(PermissionDenied):
        services.execution_note_create(execution=execution, membership=member(user), rating="up")
    assert FieldCorrection.objects.count() == ExecutionNote.objects.count() == 0


def test_notes_have_a_rating_and_text_and_count(execution, alice, bob):
    services.execution_note_create(
        execution=execution, membership=member(bob), rating="down", text="Total is wrong"
    )
    services.execution_note_create(execution=execution, membership=member(alice), rating="up")
    notes = list(selectors.note_list(workspace=execution.workspace, execution=execution))
    assert [(n.author, n.rating, n.text) for n in notes] == [
        (alice, "up", ""),
        (bob, "down", "Total is wrong"),
    ]
    assert Execution.objects.get(pk=execution.pk).note_count == 2


@pytest.mark.parametrize(
    ("rating", "text", "field"),
    [("", "", "text"), ("meh", "x", "rating"), ("up", "x" * 10_001, "text")],
)
def test_bad_notes_are_refused_by_field(execution, bob, rating, text, field):
    with pytest.raises(services.FieldErrors) as refused:
        services.execution_note_create(
            execution=execution, membership=member(bob), rating=rating, text=text
        )
    assert field in refused.value.errors
    assert ExecutionNote.objects.count() == 0


def test_the_corrected_output_is_the_latest_correction_of_each_path(execution):
    for before, after in [(10.5, 11), (11, 12), (12, 13)]:
        FieldCorrectionFactory(
            execution=execution, path="/total", value_before=before, value_after=after
        )
    FieldCorrectionFactory(
        execution=execution, path="/vendor/city", value_before="Leeds", value_after="York"
    )
    out = corrected(execution)
    assert out["total"] == 13 and out["vendor"]["city"] == "York"


def test_a_correction_that_no_longer_fits_is_skipped_and_reported(execution):
    FieldCorrectionFactory(execution=execution, path="/gone/deep", value_after=1)
    result = selectors.execution_corrected(workspace=execution.workspace, execution=execution)
    assert result.output == OUTPUT
    assert [c.path for c in result.skipped] == ["/gone/deep"]
