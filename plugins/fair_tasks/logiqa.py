"""LogiQA (Liu et al. 2020): four-option logical reading comprehension.

Eval.txt (651) is the train split and Test.txt (651) the test split, as in the paper (the hub's
lucasmccabe/logiqa "validation" and "test"). A problem's question carries the context, the query
and the lettered options, so every prompt shows the whole item.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fair_core.errors import DataError
from fair_core.task import Problem

from .base import LocalTask, hub_rows, need, read_text
from .extract import extract_letter, match_option
from .prompts import LETTER, PAPER_LETTER

FILES = {"train": "Eval.txt", "test": "Test.txt"}
HUB_SPLITS = {"train": "validation", "test": "test"}
LETTERS = "ABCD"


class LogiQA(LocalTask):
    """Ids are "<file stem>-<index>" ("Eval-0", "Test-650"); gold answers are "A".."D".

    ``extract`` reads letters only; ``extract_for(problem, text)`` also accepts an answer that
    quotes exactly one option's text, which needs the problem's options (``meta["options"]``).
    """

    name = "logiqa"
    # the upstream repository states no licence: the cards say so
    upstream = "https://github.com/lgw863/LogiQA-dataset"
    hub_id = "lucasmccabe/logiqa"
    # the repository is a loading script, which datasets >= 4 no longer runs; its Parquet export loads
    hub_options = {"revision": "refs/convert/parquet"}
    folder = "logiqa"
    files = tuple(FILES.values())
    default_prompts = LETTER
    presets = {"paper": PAPER_LETTER}

    def read_local(self, folder: Path) -> dict[str, list[Problem]]:
        return {split: _read_items(folder / name) for split, name in FILES.items()}

    def read_hub(self, dataset: Any) -> dict[str, list[Problem]]:
        splits: dict[str, list[Problem]] = {}
        for split, hub_split in HUB_SPLITS.items():
            stem = Path(FILES[split]).stem
            splits[split] = []
            for index, (where, row) in enumerate(hub_rows(dataset, self.hub_id, hub_split)):
                options = need(row, "options", where, list)
                choice = need(row, "correct_option", where, int)
                if len(options) != 4 or not 0 <= choice < 4:
                    raise DataError(f"{where}: expected 4 options and a correct_option in 0..3")
                splits[split].append(
                    _problem(
                        f"{stem}-{index}",
                        need(row, "context", where, str),
                        need(row, "query", where, str),
                        options,
                        LETTERS[choice],
                    )
                )
        return splits

    def extract(self, text: str) -> str | None:
        return extract_letter(text)

    def extract_for(self, problem: Problem, text: str) -> str | None:
        return extract_letter(text) or match_option(text, list(problem.meta.get("options", ())))


def _problem(problem_id: str, context: str, query: str, options: list[str], gold: str) -> Problem:
    lettered = "\n".join(f"{letter}. {option}" for letter, option in zip(LETTERS, options))
    question = f"Context: {context}\nQuery: {query}\nOptions:\n{lettered}"
    return Problem(problem_id, question, gold, {"context": context, "query": query, "options": options})


def _read_items(path: Path) -> list[Problem]:
    """Upstream format, 8 lines an item: blank, answer letter (a-d), context, query, 4 options
    ("A." .. "D."; a few upstream lines lack the prefix and are kept whole)."""
    lines = read_text(path).splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) % 8:
        raise DataError(f"{path}:{len(lines)}: the file ends inside an item (8 lines an item)")
    problems = []
    for start in range(0, len(lines), 8):
        blank, letter, context, query, *options = lines[start : start + 8]
        if blank.strip() or letter.strip().lower() not in ("a", "b", "c", "d"):
            bad = start + 1 if blank.strip() else start + 2
            raise DataError(f"{path}:{bad}: expected a blank line, then the answer letter a-d")
        options = [
            re.sub(rf"^[{expected}{expected.lower()}][.?\s]\s*", "", option.strip())
            for expected, option in zip(LETTERS, options)
        ]
        problems.append(
            _problem(f"{path.stem}-{start // 8}", context.strip(), query.strip(), options, letter.strip().upper())
        )
    return problems
