"""The numeric answer contract shared by GSM8K and SVAMP."""

from __future__ import annotations

from fair_core.task import Task

from .extract import extract_number, numbers_equal
from .prompts import NUMBER, PAPER_NUMBER


class NumericAnswers(Task):
    """Answers are numbers: canonical strings compared within 1e-6 (relative or absolute)."""

    default_prompts = NUMBER
    presets = {"paper": PAPER_NUMBER}

    def extract(self, text: str) -> str | None:
        return extract_number(text)

    def extract_for(self, problem, text: str) -> str | None:
        """As ``extract``, knowing the question's numbers: an output cut off right after a
        number it computed states that number; one cut off restating the question states none."""
        return extract_number(text, problem.question)

    def is_correct(self, predicted: str | None, gold: str) -> bool:
        return numbers_equal(predicted, gold)
