"""GSM8K (Cobbe et al. 2021): grade-school math word problems, upstream train/test split."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from fair_core.errors import DataError
from fair_core.task import Problem

from .base import SPLITS, LocalTask, Record, hub_rows, need, read_jsonl
from .extract import parse_number
from .numeric import NumericAnswers


class Gsm8k(NumericAnswers, LocalTask):
    """Ids are "train-<index>" / "test-<index>"; the gold is the number after "####"."""

    name = "gsm8k"
    license = "mit"
    upstream = "https://github.com/openai/grade-school-math"
    hub_id = "openai/gsm8k"
    hub_options = {"name": "main"}
    folder = "gsm8k"
    files = ("train.jsonl", "test.jsonl")

    def hint(self, problem: Problem) -> str:
        """The whole worked solution, "#### <answer>" line included, as the paper gives it."""
        return problem.meta.get("solution", problem.gold)

    def read_local(self, folder: Path) -> dict[str, list[Problem]]:
        return {split: self._problems(split, read_jsonl(folder / f"{split}.jsonl")) for split in SPLITS}

    def read_hub(self, dataset: Any) -> dict[str, list[Problem]]:
        return {split: self._problems(split, hub_rows(dataset, self.hub_id, split)) for split in SPLITS}

    @staticmethod
    def _problems(split: str, records: Iterable[Record]) -> list[Problem]:
        problems = []
        for index, (where, record) in enumerate(records):
            solution = need(record, "answer", where, str)
            gold = parse_number(solution.rpartition("####")[2]) if "####" in solution else None
            if gold is None:
                raise DataError(f"{where}: the answer does not end with '#### <number>'")
            problems.append(
                Problem(f"{split}-{index}", need(record, "question", where, str).strip(), gold, {"solution": solution})
            )
        return problems
