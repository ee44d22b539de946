"""Bounding-box accuracy after review: IoU against a corrected box, else whether the
field the box grounds was corrected; shown on the Output tab beside the confidence."""

import pytest

from feedback.grounding import box_accuracy, iou
from tests.executions.detail_html import parse

from ..factories import ArtifactFactory, ExecutionFactory, FieldCorrectionFactory


def box(label, x, y, w, h, confidence=0.9):
    return {"label": label, "x": x, "y": y, "width": w, "height": h, "confidence": confidence}


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 0.5, 0.5), (0, 0, 0.5, 0.5), 1.0),
        ((0, 0, 0.5, 0.5), (0.5, 0.5, 0.5, 0.5), 0.0),  # touching corners only
        ((0, 0, 0.2, 0.1), (0.1, 0, 0.2, 0.1), 1 / 3),  # half of each overlaps
        ((0, 0, 0.4, 0.4), (0.1, 0.1, 0.2, 0.2), 0.25),  # one inside the other
    ],
)
def test_iou(a, b, expected):
    assert iou(box("t", *a), box("t", *b)) == pytest.approx(expected)
    assert iou(box("t", *b), box("t", *a)) == pytest.approx(expected)


def test_iou_of_something_that_is_not_a_box_is_none():
    assert iou({"x": 0}, box("t", 0, 0, 1, 1)) is None
    assert iou(box("t", 0, 0, -1, 1), box("t", 0, 0, 1, 1)) is None
    assert iou("nope", box("t", 0, 0, 1, 1)) is None


ORIGINAL = {
    "total": 12.5,
    "merchant": "ACME",
    "items": [{"name": "bolt", "price": 2}],
    "bounding_boxes": [
        box("merchant", 0.1, 0.05, 0.8, 0.05, 0.99),
        box("total", 0.1, 0.8, 0.8, 0.05, 0.71),
        box("items/0", 0.1, 0.3, 0.8, 0.04, 0.93),
    ],
}


def test_each_box_is_judged_by_its_own_correction():
    corrected = {
        **ORIGINAL,
        "total": 21.5,
        "bounding_boxes": [
            ORIGINAL["bounding_boxes"][0],
            ORIGINAL["bounding_boxes"][1],
            box("items/0", 0.1, 0.32, 0.8, 0.04),  # moved down by half its height
        ],
    }
    paths = {"/total", "/bounding_boxes/2/y"}
    merchant, total, item = box_accuracy(ORIGINAL, corrected, paths)
    assert (merchant.label, merchant.kind, merchant.text) == ("merchant", "correct", "correct")
    assert (total.kind, total.text, total.confidence) == ("incorrect", "incorrect", 0.71)
    assert item.kind == "iou" and item.iou == pytest.approx(1 / 3)
    assert item.text == "IoU 33%"


def test_a_corrected_list_or_whole_output_counts_for_the_fields_inside():
    corrected = {**ORIGINAL, "items": [{"name": "bolt", "price": 3}]}
    results = box_accuracy(ORIGINAL, corrected, {"/items"})
    assert [r.kind for r in results] == ["correct", "correct", "incorrect"]
    assert [r.kind for r in box_accuracy(ORIGINAL, corrected, {""})] == ["incorrect"] * 3


def test_no_review_no_claim():
    assert box_accuracy(ORIGINAL, ORIGINAL, set()) == []
    assert box_accuracy({"total": 1}, {"total": 2}, {"/total"}) == []
    assert box_accuracy(None, None, {"/x"}) == []


@pytest.mark.django_db
def test_the_output_tab_shows_accuracy_beside_confidence(alice_client, agent_version, bob):
    execution = ExecutionFactory(agent_version=agent_version, output=ORIGINAL)
    ArtifactFactory(execution=execution, bounding_boxes=ORIGINAL["bounding_boxes"])
    url = f"{execution.get_absolute_url()}?tab=output"
    assert not parse(alice_client.get(url).content).select("table", id="box-accuracy")

    FieldCorrectionFactory(
        execution=execution, path="/total", value_before=12.5, value_after=21.5, author=bob
    )
    execution.correction_count = 1
    execution.save(update_fields=["correction_count"])
    doc = parse(alice_client.get(url).content)
    rows = {
        tr.attrs["data-label"]: [td.text.strip() for td in tr.select("td")]
        for tr in doc.one("table", id="box-accuracy").select("tr")
        if "data-label" in tr.attrs
    }
    assert rows["total"] == ["total", "71.0%", "incorrect"]
    assert rows["merchant"] == ["merchant", "99.0%", "correct"]
    legend = doc.one("ul", cls="bbox-legend")
    assert "incorrect" in legend.text and "confidence 71.0%" in legend.text
