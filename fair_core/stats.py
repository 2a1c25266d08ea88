"""The uncertainty of an accuracy: an exact 95% interval, and a paired test of two students.

"10%" on 50 items is 5 items; printed alone it hides how little it says. Every accuracy fair
prints goes through :func:`accuracy` (count, value, Clopper-Pearson interval) and every
before/after pair on the same items through :func:`mcnemar` (exact, on the discordant pairs).
Experiments, whose per-item scores may be means over seeds, use a bootstrap interval and a
paired permutation test.
scipy is imported inside the functions: ``fair --help`` never pays for it.
"""

from __future__ import annotations

from typing import Sequence


def accuracy(correct: int, n: int) -> dict:
    """``{"correct", "n", "accuracy", "ci95"}``; the interval is Clopper-Pearson's exact one,
    which never claims less uncertainty than the data has (Wald's does, near 0% and 100%)."""
    if n <= 0:
        return {"correct": 0, "n": 0, "accuracy": None, "ci95": None}
    from scipy.stats import binomtest

    ci = binomtest(correct, n).proportion_ci(confidence_level=0.95, method="exact")
    return {
        "correct": correct,
        "n": n,
        "accuracy": round(correct / n, 4),
        "ci95": [round(ci.low, 4), round(ci.high, 4)],
    }


def mcnemar(before: Sequence[bool], after: Sequence[bool]) -> dict:
    """McNemar's exact test of two students on the same items: only the items on which they
    disagree count (``gained``: wrong before, right after; ``lost``: the reverse); the two-sided
    p-value is the binomial test of ``gained`` out of ``gained + lost`` at 1/2."""
    if len(before) != len(after):
        raise ValueError("mcnemar needs the same items before and after")
    gained = sum(1 for b, a in zip(before, after) if a and not b)
    lost = sum(1 for b, a in zip(before, after) if b and not a)
    if gained + lost == 0:
        p = 1.0
    else:
        from scipy.stats import binomtest

        p = binomtest(gained, gained + lost, 0.5).pvalue
    return {"items": len(before), "gained": gained, "lost": lost, "p_value": round(min(1.0, p), 4)}


def bootstrap_ci(values: Sequence[float]) -> list[float] | None:
    """The 95% percentile-bootstrap interval of the mean of per-item values, resampling items
    (seeded: the same values give the same interval). Per-item values may be a mean over seeds,
    where an exact binomial interval no longer applies."""
    if not values:
        return None
    import numpy as np
    from scipy.stats import bootstrap

    x = np.asarray(values, dtype=float)
    if x.min() == x.max():  # nothing to resample: every item scored the same
        return [round(float(x[0]), 4)] * 2
    ci = bootstrap((x,), np.mean, method="percentile", rng=np.random.default_rng(0)).confidence_interval
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def paired_permutation(base: Sequence[float], other: Sequence[float]) -> dict:
    """A paired permutation test of two students' per-item scores on the same items: under
    the null each item's difference is as likely negated, so its sign is flipped at random
    (seeded). For per-item means over seeds, where McNemar's test needs single outcomes."""
    if len(base) != len(other):
        raise ValueError("a paired test needs the same items for both")
    import numpy as np
    from scipy.stats import permutation_test

    a, b = np.asarray(base, dtype=float), np.asarray(other, dtype=float)
    if np.array_equal(a, b):
        p = 1.0
    else:
        p = permutation_test(
            (a, b),
            lambda x, y, axis: np.mean(y - x, axis=axis),
            permutation_type="samples",
            vectorized=True,
            rng=np.random.default_rng(0),
        ).pvalue
    return {"items": len(a), "difference": round(float(np.mean(b - a)), 4), "p_value": round(min(1.0, float(p)), 4)}


def seed_interval(means: Sequence[float]) -> list[float] | None:
    """The 95% t interval of the mean of per-seed means: the seeds are the unit, so training's
    own noise is inside it (an interval over items holds only the items' noise). None under 2 seeds."""
    if len(means) < 2:
        return None
    import numpy as np
    from scipy.stats import t

    x = np.asarray(means, dtype=float)
    half = float(t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return [round(float(x.mean()) - half, 4), round(float(x.mean()) + half, 4)]


def welch(base: Sequence[float], other: Sequence[float]) -> dict:
    """Welch's t test of two arms' per-seed means (seeds as the unit; unequal variances). An arm
    with one value (an untrained student has no seed) is a fixed point: a one-sample t test."""
    import numpy as np
    from scipy.stats import ttest_1samp, ttest_ind

    a, b = np.asarray(base, dtype=float), np.asarray(other, dtype=float)
    if np.array_equal(a, b):
        p = 1.0
    elif len(a) == 1 or len(b) == 1:
        many, one = (b, a[0]) if len(a) == 1 else (a, b[0])
        p = float(ttest_1samp(many, one).pvalue)
    else:
        p = float(ttest_ind(b, a, equal_var=False).pvalue)
    return {"seeds": [len(a), len(b)], "difference": round(float(b.mean() - a.mean()), 4), "p_value": round(p, 4)}


def describe(acc: dict | None) -> str:
    """``"10.0% of 50 [3.3, 21.8]"``, or ``"-"`` when nothing was scored."""
    if not acc or not acc.get("n"):
        return "-"
    return f"{acc['accuracy']:.1%} of {acc['n']} {interval(acc['ci95'])}"


def interval(ci: list[float]) -> str:
    """``"[3.3, 21.8]"``: a 95% interval of a share, in percent."""
    return f"[{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]"


def describe_score(mean: float | None, ci: list[float] | None) -> str:
    """``"-1.181 [-1.251, -1.111]"``: a mean log-prob per token and its 95% interval, if any."""
    if mean is None:
        return "-"
    return f"{mean:.3f}" + ("" if ci is None else f" [{ci[0]:.3f}, {ci[1]:.3f}]")


def describe_test(test: dict | None) -> str:
    """``"+4 -1 of 50, McNemar p=0.375"``: what changed between two students on the same items."""
    if not test:
        return "-"
    return f"+{test['gained']} -{test['lost']} of {test['items']}, McNemar p={test['p_value']:.3g}"
