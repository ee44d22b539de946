import pytest

from feedback import pointer, selectors
from feedback.diff import execution_diff, field_diff

from ..factories import ExecutionFactory, FieldCorrectionFactory, UserFactory

ORIGINAL = {
    "name": "ACME",
    "total": 10,
    "items": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}],
    "meta": {"pages": 2},
}


def test_it_lists_changed_added_and_removed_fields_with_before_and_after():
    corrected = {
        "name": "ACME Ltd",
        "total": 10.0,  # an int corrected to a float is a change in JSON
        "items": [{"sku": "a"}, {"sku": "c"}, {"sku": "d", "qty": 1}],
        "meta": {"pages": 2, "lang": "en"},
    }
    diffs = field_diff(ORIGINAL, corrected)
    got = [(d.kind, d.path, d.original_path, d.before_text, d.after_text) for d in diffs]
    assert got == [
        ("changed", "/name", "/name", '"ACME"', '"ACME Ltd"'),
        ("changed", "/total", "/total", "10", "10.0"),
        ("removed", "/items/1", "/items/1", '{\n  "sku": "b"\n}', ""),
        ("added", "/items/2", "/items/2", "", '{\n  "sku": "d",\n  "qty": 1\n}'),
        ("added", "/meta/lang", "/meta/lang", "", '"en"'),
    ]


def test_equal_outputs_have_no_diff():
    assert field_diff(ORIGINAL, {**ORIGINAL}) == []


def test_a_changed_item_of_a_longer_list_is_paired_by_position():
    diffs = field_diff({"l": [1, 2, 3]}, {"l": [1, 5, 3, 4]})
    assert [(d.kind, d.path, d.before, d.after) for d in diffs] == [
        ("changed", "/l/1", 2, 5),
        ("added", "/l/3", pointer.MISSING, 4),
    ]


@pytest.mark.django_db
def test_each_difference_says_who_corrected_it_last_and_how_often(agent_version):
    execution = ExecutionFactory(agent_version=agent_version, output=ORIGINAL)
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    FieldCorrectionFactory(
        execution=execution,
        path="/name",
        value_before="ACME",
        value_after="X",
        author=alice,
        comment="typo",
    )
    FieldCorrectionFactory(
        execution=execution,
        path="/name",
        value_before="X",
        value_after="ACME Ltd",
        author=bob,
        comment="really",
    )
    FieldCorrectionFactory(
        execution=execution, path="/items/0/sku", value_before="a", value_after="A", author=alice
    )
    corrected = selectors.execution_corrected(workspace=execution.workspace, execution=execution)
    diffs = execution_diff(corrected)
    assert [(d.path, d.author, d.touches, d.comment) for d in diffs] == [
        ("/name", "bob", 2, "really"),
        ("/items/0/sku", "alice", 1, ""),
    ]
