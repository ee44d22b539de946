"""Agreement between reviewers: raw agreement beside Krippendorff's alpha (nominal).

Pure maths over "units" (one field of one item, or one question of one item), each a
list of the values the reviewers gave it. Values are compared for equality only
(nominal data), so any hashable stands for a value; the caller maps "left it
unchanged" and each corrected value to one (see `field_value`).

Alpha follows Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011):
from the coincidence matrix o[c][k], where a unit with m values adds 1/(m-1) for each
ordered pair of its values, alpha = 1 - (n-1) * sum_{c!=k} o[c][k] / sum_{c!=k} n_c n_k.
Units with fewer than two values are not pairable and are left out. When every value
is the same, expected disagreement is zero and alpha is undefined (None): perfect
raw agreement that says nothing about chance.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

UNCHANGED = ("unchanged",)


def field_value(entry: dict | None) -> Hashable:
    """What one reviewer said about one field, as a comparable value: unchanged (or
    marked correct), or the corrected value in canonical JSON."""
    if not entry or entry.get("verdict") != "corrected":
        return UNCHANGED
    return ("value", json.dumps(entry.get("value"), sort_keys=True, separators=(",", ":")))


def krippendorff_alpha(units: Iterable[Sequence[Hashable]]) -> float | None:
    coincidence: Counter = Counter()
    for values in units:
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        # Ordered pairs of different reviewers' values: c with k, count_c * count_k
        # pairs (c != k), count_c * (count_c - 1) pairs of c with itself.
        for c, nc in counts.items():
            for k, nk in counts.items():
                pairs = nc * (nc - 1) if c == k else nc * nk
                if pairs:
                    coincidence[c, k] += pairs / (m - 1)
    totals: Counter = Counter()
    for (c, _k), o in coincidence.items():
        totals[c] += o
    n = sum(totals.values())
    if n <= 1:
        return None
    observed = sum(o for (c, k), o in coincidence.items() if c != k)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if expected == 0:
        return None
    return 1 - (n - 1) * observed / expected


def unanimous(values: Sequence[Hashable]) -> bool:
    return len(values) >= 2 and len(set(values)) == 1


def raw_agreement(units: Iterable[Sequence[Hashable]]) -> float | None:
    """Share of pairable units on which every reviewer gave the same value."""
    pairable = [u for u in units if len(u) >= 2]
    if not pairable:
        return None
    return sum(unanimous(u) for u in pairable) / len(pairable)


@dataclass(frozen=True)
class Agreement:
    units: int  # pairable units
    raw: float | None
    alpha: float | None


def agreement(units: Iterable[Sequence[Hashable]]) -> Agreement:
    units = [list(u) for u in units]
    return Agreement(
        units=sum(len(u) >= 2 for u in units),
        raw=raw_agreement(units),
        alpha=krippendorff_alpha(units),
    )


def pair_agreement(coded: Iterable[dict[str, Hashable]]) -> dict[tuple[str, str], Agreement]:
    """Per pair of reviewers: agreement over the units both of them coded.

    `coded`: one dict per unit, reviewer -> value."""
    by_pair: dict[tuple[str, str], list[list[Hashable]]] = {}
    for unit in coded:
        for a, b in combinations(sorted(unit), 2):
            by_pair.setdefault((a, b), []).append([unit[a], unit[b]])
    return {pair: agreement(units) for pair, units in sorted(by_pair.items())}
