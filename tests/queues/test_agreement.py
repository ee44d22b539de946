"""Agreement maths against hand-worked examples."""

import pytest

from feedback.queues.agreement import (
    UNCHANGED,
    agreement,
    field_value,
    krippendorff_alpha,
    pair_agreement,
    raw_agreement,
)


def test_two_reviewers_four_units_worked_by_hand():
    # Units (a,a) (a,b) (b,b) (b,b). Coincidences: o_aa=2, o_ab=o_ba=1, o_bb=4;
    # n_a=3, n_b=5, n=8. alpha = 1 - (n-1) * 2 / (2 * 3 * 5) = 1 - 14/30 = 16/30.
    units = [["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]]
    assert krippendorff_alpha(units) == pytest.approx(16 / 30)
    assert raw_agreement(units) == pytest.approx(3 / 4)


def test_krippendorffs_own_example_with_four_coders_and_missing_values():
    # "Computing Krippendorff's Alpha-Reliability" (2011), section C: 4 observers,
    # 12 units, missing values; nominal alpha = 0.743.
    none = None
    a = [1, 2, 3, 3, 2, 1, 4, 1, 2, none, none, none]
    b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, none, 3]
    c = [none, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, none]
    d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, none]
    units = [[v for v in unit if v is not None] for unit in zip(a, b, c, d, strict=True)]
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=0.0005)


def test_three_reviewers_one_dissent_worked_by_hand():
    # Unit 1 (x,x,y): pairs within, each weight 1/2: o_xx=2*1/2=1, o_xy=o_yx=2*1/2=1.
    # Unit 2 (y,y,y): o_yy = 3*2/2 = 3. n_x = 2, n_y = 4, n = 6.
    # alpha = 1 - 5 * 2 / (2 * 2 * 4) = 1 - 10/16 = 0.375.
    assert krippendorff_alpha([["x", "x", "y"], ["y", "y", "y"]]) == pytest.approx(0.375)


def test_perfect_agreement_on_one_value_has_no_alpha():
    result = agreement([["a", "a"], ["a", "a"]])
    assert result.raw == 1.0
    assert result.alpha is None


def test_units_with_one_value_are_not_pairable():
    result = agreement([["a"], ["a", "b"]])
    assert result.units == 1
    assert result.raw == 0.0
    assert raw_agreement([["a"]]) is None
    assert krippendorff_alpha([["a"], ["b"]]) is None


def test_complete_disagreement_is_below_zero():
    # (a,b) (b,a): o_ab = o_ba = 2, n_a = n_b = 2, n = 4: alpha = 1 - 3 * 4 / 8 = -0.5.
    assert krippendorff_alpha([["a", "b"], ["b", "a"]]) == pytest.approx(-0.5)


def test_a_field_left_unchanged_and_marked_correct_are_the_same_answer():
    assert field_value(None) == field_value({"verdict": "ok"}) == UNCHANGED
    one = field_value({"verdict": "corrected", "value": {"a": 1, "b": 2}})
    same = field_value({"verdict": "corrected", "value": {"b": 2, "a": 1}})
    assert one == same != UNCHANGED
    assert field_value({"verdict": "corrected", "value": 1}) != field_value(
        {"verdict": "corrected", "value": "1"}
    )


def test_pair_agreement_uses_only_units_both_coded():
    coded = [
        {"ann": "a", "ben": "a", "cy": "b"},
        {"ann": "b", "ben": "a"},
        {"ben": "b", "cy": "b"},
    ]
    pairs = pair_agreement(coded)
    assert set(pairs) == {("ann", "ben"), ("ann", "cy"), ("ben", "cy")}
    assert pairs["ann", "ben"].units == 2 and pairs["ann", "ben"].raw == 0.5
    assert pairs["ann", "cy"].units == 1 and pairs["ann", "cy"].raw == 0.0
    assert pairs["ben", "cy"].raw == 0.5
