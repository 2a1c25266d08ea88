"""How far the reviewers agree: Krippendorff's alpha, Fleiss' kappa and a score histogram.

Units are the reviewed writings, coders the reviewers. When agreement is low, whether a
rationale is accepted depends more on who reviewed it than on the rationale, which a report
should show next to the acceptance rates.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from itertools import accumulate
from typing import Hashable, Iterable, Sequence

from ..review import SCALE, counted

METRICS = ("nominal", "ordinal", "interval")


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def units_of(scores: Iterable[tuple[Hashable, int | None]]) -> list[list[int | None]]:
    """One unit per reviewed writing, from (the writing's key, a reviewer's score) pairs, in
    first-seen order; a reply that did not parse stays in as None (a missing value)."""
    units: dict[Hashable, list[int | None]] = {}
    for key, score in scores:
        units.setdefault(key, []).append(score)
    return list(units.values())


def _patterns(units: Iterable[Sequence]) -> Counter:
    """How many units hold each multiset of present values (as a canonically ordered tuple):
    units alike contribute alike, so the statistics run over the few distinct patterns."""
    return Counter(tuple(sorted((v for v in unit if _present(v)), key=repr)) for unit in units)


def _squared_distances(metric: str, totals: dict) -> dict:
    """delta^2(c, k) for every pair of values seen, per Krippendorff (2011)."""
    values = sorted(totals)
    if metric == "nominal":
        return {(c, k): float(c != k) for c in values for k in values}
    if metric == "interval":
        return {(c, k): float(c - k) ** 2 for c in values for k in values}
    # ordinal: the number of pairable values from c up to k, less half of those at c and at k
    upto = dict(zip(values, accumulate(totals[v] for v in values)))
    delta = {}
    for c in values:
        for k in values:
            low, high = min(c, k), max(c, k)
            between = upto[high] - upto[low] + totals[low]
            delta[c, k] = (between - (totals[c] + totals[k]) / 2) ** 2
    return delta


def krippendorff_alpha(units: Iterable[Sequence[Hashable | None]], metric: str = "interval") -> float | None:
    """Krippendorff's alpha of reliability data given unit by unit: each unit is the sequence of
    values its coders gave, with None (or NaN) where a coder gave none, so units may differ in
    size. A unit with fewer than two values cannot be paired and drops out. Returns None when alpha
    is undefined: fewer than two pairable values, or all of them equal."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: use one of {', '.join(METRICS)}")
    coincidences: dict[tuple, float] = defaultdict(float)
    # units with the same values contribute alike: each distinct pattern is counted once, weighted
    for pattern, weight in _patterns(units).items():
        seen = Counter(pattern)
        m = sum(seen.values())
        if m < 2:
            continue
        for c, nc in seen.items():
            for k, nk in seen.items():
                pairs = nc * (nk - 1) if c == k else nc * nk
                if pairs:
                    coincidences[c, k] += weight * pairs / (m - 1)
    totals: dict = defaultdict(float)
    for (c, _), o in coincidences.items():
        totals[c] += o
    n = sum(totals.values())
    if n < 2:
        return None
    delta = _squared_distances(metric, totals)
    observed = sum(o * delta[ck] for ck, o in coincidences.items())
    expected = sum(totals[c] * totals[k] * delta[c, k] for c in totals for k in totals)
    if expected == 0:
        return None
    return 1 - (n - 1) * observed / expected


def fleiss_kappa(units: Iterable[Sequence[Hashable]]) -> float | None:
    """Fleiss' kappa for units that each got the same number (at least two) of ratings; the
    ratings are category labels. Raises ValueError on a missing rating or unequal counts (use
    Krippendorff's alpha for incomplete data). Returns None with no units, or when every rating
    falls in one category (chance agreement is then 1 and kappa undefined)."""
    rows = [list(u) for u in units]
    if not rows:
        return None
    sizes = {len(r) for r in rows}
    if len(sizes) != 1 or min(sizes) < 2:
        raise ValueError(f"Fleiss' kappa needs the same number (>= 2) of ratings per unit, got {sorted(sizes)}")
    if any(not _present(v) for r in rows for v in r):
        raise ValueError("Fleiss' kappa needs complete data: a rating is missing")
    (n,) = sizes
    patterns = [(Counter(p), w) for p, w in _patterns(rows).items()]  # alike rows counted once, weighted
    observed = sum(w * (sum(c * c for c in p.values()) - n) / (n * (n - 1)) for p, w in patterns)
    observed /= len(rows)
    shares: Counter = Counter()
    for p, w in patterns:
        for value, c in p.items():
            shares[value] += w * c
    expected = sum((t / (len(rows) * n)) ** 2 for t in shares.values())
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def histogram(scores: Iterable[object]) -> dict[int, int]:
    """How many counted scores fall on each point 1..5 of the scale (zeros included)."""
    found = Counter(counted(scores))
    return {s: found[s] for s in SCALE}
