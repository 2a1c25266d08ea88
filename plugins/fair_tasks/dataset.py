"""Your own data as a task, by config alone (``[task] name = "dataset"``).

A file (JSONL, JSON, CSV or TSV, Parquet), a ``datasets.save_to_disk`` folder or a hub dataset;
``task.columns`` says which column holds what, ``task.answer`` how answers are read and judged.
Every row is checked when the data is first loaded, before anything is paid for: a bad one is a
DataError naming the file, the row and the column.

Splits: a second file (``test_path``), a named split of a folder or hub dataset (``test_split``,
else "test" or "validation" where it has one: TEST_SPLITS), else ``test_fraction`` (0.2) of the
rows, chosen by a seeded hash of each row's id, so a row keeps its split when rows are added or
removed elsewhere.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import datetime
import hashlib
import itertools
import json
import math
import re
from decimal import Decimal
from pathlib import Path
from string import ascii_uppercase
from typing import Any, Iterable, Literal

from fair_core.config import ANSWER_KINDS, SOURCE_KEYS, Columns
from fair_core.errors import DataError
from fair_core.task import Problem

from .base import SPLITS, LocalTask, Record, hub_rows, parse_json, read_jsonl, read_text
from .extract import (
    extract_letter,
    extract_number,
    extract_pattern,
    extract_text,
    extract_yes_no,
    free_answer,
    match_option,
    normal_text,
    numbers_equal,
    parse_number,
)
from .prompts import CHOICE, NUMBER, PAPER_CHOICE, PAPER_NUMBER, PAPER_TEXT, PAPER_YES_NO, TEXT, YES_NO

TEST_FRACTION = 0.2
# the characters a CSV cell may hold: a long passage, where csv's default is 128 KiB (the most a C long holds)
CELL_LIMIT = 2**31 - 1
Row = tuple[str, dict, str]  # (where it came from, for errors; the record; the problem's id)
FILE_KINDS = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")
# the test split of a folder or hub dataset that names none: the first of these it has
TEST_SPLITS = ("test", "validation", "valid", "dev", "val")
_YES_NO = {"yes": "yes", "y": "yes", "true": "yes", "1": "yes", "no": "no", "n": "no", "false": "no", "0": "no"}
# the prompts of each answer kind: (default, the paper's protocol)
PROMPTS = {
    "number": (NUMBER, PAPER_NUMBER),
    "yes-no": (YES_NO, PAPER_YES_NO),
    "choice": (CHOICE, PAPER_CHOICE),
    "text": (TEXT, PAPER_TEXT),
}


class Dataset(LocalTask):
    """Problems from the rows of the user's data. Ids are the ``id`` column's, else the row's
    place ("row-3"; "<split>-3" where the data has splits of its own)."""

    name = "dataset"
    folder = ""
    files = ()
    source_keys = frozenset(SOURCE_KEYS)

    def __init__(
        self,
        data_dir: str | Path | None = None,
        prompts: Any = None,
        seed: int = 0,
        *,
        path: str | None = None,
        hub_id: str | None = None,
        hub_config: str | None = None,
        test_path: str | None = None,
        split: str | None = None,
        test_split: str | None = None,
        test_fraction: float | None = None,
        columns: Columns | dict | None = None,
        answer: str | None = None,
        license: str | None = None,
        description: str | None = None,
    ) -> None:
        if bool(path) == bool(hub_id):
            raise DataError(
                "task dataset needs one source: task.path (a .jsonl, .json, .csv, .tsv or .parquet file, or a "
                "save_to_disk folder) or task.hub_id"
            )
        if hub_config and not hub_id:
            raise DataError("task.hub_config names a configuration of task.hub_id: set hub_id, or remove hub_config")
        if test_path and hub_id:
            raise DataError(
                "task.test_path goes with task.path: with task.hub_id, name its test split (task.test_split)"
            )
        if test_path and (test_split or test_fraction):
            raise DataError("task.test_path gives the test split: remove task.test_split and task.test_fraction")
        if test_split and test_fraction:
            raise DataError("task.test_split and task.test_fraction both choose the test split: keep one")
        if test_split and test_split == (split or "train"):
            raise DataError(
                f"task.test_split {test_split!r} is the train split too: name another split, or use task.test_fraction"
            )
        self.kind = answer or "text"
        self.pattern = re.compile(self.kind.removeprefix("regex:")) if self.kind.startswith("regex:") else None
        if self.pattern is None and self.kind not in ANSWER_KINDS:
            raise DataError(f"task.answer {self.kind!r}: use one of {', '.join(ANSWER_KINDS)}, or regex:<pattern>")
        self.default_prompts, paper = PROMPTS["text" if self.pattern else self.kind]
        self.presets = {"paper": paper}
        super().__init__(data_dir, prompts, seed, hub_id=hub_id)
        self.columns = columns if isinstance(columns, Columns) else Columns.model_validate(columns or {})
        self.path, self.test_path = path, test_path
        self.split, self.test_split, self.test_fraction = split, test_split, test_fraction
        self.license = license or "unknown"
        self.description = description
        self.upstream = hub_id and f"https://huggingface.co/datasets/{hub_id}"
        if hub_config:
            self.hub_options = {"name": hub_config}
        self.options = 4  # the most options any problem has: how many letters extract() reads
        self._looked = False  # whether extract() has loaded the data for its options
        self.first_index = 0  # what a choice's gold that is an index counts from

    # sources -------------------------------------------------------------------------------
    def local_folder(self) -> Path | None:
        """The file or folder ``task.path`` names: as given, else under the data folder."""
        return self._find(self.path) if self.path else None

    def _find(self, configured: str) -> Path:
        path = Path(configured).expanduser()
        if not path.exists() and not path.is_absolute() and self.data_dir and (self.data_dir / path).exists():
            path = self.data_dir / path
        if not path.exists():
            raise DataError(f"task dataset: {configured} does not exist: fix task.path (or task.test_path)")
        return path

    def read_local(self, path: Path) -> dict[str, list[Problem]]:
        if self.test_path:
            tests = self._find(self.test_path)
            if tests.resolve() == path.resolve():  # the test split would be the rows it trains on
                raise DataError(
                    "task.test_path names the file task.path names: name the test rows' own file, or remove "
                    "task.test_path (task.test_fraction then chooses them)"
                )
            train, test = self.split or "train", self.test_split or "test"
            return self._problems({"train": self._rows(path, train, "train"), "test": self._rows(tests, test, "test")})
        if path.is_dir():
            return self.read_hub(_from_disk(path), str(path))
        records = _read_json(path) if path.suffix.lower() == ".json" else None
        if isinstance(records, dict):  # {"train": [...], "dev": [...]}: named splits, as a folder's
            return self.read_hub(records, str(path))
        self._unsplit(path, "one file")
        rows = self._rows(path, "", "row") if records is None else self._identified(str(path), records, "row")
        return self._problems(self._divide(rows))

    def read_hub(self, dataset: Any, where: str | None = None) -> dict[str, list[Problem]]:
        """A ``DatasetDict`` (or one ``Dataset``) from the hub, or from the file or folder ``where``."""
        where = where or self.hub_id
        if not hasattr(dataset, "keys"):  # one split saved alone
            self._unsplit(where, "one split")
            return self._problems(self._divide(self._identified(where, _numbered(where, dataset), "row")))
        names = list(dataset.keys())
        train = self.split or "train"
        if train not in names:
            raise DataError(
                f"task dataset: {where} has no split {train!r}: set task.split to one of {', '.join(names)}"
            )
        named = next((name for name in TEST_SPLITS if name in names and name != train), None)
        test = self.test_split or (None if self.test_fraction else named)
        if test is not None and test not in names:
            raise DataError(
                f"task dataset: {where} has no split {test!r}: set task.test_split to one of {', '.join(names)}, "
                f"or task.test_fraction"
            )
        names_read = {name for name in (train, test) if name is not None}
        rows = {name: self._identified(where, hub_rows(dataset, where, name), name) for name in names_read}
        if test and not self.test_split and rows[test] and _field(rows[test][0][1], self.columns.answer) in (None, ""):
            others = "".join(f"task.test_split = {name!r} or " for name in names if name not in (train, test))
            raise DataError(  # as the hub's CommonsenseQA, whose test answers are held back
                f"task dataset: {where}'s {test} split has no answers (its row 0 has no {self.columns.answer!r}): "
                f"set {others}task.test_fraction"
            )
        return self._problems({"train": rows[train], "test": rows[test]} if test else self._divide(rows[train]))

    def _unsplit(self, where: str | Path, what: str) -> None:
        """Split names are for data that has named splits."""
        if self.split or self.test_split:
            raise DataError(
                f"task dataset: {where} is {what}, without named splits: remove task.split and task.test_split "
                f"(give the test rows as task.test_path, or choose them with task.test_fraction)"
            )

    def _rows(self, path: Path, split: str, prefix: str) -> list[Row]:
        """The rows of one file, or of one split of a save_to_disk folder, with their ids."""
        if path.is_dir():
            dataset = _from_disk(path)
            if not hasattr(dataset, "keys"):
                return self._identified(str(path), _numbered(str(path), dataset), prefix)
            if split not in dataset:
                raise DataError(
                    f"task dataset: {path} has no split {split!r}: set task.split or task.test_split to one of "
                    f"{', '.join(dataset.keys())}"
                )
            return self._identified(str(path), hub_rows(dataset, str(path), split), prefix)
        suffix = path.suffix.lower()
        if suffix in (".jsonl", ".ndjson"):
            records = read_jsonl(path)
        elif suffix == ".json":
            read = _read_json(path)
            if isinstance(read, dict):  # named splits: only task.path may hold them
                raise DataError(
                    f"{path}: a JSON object that holds lists of rows under {', '.join(read)}; the rows are a JSON "
                    f'array of objects (pandas writes one with to_json(orient="records")), or one list a split '
                    f"as task.path"
                )
            records = read
        elif suffix in (".csv", ".tsv"):
            records = _read_csv(path, "\t" if suffix == ".tsv" else ",")
        elif suffix == ".parquet":
            records = _read_parquet(path)
        else:
            raise DataError(
                f"task dataset: cannot tell the format of {path} from its name: use one of {', '.join(FILE_KINDS)}, "
                f"or a datasets.save_to_disk folder"
            )
        return self._identified(str(path), records, prefix)

    def _identified(self, source: str, records: Iterable[Record], prefix: str) -> list[Row]:
        """(where, record, id) for each record of ``source``; the configured columns checked
        against its first record, the hint column (which some rows may lack) against them all."""
        rows: list[Row] = []
        seen: dict[str, str] = {}
        for index, (where, record) in enumerate(records):
            if index == 0:
                self._check_columns(source, record)
            problem_id = self._id(record, where, index, prefix)
            if problem_id in seen:
                _twice(problem_id, where, seen[problem_id])
            seen[problem_id] = where
            rows.append((where, record, problem_id))
        if not rows:
            raise DataError(f"{source}: no rows (is it empty, or only a header?)")
        hint = self.columns.hint
        if hint is not None and all(_field(record, hint) is _MISSING for _, record, _ in rows):
            _no_column(source, rows[0][1], "hint", hint)
        return rows

    def _divide(self, rows: list[Row]) -> dict[str, list[Row]]:
        """One source's rows as train and test: ``test_fraction`` of them by a seeded hash of
        each id (at least one row each way when there are two rows or more; one row trains)."""
        fraction = self.test_fraction or TEST_FRACTION
        ranks = [self._rank(problem_id) for _, _, problem_id in rows]
        test = {i for i, rank in enumerate(ranks) if rank < fraction}
        if len(rows) < 2:
            test = set()  # one row trains; there is nothing to test on
        elif not 0 < len(test) < len(rows):
            ordered = sorted(range(len(rows)), key=ranks.__getitem__)
            test = set(ordered[:1] if not test else ordered[:-1])
        return {
            "train": [row for i, row in enumerate(rows) if i not in test],
            "test": [row for i, row in enumerate(rows) if i in test],
        }

    def _rank(self, problem_id: str) -> float:
        digest = hashlib.sha256(f"{self.seed}:{problem_id}".encode()).hexdigest()
        return int(digest[:15], 16) / 16**15

    # rows -> problems ------------------------------------------------------------------------
    def _problems(self, splits: dict[str, list[Row]]) -> dict[str, list[Problem]]:
        """Every row checked and made a problem; an id used twice is refused, naming both rows."""
        out: dict[str, list[Problem]] = {split: [] for split in SPLITS}
        seen: dict[str, str] = {}
        self.first_index = self._first_index([row for split in SPLITS for row in splits[split]])
        for split in SPLITS:
            for where, record, problem_id in splits[split]:
                if problem_id in seen:
                    _twice(problem_id, where, seen[problem_id])
                seen[problem_id] = where
                out[split].append(self._problem(where, record, problem_id))
        return out

    def _first_index(self, rows: list[Row]) -> int:
        """What a choice's gold that is an index counts from: 1 where the data's do (one is its
        row's number of options and none is 0, as Social IQa's and Winogrande's), else 0."""
        if self.kind != "choice" or self.columns.choices is None:
            return 0
        indices = []
        for where, record, _ in rows:
            answer = _field(record, self.columns.answer)
            if isinstance(answer, (int, str)) and not isinstance(answer, bool) and str(answer).strip().isdigit():
                indices.append((int(str(answer)), len(self._options(record, where)[0])))
        return int(bool(indices) and all(i > 0 for i, _ in indices) and any(i == n for i, n in indices))

    def _check_columns(self, source: str, record: dict) -> None:
        """A column the config names that the first row lacks is a mistake in the config, not in
        the data: say which columns there are."""
        c = self.columns
        named = [("question", name) for name in _names(c.question)] + [("answer", c.answer), ("id", c.id)]
        named += [("choices", name) for name in ([c.choices] if isinstance(c.choices, str) else c.choices or [])]
        for key, column in named:
            if column is not None and _field(record, column) is _MISSING:
                _no_column(source, record, key, column)

    def _id(self, record: dict, where: str, index: int, prefix: str) -> str:
        if self.columns.id is None:
            return f"{prefix}-{index + 1}"
        value = _scalar(record, self.columns.id, where)
        if value is None or value == "":
            raise DataError(f"{where}: column {self.columns.id!r} (the id) is empty")
        return str(value)

    def _problem(self, where: str, record: dict, problem_id: str) -> Problem:
        c = self.columns
        parts = []
        names = _names(c.question)
        for name in names:  # a passage and a query: one paragraph each, an empty one none (alpaca's input)
            part = _scalar(record, name, where)
            if part is not None and not isinstance(part, str):
                raise DataError(f"{where}: column {name!r} (the question) is {_what(part)}: expected text")
            if part and part.strip():
                parts.append(part.strip())
        if not parts:
            raise DataError(
                f"{where}: column {names[0]!r} (the question) is empty: expected text"
                if len(names) == 1
                else f"{where}: columns {', '.join(map(repr, names))} (the question) are all empty"
            )
        question = "\n\n".join(parts)
        meta: dict[str, Any] = {}
        answer = _field(record, c.answer)
        free = self.kind == "text" or self.pattern is not None
        if free and isinstance(answer, str):  # a list column in a CSV cell, as pandas' to_csv writes one
            listed = _cell_list(answer)
            answer = listed if listed and all(isinstance(a, str) for a in listed) else answer
        if free and isinstance(answer, list):
            answer = self._answers(answer, where, meta)  # aliases, any of which is right
        else:
            answer = _scalar(record, c.answer, where)
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            raise DataError(f"{where}: column {c.answer!r} (the answer) is empty")
        labels: list[str] = []
        if c.choices is not None:
            options, labels = self._options(record, where)
            meta["options"] = options
            self.options = max(self.options, len(options))
            question = (
                question.rstrip()
                + "\nOptions:\n"
                + "\n".join(f"{letter}. {option}" for letter, option in zip(ascii_uppercase, options))
            )
        gold = self._gold(answer, where, meta.get("options"), labels)
        hint = _scalar(record, c.hint, where, optional=True) if c.hint is not None else None
        if hint is not None and str(hint).strip():
            meta["hint"] = str(hint).strip()
        elif self.kind == "number" and _number(str(answer)) is None:
            meta["hint"] = str(answer).strip()  # a worked solution that ends in its number, as GSM8K's
        return Problem(problem_id, question, gold, meta)

    def _options(self, record: dict, where: str) -> tuple[list[str], list[str]]:
        """The options, and the labels the gold may name them by where the data gives them
        (``{"text": [...], "label": ["1", ...]}``, as ARC and CommonsenseQA on the hub)."""
        c = self.columns
        labels: Any = None
        cell_hint = ""  # how a cell's text was cut into options, for the error
        if isinstance(c.choices, list):
            values = [_scalar(record, name, where) for name in c.choices]
            options = [str(v).strip() if v is not None else "" for v in values]
            while options and not options[-1]:
                options.pop()  # fewer options than columns
            if "" in options:
                name = c.choices[options.index("")]
                raise DataError(
                    f"{where}: column {name!r} (a choice) is empty but a later one is not: the letters would shift"
                )
        else:
            column = c.choices or ""
            value = _field(record, column)
            if isinstance(value, dict) and "text" in value:
                value, labels = value["text"], value.get("label")
            elif isinstance(value, dict):  # {"A": "Mars", "B": "Jupiter"}: the options by their labels
                value, labels = list(value.values()), list(value)
            elif isinstance(value, list) and value and all(isinstance(v, dict) and "text" in v for v in value):
                # [{"text": "Mars", "label": "A"}, ...], as ARC's own files
                value, labels = [v["text"] for v in value], [v.get("label", "") for v in value]
            elif column.endswith(".text"):  # "choices.text": its labels are "choices.label"
                labels = _field(record, column.removesuffix(".text") + ".label")
            if isinstance(value, str):  # a CSV cell: a JSON list, else options one a line or split by "|"
                value = _cell_list(value) or [v for v in re.split(r"\n|\|", value) if v.strip()]
                cell_hint = ' (a cell holds a list, ["x", "y"], or options split by "|" or one a line)'
            if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
            ):
                raise DataError(
                    f"{where}: column {column!r} (the choices) is {_what(value)}: expected a list of options, "
                    f"each text or a number"
                )
            options = [str(v).strip() for v in value]
        if not 2 <= len(options) <= 26:
            raise DataError(f"{where}: {len(options)} choices: a multiple-choice item needs 2 to 26{cell_hint}")
        lettered = [_LETTERED.fullmatch(option) for option in options]
        if all(m and m[1].upper() == letter for m, letter in zip(lettered, ascii_uppercase)):
            options = [m[2] for m in lettered if m]  # "A) 21", "B) 24": lettered again when shown
        fits = isinstance(labels, list) and len(labels) == len(options)
        return options, [str(label).strip() for label in labels] if fits else []

    def _answers(self, values: list, where: str, meta: dict) -> str | None:
        """A free-text answer given as a list of equally right ones (TriviaQA's aliases, SQuAD's
        answers): the first is the gold the prompts show, all are kept in ``meta["answers"]``."""
        answers = [str(v).strip() for v in values if isinstance(v, (str, int, float)) and str(v).strip()]
        if len(answers) != len(values):
            raise DataError(
                f"{where}: column {self.columns.answer!r} (the answer) is a list with an item that is not text"
            )
        if len(answers) > 1:
            meta["answers"] = answers
        return answers[0] if answers else None

    def _gold(self, answer: Any, where: str, options: list[str] | None, labels: list[str]) -> str:
        """The gold answer in the form the task's reading of an output gives."""
        column = self.columns.answer
        if isinstance(answer, (dict, list)):
            raise DataError(f"{where}: column {column!r} (the answer) is {_what(answer)}: expected a single value")
        text = str(answer).strip()
        if self.kind == "number":
            if isinstance(answer, bool):
                raise DataError(f"{where}: column {column!r} (the answer) is {answer!r}: expected a number")
            # a bare number, or what a phrase or worked solution concludes ("5 km", "... #### 72"); not
            # the tail of one word ("1.5k")
            gold = _number(text) or (extract_number(text) if re.search(r"\s", text) else None)
            if gold is None:
                raise DataError(f"{where}: column {column!r} (the answer) {text[:60]!r} is not a number")
            return gold
        if self.kind == "yes-no":
            # a boolean; a word; 1 or 0 however written (pandas writes a label column with gaps as 1.0, 0.0)
            gold = ("yes" if answer else "no") if isinstance(answer, bool) else _YES_NO.get(text.lower().rstrip("."))
            gold = gold or _YES_NO.get(_number(text) or "")
            if gold is None:
                raise DataError(f"{where}: column {column!r} (the answer) {text[:60]!r} is not yes/no or true/false")
            return gold
        if self.kind == "choice":
            letter = self._letter(answer, text, where, options, labels)
            # outputs are read for every letter a gold is: an "E" with the options in the question
            self.options = max(self.options, ascii_uppercase.index(letter) + 1)
            return letter
        return text

    def _letter(self, answer: Any, text: str, where: str, options: list[str] | None, labels: list[str]) -> str:
        """A choice's gold as its letter: given as the option's label where the data labels them
        (ARC's "1".."4"), as the letter, as the letter and the option ("B. Jupiter"), as the
        option's text, or as an index into the choices (from 0, or 1: ``first_index``)."""
        count = len(options) if options else 26
        if text in labels:
            return ascii_uppercase[labels.index(text)]
        letter = re.fullmatch(r"\(?([A-Za-z])[.)]?", text)
        if letter and letter[1].upper() in ascii_uppercase[:count]:
            return letter[1].upper()
        if options:
            lettered = _LETTERED.fullmatch(text)
            index = ascii_uppercase.find(lettered[1].upper()) if lettered else -1
            if lettered and 0 <= index < count and normal_text(options[index]) == normal_text(lettered[2]):
                return ascii_uppercase[index]
            same = [i for i, option in enumerate(options) if normal_text(option) == normal_text(text)]
            if len(same) == 1:
                return ascii_uppercase[same[0]]
            if not isinstance(answer, float) and text.isdigit() and 0 <= int(text) - self.first_index < count:
                return ascii_uppercase[int(text) - self.first_index]
        choices = f"a letter A-{ascii_uppercase[count - 1]}"
        choices += f", an option's text or its {self.first_index}-based index" if options else ""
        raise DataError(f"{where}: column {self.columns.answer!r} (the answer) {text[:60]!r} is not {choices}")

    # reading and judging outputs -------------------------------------------------------------
    def extract(self, text: str) -> str | None:
        if self.pattern is not None:
            return extract_pattern(text, self.pattern)
        if self.kind == "number":
            return extract_number(text)
        if self.kind == "yes-no":
            return extract_yes_no(text)
        if self.kind == "choice":
            if self._splits is None and not self._looked:  # a resumed run's stage: the letters are the data's
                self._looked = True
                with contextlib.suppress(DataError):  # moved since (a run dir copied elsewhere): A-D, as known
                    self.load("train")
            return extract_letter(text, self.options)
        return extract_text(text)

    def extract_for(self, problem: Problem, text: str) -> str | None:
        """As ``extract``, knowing the problem: its question's numbers, its own options (a
        quoted option's text counts as its letter)."""
        if self.pattern is None and self.kind == "number":
            return extract_number(text, problem.question)
        if self.pattern is None and self.kind == "yes-no":
            return extract_yes_no(text, problem.question)
        options = list(problem.meta.get("options") or ())
        if self.pattern is None and self.kind == "choice" and options:
            return extract_letter(text, len(options)) or match_option(text, options, words=True)
        return self.extract(text)

    def grade(self, problem: Problem, text: str) -> tuple[str | None, bool]:
        """As every task grades, where any of a problem's answers (``meta["answers"]``) is right."""
        got, right = super().grade(problem, text)
        return got, right or any(self.is_correct(got, other) for other in problem.meta.get("answers", ()))

    def is_correct(self, predicted: str | None, gold: str) -> bool:
        if predicted is None:
            return False
        if self.kind == "number":
            return numbers_equal(predicted, gold)
        if self.kind in ("yes-no", "choice"):
            return predicted == gold
        number, expected = parse_number(predicted), parse_number(gold)
        if number is not None and expected is not None:  # free text that is a number: "72" is "72.0", "1,234" is "1234"
            return numbers_equal(number, expected)
        return normal_text(gold) in (normal_text(predicted), normal_text(free_answer(predicted)))

    def hint(self, problem: Problem) -> str:
        return problem.meta.get("hint", problem.gold)


_MISSING = object()
# an option that carries its letter: "A) 21", "(B) Jupiter", "C. Venus"
_LETTERED = re.compile(r"\(?([A-Za-z])\s*[.):]\s*(.+)", re.S)
# a gold number written with a decimal comma: "2,5", "1.234,5" (not "1,234", which is 1234)
_DECIMAL_COMMA = re.compile(r"[-\u2212]?\d{1,3}(?:\.\d{3})*,\d+|[-\u2212]?\d+,\d+")
# a gold number in scientific notation, as Python writes a float (1e+20, 1.5e-05) and spreadsheets a
# small one (1.5E-05); a short exponent, so the written-out number stays short
_SCIENTIFIC = re.compile(r"-?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d{1,3}")


def _number(text: str) -> str | None:
    """A gold that is a bare number, canonical: as ``parse_number`` reads it, or with a leading
    "+" or a decimal comma, as spreadsheets in many locales write it."""
    text = text.strip().removeprefix("+")
    found = parse_number(text)
    if found is None and _DECIMAL_COMMA.fullmatch(text):
        found = parse_number(text.replace(".", "").replace(",", "."))
    if found is None and _SCIENTIFIC.fullmatch(text):  # str(1e20) is "1e+20"
        found = parse_number(format(Decimal(text), "f"))
    return found


def _no_column(source: str, record: dict, key: str, column: str) -> None:
    several = ', or to a list of columns (["A", "B", "C", "D"])' if key == "choices" else ""
    raise DataError(
        f"{source}: no column {column!r} (its columns: {', '.join(map(str, record)) or 'none'}): "
        f"set task.columns.{key} to the column that holds it{several}"
    )


def _twice(problem_id: str, where: str, first: str) -> None:
    raise DataError(
        f"{where}: id {problem_id!r} is used twice (also at {first}): give every row its own id, "
        f"or remove task.columns.id"
    )


def _field(record: dict, column: str) -> Any:
    """``record[column]``; a dotted name reads a nested field ("meta.answer"), or an item of a
    list by its index ("messages.0.content"), unless the record has a column of that very name.
    _MISSING where there is none."""
    if column in record:
        return record[column]
    value: Any = record
    for part in column.split("."):
        if isinstance(value, list) and part.isdecimal() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def _scalar(record: dict, column: str, where: str, optional: bool = False) -> Any:
    """A column's value, which must be one value (text, a number, true/false) or empty (None:
    pandas writes an empty cell as NaN). ``optional``: a row without the column has it empty."""
    value = _field(record, column)
    if value is _MISSING:
        if optional:
            return None
        raise DataError(f"{where}: no column {column!r}")
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (Decimal, datetime.date, datetime.time)):  # Parquet's decimal and date columns
        return str(value)
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise DataError(f"{where}: column {column!r} is {_what(value)}: expected a single value")
    return value


def _names(columns: str | list[str]) -> list[str]:
    return [columns] if isinstance(columns, str) else list(columns)


def _what(value: Any) -> str:
    if value is None or value is _MISSING:
        return "empty"
    if isinstance(value, str):
        return "empty" if not value.strip() else f"{value[:40]!r}"
    kind = type(value).__name__
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} ({str(value)[:40]})"


def _cell_list(text: str) -> list | None:
    """A list written in a cell: as JSON, or as Python writes one (pandas' ``to_csv`` of a list
    column: ``['Mars', "Earth's moon"]``)."""
    if not text.lstrip().startswith("["):
        return None
    for read in (json.loads, ast.literal_eval):
        try:
            value = read(text)
        except (ValueError, SyntaxError, RecursionError, MemoryError):  # a cell nested past the stack
            continue
        return value if isinstance(value, list) else None
    return None


def _read_json(path: Path) -> list[Record] | dict[str, list]:
    """A JSON array of objects, or an object that holds one under one key (``{"version": 2,
    "data": [...]}``), as (``"<file> item <i>"``, object) pairs; JSON Lines saved as ".json" (as
    datasets' ``to_json`` writes it) is read as JSON Lines, and one object with a plain value as
    one row. An object that holds several lists of rows (``{"train": [...], "test": [...]}``) is
    its splits by name, each the list of rows."""
    text = read_text(path)
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []  # no rows, which the caller says
    if len(lines) > 1 and _json_object(lines[0]):
        return read_jsonl(path, text)
    data = parse_json(text, path)
    where = str(path)
    if isinstance(data, dict):
        keys = [key for key, value in data.items() if isinstance(value, list) and value and isinstance(value[0], dict)]
        if len(keys) > 1:
            return {key: data[key] for key in keys}
        if not keys and any(not isinstance(value, (dict, list)) for value in data.values()):
            return [(f"{path} item 0", data)]  # one row: JSON Lines of one line, as datasets' to_json writes it
        if not keys:
            raise DataError(
                f"{path}: a JSON object that holds no list of rows; the rows are a JSON array of objects "
                f'(pandas writes one with to_json(orient="records"))'
            )
        where, data = f"{path} {keys[0]}", data[keys[0]]
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of objects")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise DataError(f"{where} item {i}: expected a JSON object, not {_what(item)}")
    return [(f"{where} item {i}", item) for i, item in enumerate(data)]


def _json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def _read_csv(path: Path, delimiter: str, quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL) -> list[Record]:
    """A CSV or TSV file with a header row (after any blank lines), as (``"<file>:<line>"``, row)
    pairs; cells are text, a header's names are taken without outer spaces, and a cell's line
    breaks are "\\n". A ".csv" whose header has no comma but semicolons or tabs is read with
    those, as spreadsheets in many locales write it. A tab-separated file whose quotes do not
    quote cells is read as written: many quote nothing (GLUE's), so a quote there is text."""
    line = 0
    csv.field_size_limit(CELL_LIMIT)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header, skipped = f.readline(), 0
            while header and not header.strip():
                header, skipped = f.readline(), skipped + 1
            line = skipped + 1  # the header's
            if delimiter == "," and "," not in header:
                delimiter = next((other for other in ";\t" if other in header), delimiter)
            reader = csv.DictReader(itertools.chain([header], f), delimiter=delimiter, quoting=quoting, strict=True)
            reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
            twice = next((name for name in reader.fieldnames if name and reader.fieldnames.count(name) > 1), None)
            if twice is not None:  # DictReader would keep the last cell of the two
                raise DataError(f"{path}:{line}: the header names column {twice!r} twice: rename one")
            rows = []
            for row in reader:
                line = reader.line_num + skipped
                if None in row:
                    raise DataError(f"{path}:{line}: more cells than the header's {len(reader.fieldnames)} columns")
                if any(v is not None and v.strip() for v in row.values()):
                    cells = {k: v.replace("\r\n", "\n") if v else None for k, v in row.items()}
                    rows.append((f"{path}:{line}", cells))
            return rows
    except UnicodeDecodeError:
        try:
            read_text(path)
        except DataError as e:  # names the line
            raise DataError(f"{e} (Excel: CSV UTF-8)") from None
        raise
    except csv.Error as e:
        if delimiter == "\t" and quoting != csv.QUOTE_NONE:
            return _read_csv(path, delimiter, csv.QUOTE_NONE)
        raise DataError(
            f"{path}:{line + 1}: not valid CSV ({e}): a cell with a quote, a separator or a line break is quoted "
            f'whole, its own quotes doubled ("She said ""hi""")'
        ) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror}") from None


def _read_parquet(path: Path) -> list[Record]:
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - pyarrow's errors have no common base worth naming
        raise DataError(f"{path}: not a readable Parquet file ({type(e).__name__}: {str(e)[:120]})") from None
    return [(f"{path} row {i}", row) for i, row in enumerate(table.to_pylist())]


def _from_disk(path: Path) -> Any:
    try:
        from datasets import load_from_disk

        return load_from_disk(str(path))
    except FileNotFoundError:
        raise DataError(
            f"{path}: not a datasets.save_to_disk folder (no dataset_dict.json): for a folder of files, set "
            f"task.path to the train file and task.test_path to the test file"
        ) from None
    except Exception as e:  # noqa: BLE001 - a damaged folder: the same fix whatever datasets raises
        raise DataError(f"{path}: cannot load it with datasets.load_from_disk ({type(e).__name__})") from None


def _numbered(where: str, dataset: Any) -> Iterable[Record]:
    return ((f"{where} row {i}", dict(row)) for i, row in enumerate(dataset))
