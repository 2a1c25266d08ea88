"""Review policies. Each is built with a threshold and, except majority, accepts a writing when its
statistic of the counted scores is strictly greater than the threshold (see fair_core.review)."""

from __future__ import annotations

from statistics import fmean, median

from fair_core.review import ReviewPolicy


class Mean(ReviewPolicy):
    """The paper's policy: the mean score (threshold 3: 4+3 passes, 3+3 does not)."""

    def statistic(self, scores: list[int]) -> float:
        return fmean(scores)


class Median(ReviewPolicy):
    """The median score (the mean of the middle two for an even count): one outlier cannot sway it."""

    def statistic(self, scores: list[int]) -> float:
        return median(scores)


class Min(ReviewPolicy):
    """The lowest score: every reviewer must score above the threshold (a veto for each)."""

    def statistic(self, scores: list[int]) -> float:
        return min(scores)


class TrimmedMean(ReviewPolicy):
    """The mean after dropping one highest and one lowest score, when there are at least three;
    with fewer it is the plain mean."""

    def statistic(self, scores: list[int]) -> float:
        ordered = sorted(scores)
        return fmean(ordered[1:-1] if len(ordered) >= 3 else ordered)


class Majority(ReviewPolicy):
    """A vote: a reviewer votes for a writing when its score is above the threshold (with the
    default 3, a score of 4 or 5); the statistic is the share of votes for, and the writing is
    accepted when that share is more than half (a tie rejects)."""

    def statistic(self, scores: list[int]) -> float:
        return sum(s > self.threshold for s in scores) / len(scores)

    def passes(self, value: float) -> bool:
        return value > 0.5


class AcceptAll(ReviewPolicy):
    """No peer review: every writing is accepted, scored or not (the ablation that shows what
    review buys). The statistic is the mean of the counted scores, for the report."""

    def statistic(self, scores: list[int]) -> float:
        return fmean(scores)

    def decide(self, scores) -> tuple[bool, float | None]:
        return True, super().decide(scores)[1]


POLICIES: dict[str, type[ReviewPolicy]] = {
    "mean": Mean,
    "median": Median,
    "min": Min,
    "majority": Majority,
    "trimmed-mean": TrimmedMean,
    "accept-all": AcceptAll,
}
