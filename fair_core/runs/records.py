"""The records a run is made of, as plain frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["feedback", "rationale"]


def author_name(teacher: str, sample: int) -> str:
    """The author of a rationale: the teacher, with ``#k`` for its k-th extra sample."""
    return teacher if sample == 0 else f"{teacher}#{sample}"


def teacher_of(author: str) -> str:
    """The teacher behind an author: ``gpt#1`` was written by ``gpt``."""
    return author.split("#", 1)[0]


@dataclass(frozen=True)
class Attempt:
    """The student's answer to one question."""

    round: int
    split: str
    item_id: str
    output: str
    answer: str | None
    correct: bool


@dataclass(frozen=True)
class Mistake:
    """A train question the student got wrong in a round: what the committee works on."""

    round: int
    item_id: str
    question: str
    gold: str
    wrong_output: str
    wrong_answer: str | None
    extra: dict = field(default_factory=dict)  # source fields kept for faithful export

    @property
    def hint(self) -> str:
        """The gold field teachers see: the task's hint, or a paper file's ``gold_answer``."""
        return self.extra.get("hint") or self.extra.get("gold_answer") or self.gold


@dataclass(frozen=True)
class Writing:
    """A teacher's feedback on a mistake or its own rationale for the question; ``author`` is the
    teacher, with ``#k`` for its k-th extra rationale (:func:`author_name`)."""

    round: int
    item_id: str
    kind: Kind
    author: str
    text: str


@dataclass(frozen=True)
class Review:
    """One reviewer's score of one writing; ``score`` is None when it did not parse to 1..5."""

    round: int
    item_id: str
    kind: Kind
    author: str
    reviewer: str
    raw: str
    score: int | None


@dataclass(frozen=True)
class Verdict:
    round: int
    item_id: str
    kind: Kind
    author: str
    accepted: bool
    value: float | None  # the policy's statistic (mean, median, ...)
    reason: str = ""
