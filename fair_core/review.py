"""The review contract: how a reviewer's reply becomes a score, and scores become a verdict.

A *parser* reads one reviewer's free text and returns a score 1..5 or None. A *policy*, built
with a threshold, turns the scores one writing got into (accepted, statistic). Plugins add both
through the ``register_reviewers`` hook; the built-ins live in ``plugins/fair_reviewers``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from numbers import Integral
from typing import Iterable, Protocol, runtime_checkable

SCALE = range(1, 6)  # the review scale; a score outside it does not count


@runtime_checkable
class ScoreParser(Protocol):
    """Reads the score in a reviewer's reply: an int in 1..5, or None when there is none.

    Never raises: the text is untrusted model output, and one odd reply must not stop a run.
    """

    def __call__(self, text: str) -> int | None: ...


def counted(scores: Iterable[object]) -> list[int]:
    """The scores that count, in order: integers in 1..5. None, bools, floats and numbers out of
    range are dropped, as the paper keeps a score only when it parsed to an int with 0 < s < 6."""
    return [int(s) for s in scores if isinstance(s, Integral) and not isinstance(s, bool) and 1 <= int(s) <= 5]


class ReviewPolicy(ABC):
    """Accepts or rejects a writing from its reviewers' scores.

    Built with a threshold (config ``committee.threshold``; the paper's is 3). Only counted scores
    enter; a writing with none is rejected with statistic None. Unless a policy says otherwise it
    accepts when its statistic is strictly greater than the threshold, so with threshold 3 a mean
    of 3.0 fails and 3.5 passes, as in the paper.
    """

    def __init__(self, threshold: float = 3.0) -> None:
        self.threshold = float(threshold)

    @abstractmethod
    def statistic(self, scores: list[int]) -> float:
        """The policy's summary of a non-empty list of counted scores."""

    def passes(self, value: float) -> bool:
        """Whether a statistic is good enough to accept."""
        return value > self.threshold

    def decide(self, scores: Iterable[object]) -> tuple[bool, float | None]:
        """(accepted, statistic) for the scores one writing got; uncounted scores are ignored."""
        kept = counted(scores)
        if not kept:
            return False, None
        value = float(self.statistic(kept))
        return self.passes(value), value
