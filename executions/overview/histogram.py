"""Fixed log-spaced duration buckets, and percentiles read from their counts.

Bucket 0 holds durations under 1 ms; bucket k >= 1 holds [2^((k-1)/8), 2^(k/8)) ms,
so each bucket is 9% wide and its geometric middle is within 2^(1/16) - 1 = 4.4% of
any duration inside it. A percentile read as the middle of the bucket holding the
nearest-rank value is therefore within 4.4% of the exact nearest-rank value. The
last bucket also holds everything longer (from 2^(198/8) ms, about 7.6 hours).

The same formula is written in SQL for the triggers (`bucket_sql`) and in Python
(`bucket_of`); both use the C library's ln(), so they agree at the boundaries.
"""

import math
from collections.abc import Iterable, Mapping

PER_OCTAVE = 8
BUCKETS = 200
LAST = BUCKETS - 1


def bucket_of(duration_ms: int) -> int:
    if duration_ms < 1:
        return 0
    return min(LAST, 1 + math.floor(PER_OCTAVE * math.log(duration_ms) / math.log(2)))


def bucket_sql(column: str, vendor: str) -> str:
    least = "LEAST" if vendor == "postgresql" else "min"
    value = f"CAST({column} AS double precision)" if vendor == "postgresql" else column
    return (
        f"CASE WHEN {column} < 1 THEN 0 ELSE CAST({least}({LAST}, "
        f"1 + floor({PER_OCTAVE} * ln({value}) / ln(2))) AS integer) END"
    )


def bucket_middle(bucket: int) -> float:
    """The value a percentile falling in this bucket is read as, in ms."""
    if bucket <= 0:
        return 0.0
    if bucket >= LAST:
        return 2 ** ((LAST - 1) / PER_OCTAVE)
    return 2 ** ((bucket - 0.5) / PER_OCTAVE)


def percentiles(
    counts: Mapping[int, int], quantiles: Iterable[float] = (0.5, 0.95, 0.99)
) -> dict[float, float | None]:
    """Nearest-rank percentiles (in ms) from bucket counts; None when there are none."""
    total = sum(counts.values())
    if total <= 0:
        return {q: None for q in quantiles}
    ordered = sorted((b, n) for b, n in counts.items() if n > 0)
    result = {}
    for q in quantiles:
        rank = max(1, math.ceil(q * total))
        seen = 0
        for bucket, n in ordered:
            seen += n
            if seen >= rank:
                result[q] = bucket_middle(bucket)
                break
    return result


def nearest_rank(values: list[int], q: float) -> int | None:
    """The exact nearest-rank percentile of a list, to compare the histogram with."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]
