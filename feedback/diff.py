"""Original against corrected output, field by field, with who changed each and when.

The same list of field differences feeds both layouts: inline (before struck
through above after) and side by side (before | after).
"""

from __future__ import annotations

import json
from bisect import bisect_left
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import cached_property
from typing import Any

from . import pointer
from .jsonform import _digest
from .models import FieldCorrection
from .selectors import Corrected

MAX_TEXT = 4_000
MAX_DEPTH = 64


@dataclass
class FieldDiff:
    path: str  # in the corrected output; for a removed field, where it was in the original
    original_path: str
    kind: str  # "changed", "added" or "removed"
    before: Any
    after: Any
    correction: FieldCorrection | None = None
    touches: int = 0

    @cached_property
    def before_text(self) -> str:
        return "" if self.before is pointer.MISSING else _text(self.before)

    @cached_property
    def after_text(self) -> str:
        return "" if self.after is pointer.MISSING else _text(self.after)

    @property
    def moved(self) -> bool:
        return self.path != self.original_path

    @property
    def author(self) -> str:
        if self.correction is None:
            return ""
        return self.correction.author.get_username() if self.correction.author else "someone"

    @property
    def when(self):
        return self.correction.created_at if self.correction else None

    @property
    def comment(self) -> str:
        return self.correction.comment if self.correction else ""


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        text = json.dumps(value, indent=2, ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False)
    if len(text) > MAX_TEXT:
        return text[:MAX_TEXT] + f"\n… ({len(text) - MAX_TEXT:,} more characters)"
    return text


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict | list):
        # == is done in C and fast; it only confuses 1, 1.0 and True deep inside,
        # which the slower digest comparison settles.
        return a == b and _digest(a) == _digest(b)
    return a == b


def field_diff(original: Any, corrected: Any) -> list[FieldDiff]:
    out: list[FieldDiff] = []
    _walk(original, corrected, "", "", out, 0)
    return out


def _walk(a, b, pa: str, pb: str, out: list[FieldDiff], depth: int) -> None:
    if _same(a, b):
        return
    if depth < MAX_DEPTH and isinstance(a, dict) and isinstance(b, dict):
        for key, value in a.items():
            if key in b:
                _walk(value, b[key], pointer.join(pa, key), pointer.join(pb, key), out, depth + 1)
            else:
                path = pointer.join(pa, key)
                out.append(FieldDiff(path, path, "removed", value, pointer.MISSING))
        for key, value in b.items():
            if key not in a:
                path = pointer.join(pb, key)
                out.append(FieldDiff(path, path, "added", pointer.MISSING, value))
        return
    if depth < MAX_DEPTH and isinstance(a, list) and isinstance(b, list):
        _walk_aligned(a, b, pa, pb, out, depth)
        return
    out.append(FieldDiff(pb, pa, "changed", a, b))


def _walk_aligned(a: list, b: list, pa: str, pb: str, out: list[FieldDiff], depth: int) -> None:
    # Line the unchanged rows up, so one removed row shows as one removal rather
    # than every later row "changed"; rows edited in place still pair by position.
    ha = [_digest(x) for x in a]
    hb = [_digest(y) for y in b]
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, ha, hb, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(paired):
            i, j = i1 + k, j1 + k
            _walk(a[i], b[j], pointer.join(pa, i), pointer.join(pb, j), out, depth + 1)
        for i in range(i1 + paired, i2):
            path = pointer.join(pa, i)
            out.append(FieldDiff(path, path, "removed", a[i], pointer.MISSING))
        for j in range(j1 + paired, j2):
            path = pointer.join(pb, j)
            out.append(FieldDiff(path, path, "added", pointer.MISSING, b[j]))


def execution_diff(corrected: Corrected) -> list[FieldDiff]:
    """The field differences of an execution, each with the correction that made it:
    the latest correction at the field itself, around it, or inside it."""
    diffs = field_diff(corrected.original, corrected.output)
    touching = _Touching(corrected.corrections)
    for d in diffs:
        found = touching.of(d.path)
        if d.original_path != d.path:
            found |= touching.of(d.original_path)
        d.touches = len(found)
        d.correction = corrected.corrections[max(found)] if found else None
    return diffs


class _Touching:
    """Which corrections overlap a path, by index, without comparing every pair."""

    def __init__(self, corrections: list[FieldCorrection]):
        self.by_path: dict[str, list[int]] = {}
        for i, c in enumerate(corrections):
            self.by_path.setdefault(c.path, []).append(i)
        self.paths = sorted(self.by_path)

    def of(self, path: str) -> set[int]:
        found: set[int] = set()
        # The path itself and every ancestor of it.
        probe = path
        while True:
            found.update(self.by_path.get(probe, ()))
            if not probe:
                break
            probe = probe.rpartition("/")[0]
        # Everything below it: a contiguous run of the sorted paths.
        prefix = path + "/"
        start = bisect_left(self.paths, prefix)
        for p in self.paths[start:]:
            if not p.startswith(prefix):
                break
            found.update(self.by_path[p])
        return found
