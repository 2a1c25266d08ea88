"""SVAMP (Patel et al. 2021): 1,000 one-step arithmetic word problems with varied structure.

Upstream has no split; the usual one is 700 train / 300 test. The local file and the hub's
(ChilleD/SVAMP, already split 700/300) are pooled and re-split by a seeded hash of the ids, so
both sources give the same problems in the same splits.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Any, Iterable

from fair_core.errors import DataError
from fair_core.task import Problem

from .base import LocalTask, Record, hub_rows, need, read_json, seeded_split
from .extract import parse_number
from .numeric import NumericAnswers

TEST_SIZE = 300


class Svamp(NumericAnswers, LocalTask):
    """Ids are SVAMP's own ("chal-1"); the question is Body + " " + Question, as in the paper."""

    name = "svamp"
    license = "mit"
    upstream = "https://github.com/arkilpatel/SVAMP"
    hub_id = "ChilleD/SVAMP"
    folder = "svamp"
    files = ("SVAMP.json",)

    def read_local(self, folder: Path) -> dict[str, list[Problem]]:
        return self._split(read_json(folder / "SVAMP.json"))

    def read_hub(self, dataset: Any) -> dict[str, list[Problem]]:
        rows = chain(hub_rows(dataset, self.hub_id, "train"), hub_rows(dataset, self.hub_id, "test"))
        return self._split(sorted(rows, key=lambda row: _id_order(str(row[1].get("ID", "")))))

    def _split(self, records: Iterable[Record]) -> dict[str, list[Problem]]:
        return seeded_split([_problem(where, record) for where, record in records], TEST_SIZE, self.seed)


def _problem(where: str, record: dict) -> Problem:
    gold = parse_number(str(need(record, "Answer", where, (int, float, str))))
    if gold is None:
        raise DataError(f"{where}: Answer {record['Answer']!r} is not a number")
    body, query = need(record, "Body", where, str), need(record, "Question", where, str)
    return Problem(
        need(record, "ID", where, str),
        body + " " + query,
        gold,
        {"body": body, "query": query, "equation": record.get("Equation"), "type": record.get("Type")},
    )


def _id_order(problem_id: str) -> tuple[str, int]:
    """ "chal-12" sorts after "chal-2", as in SVAMP.json."""
    prefix, _, number = problem_id.rpartition("-")
    return (prefix, int(number)) if number.isdigit() else (problem_id, -1)
