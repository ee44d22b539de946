"""Bounding-box accuracy of a grounded output, once reviewers have corrected it (seed
000): how good each box the model drew turned out, not only how sure it was.

An output is grounded when it carries "bounding_boxes": [{"label", "x", "y", "width",
"height", "confidence"}], coordinates as fractions of the image, where a box's label
is the field it grounds ("total", "items/0"). For each box:

- the box itself was corrected (its coordinates, or the whole box): its accuracy is
  the IoU (intersection over union) of the model's box and the corrected one;
- otherwise, the field it grounds was corrected: incorrect; it was not: correct.

Before any correction nobody has checked the output, and no accuracy is claimed.
Only this computation lives here; the detail page's Output tab shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BOXES_KEY = "bounding_boxes"


@dataclass
class BoxAccuracy:
    index: int
    label: str
    field: str  # the JSON Pointer of the field the box grounds, or ""
    confidence: float | None
    iou: float | None = None  # when the box itself was corrected
    correct: bool | None = None  # otherwise, whether its field stood

    @property
    def kind(self) -> str:
        if self.iou is not None:
            return "iou"
        return "correct" if self.correct else "incorrect"

    @property
    def text(self) -> str:
        if self.iou is not None:
            return f"IoU {self.iou:.0%}"
        return "correct" if self.correct else "incorrect"


def _coords(box: Any) -> tuple[float, float, float, float] | None:
    if not isinstance(box, dict):
        return None
    try:
        values = tuple(float(box[k]) for k in ("x", "y", "width", "height"))
    except (KeyError, TypeError, ValueError):
        return None
    if values[2] < 0 or values[3] < 0 or any(v != v for v in values):  # NaN
        return None
    return values  # type: ignore[return-value]


def iou(a: dict, b: dict) -> float | None:
    """Intersection over union of two boxes ({x, y, width, height}); None if either is
    not a box. Two empty boxes at one point are the same box (1.0)."""
    first, second = _coords(a), _coords(b)
    if first is None or second is None:
        return None
    ax, ay, aw, ah = first
    bx, by, bw, bh = second
    across = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    down = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = across * down
    union = aw * ah + bw * bh - inter
    if union <= 0:
        return 1.0 if first == second else 0.0
    return inter / union


def _touches(paths: set[str], pointer: str) -> bool:
    """Whether a correction at one of `paths` changed `pointer`, inside or around it."""
    return any(p == pointer or p.startswith(pointer + "/") or pointer.startswith(p + "/") or p == ""
               for p in paths)  # fmt: skip


def box_accuracy(original: Any, corrected: Any, corrected_paths) -> list[BoxAccuracy]:
    """The accuracy of each box of `original`, judged against `corrected` (the output
    with corrections applied) and the paths the corrections were made at. Empty when
    the output has no boxes or no correction was made."""
    paths = set(corrected_paths)
    if not paths or not isinstance(original, dict):
        return []
    boxes = original.get(BOXES_KEY)
    if not isinstance(boxes, list):
        return []
    new_boxes = corrected.get(BOXES_KEY) if isinstance(corrected, dict) else None
    results = []
    for index, box in enumerate(boxes):
        if not isinstance(box, dict):
            continue
        label = str(box.get("label") or "")
        field = "/" + label.strip("/") if label else ""
        confidence = box.get("confidence")
        result = BoxAccuracy(
            index=index,
            label=label,
            field=field,
            confidence=float(confidence) if isinstance(confidence, int | float) else None,
        )
        box_path = f"/{BOXES_KEY}/{index}"
        # A corrected box is only the same box when it still grounds the same field.
        new_box = (
            new_boxes[index] if isinstance(new_boxes, list) and index < len(new_boxes) else None
        )
        if (
            _touches({p for p in paths if p != ""}, box_path)
            and isinstance(new_box, dict)
            and str(new_box.get("label") or "") == label
        ):
            result.iou = iou(box, new_box)
        if result.iou is None:
            result.correct = not (field and _touches(paths, field))
        results.append(result)
    return results
