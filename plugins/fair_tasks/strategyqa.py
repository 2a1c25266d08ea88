"""StrategyQA (Geva et al. 2021): yes/no questions that need implicit multi-step reasoning.

The public train.json (2,061) and dev.json (229) are pooled and re-split by a seeded hash of the
qids: 229 test (the size of dev, small enough to evaluate often), 2,061 train. The hub copy
(ChilleD/StrategyQA, split differently) is pooled and re-split the same way, so a qid lands in
the same split whichever source it came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from fair_core.errors import DataError
from fair_core.task import Problem

from .base import LocalTask, Record, hub_rows, need, read_json, seeded_split
from .extract import extract_yes_no
from .prompts import PAPER_YES_NO, YES_NO

TEST_SIZE = 229
_WORDS = {"true": "yes", "yes": "yes", "false": "no", "no": "no"}


class StrategyQA(LocalTask):
    """Ids are the upstream qids; gold answers are "yes" / "no"."""

    name = "strategyqa"
    license = "mit"
    upstream = "https://github.com/allenai/strategyqa"
    hub_id = "ChilleD/StrategyQA"
    folder = "strategyqa"
    files = ("train.json", "dev.json")
    default_prompts = YES_NO
    presets = {"paper": PAPER_YES_NO}

    def read_local(self, folder: Path) -> dict[str, list[Problem]]:
        return self._split(read_json(folder / "train.json") + read_json(folder / "dev.json"))

    def read_hub(self, dataset: Any) -> dict[str, list[Problem]]:
        return self._split([*hub_rows(dataset, self.hub_id, "train"), *hub_rows(dataset, self.hub_id, "test")])

    def _split(self, records: Iterable[Record]) -> dict[str, list[Problem]]:
        return seeded_split([_problem(where, record) for where, record in records], TEST_SIZE, self.seed)

    def extract(self, text: str) -> str | None:
        return extract_yes_no(text)

    def extract_for(self, problem: Problem, text: str) -> str | None:
        """As ``extract``, knowing the question: a conclusion that denies the qualifier the
        question hangs on ("not directly") is a no."""
        return extract_yes_no(text, problem.question)

    def hint(self, problem: Problem) -> str:
        """As the paper's: "true." or "false.", a tab, then the supporting facts."""
        facts = problem.meta.get("facts") or []
        facts = " ".join(facts) if isinstance(facts, list) else str(facts)
        return ("true." if problem.gold == "yes" else "false.") + "\t" + facts.strip()


def _problem(where: str, record: dict) -> Problem:
    answer = need(record, "answer", where, (bool, str))
    gold = ("yes" if answer else "no") if isinstance(answer, bool) else _WORDS.get(answer.strip().lower())
    if gold is None:
        raise DataError(f"{where}: answer {answer!r} is not true/false")
    meta = {key: record[key] for key in ("term", "description", "facts", "decomposition") if key in record}
    return Problem(str(need(record, "qid", where, str)), need(record, "question", where, str), gold, meta)
