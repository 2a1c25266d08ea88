"""Your own data as a task, by config alone (``[task] name = "dataset"``).

A file (JSONL, JSON, CSV or TSV, Parquet), a ``datasets.save_to_disk`` folder or a hub dataset;
``task.columns`` says which column holds what, ``task.answer`` how answers are read and judged.
Every row is checked when the data is first loaded, before anything is paid for: a bad one is a
DataError naming the file, the row and the column.

Splits: a second file (``test_path``), a named split of a folder or hub dataset (``test_split``,
``"test"`` where there is one), else ``test_fraction`` (0.2) of the rows, chosen by a seeded hash
of each row's id, so a row keeps its split when rows are added or removed elsewhere.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path
from string import ascii_uppercase
from typing import Any, Iterable

from fair_core.config import ANSWER_KINDS, SOURCE_KEYS, Columns
from fair_core.errors import DataError
from fair_core.task import Problem

from . import prompts
from .base import SPLITS, LocalTask, Record, hub_rows, read_json, read_jsonl
from .extract import (
    extract_letter,
    extract_number,
    extract_pattern,
    extract_text,
    extract_yes_no,
    match_option,
    normal_text,
    numbers_equal,
    parse_number,
)

TEST_FRACTION = 0.2
Row = tuple[str, dict, str]  # (where it came from, for errors; the record; the problem's id)
FILE_KINDS = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")
_YES_NO = {"yes": "yes", "y": "yes", "true": "yes", "1": "yes", "no": "no", "n": "no", "false": "no", "0": "no"}
# the prompts of each answer kind: (default, the paper's protocol)
PROMPTS = {
    "number": (prompts.NUMBER, prompts.PAPER_NUMBER),
    "yes-no": (prompts.YES_NO, prompts.PAPER_YES_NO),
    "choice": (prompts.CHOICE, prompts.PAPER_CHOICE),
    "text": (prompts.TEXT, prompts.PAPER_TEXT),
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
        if test_path and (test_split or test_fraction):
            raise DataError("task.test_path gives the test split: remove task.test_split and task.test_fraction")
        if test_split and test_fraction:
            raise DataError("task.test_split and task.test_fraction both choose the test split: keep one")
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
        self.options = 4  # the most options any problem has: how many letters extract() reads

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
            train, test = self.split or "train", self.test_split or "test"
            return self._problems({"train": self._rows(path, train, "train"), "test": self._rows(tests, test, "test")})
        if path.is_dir():
            return self.read_hub(_from_disk(path))
        return self._problems(self._divide(self._rows(path, "", "row")))

    def read_hub(self, dataset: Any) -> dict[str, list[Problem]]:
        """A ``DatasetDict`` (or one ``Dataset``) from the hub or a save_to_disk folder."""
        where = self.hub_id if self.hub_only else str(self._find(self.path or ""))
        if not hasattr(dataset, "keys"):  # one split saved alone
            return self._problems(self._divide(self._identified(where, _numbered(where, dataset), "row")))
        names = list(dataset.keys())
        train = self.split or "train"
        if train not in names:
            raise DataError(
                f"task dataset: {where} has no split {train!r}: set task.split to one of {', '.join(names)}"
            )
        test = self.test_split or ("test" if "test" in names and not self.test_fraction else None)
        if test is not None and test not in names:
            raise DataError(
                f"task dataset: {where} has no split {test!r}: set task.test_split to one of {', '.join(names)}, "
                f"or task.test_fraction"
            )
        rows = {name: self._identified(where, hub_rows(dataset, where, name), name) for name in {train, test} - {None}}
        return self._problems({"train": rows[train], "test": rows[test]} if test else self._divide(rows[train]))

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
            records = read_json(path)
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
        against its first record."""
        rows, seen = [], {}
        for index, (where, record) in enumerate(records):
            if index == 0:
                self._check_columns(source, record)
            problem_id = self._id(record, where, index, prefix)
            if problem_id in seen:
                _twice(problem_id, where, seen[problem_id])
            seen[problem_id] = where
            rows.append((where, record, problem_id))
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
        for split in SPLITS:
            for where, record, problem_id in splits[split]:
                if problem_id in seen:
                    _twice(problem_id, where, seen[problem_id])
                seen[problem_id] = where
                out[split].append(self._problem(where, record, problem_id))
        if not out["train"]:
            raise DataError(f"task dataset: {self.path or self.hub_id} has no train rows")
        return out

    def _check_columns(self, source: str, record: dict) -> None:
        """A column the config names that the first row lacks is a mistake in the config, not in
        the data: say which columns there are."""
        c = self.columns
        named = [("question", c.question), ("answer", c.answer), ("id", c.id), ("hint", c.hint)]
        named += [("choices", name) for name in ([c.choices] if isinstance(c.choices, str) else c.choices or [])]
        for key, column in named:
            if column is not None and _field(record, column) is _MISSING:
                raise DataError(
                    f"{source}: no column {column!r} (its columns: {', '.join(map(str, record)) or 'none'}): "
                    f"set task.columns.{key} to the column that holds it"
                )

    def _id(self, record: dict, where: str, index: int, prefix: str) -> str:
        if self.columns.id is None:
            return f"{prefix}-{index + 1}"
        value = _scalar(record, self.columns.id, where)
        if value is None or value == "":
            raise DataError(f"{where}: column {self.columns.id!r} (the id) is empty")
        return str(value)

    def _problem(self, where: str, record: dict, problem_id: str) -> Problem:
        c = self.columns
        question = _scalar(record, c.question, where)
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{where}: column {c.question!r} (the question) is {_what(question)}: expected text")
        answer = _scalar(record, c.answer, where)
        if answer is None or (isinstance(answer, str) and not answer.strip()):
            raise DataError(f"{where}: column {c.answer!r} (the answer) is empty")
        meta: dict[str, Any] = {}
        if c.choices is not None:
            options = self._options(record, where)
            meta["options"] = options
            self.options = max(self.options, len(options))
            question = (
                question.rstrip()
                + "\nOptions:\n"
                + "\n".join(f"{letter}. {option}" for letter, option in zip(ascii_uppercase, options))
            )
        gold = self._gold(answer, where, meta.get("options"))
        hint = _scalar(record, c.hint, where) if c.hint is not None else None
        if hint is not None and str(hint).strip():
            meta["hint"] = str(hint).strip()
        elif self.kind == "number" and parse_number(str(answer)) is None:
            meta["hint"] = str(answer).strip()  # a worked solution that ends in its number, as GSM8K's
        return Problem(problem_id, question, gold, meta)

    def _options(self, record: dict, where: str) -> list[str]:
        c = self.columns
        if isinstance(c.choices, list):
            values = [_scalar(record, name, where) for name in c.choices]
            options = [str(v).strip() for v in values if v is not None and str(v).strip()]
        else:
            value = _field(record, c.choices or "")
            if isinstance(value, str):  # a CSV cell: a JSON list, else options one a line or split by "|"
                value = _json_list(value) or [v for v in re.split(r"\n|\|", value) if v.strip()]
            if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
            ):
                raise DataError(f"{where}: column {c.choices!r} (the choices) is {_what(value)}: expected a list")
            options = [str(v).strip() for v in value]
        if not 2 <= len(options) <= 26:
            raise DataError(f"{where}: {len(options)} choices: a multiple-choice item needs 2 to 26")
        return options

    def _gold(self, answer: Any, where: str, options: list[str] | None) -> str:
        """The gold answer in the form the task's reading of an output gives."""
        column = self.columns.answer
        if isinstance(answer, (dict, list)):
            raise DataError(f"{where}: column {column!r} (the answer) is {_what(answer)}: expected a single value")
        text = str(answer).strip()
        if self.kind == "number":
            if isinstance(answer, bool):
                raise DataError(f"{where}: column {column!r} (the answer) is {answer!r}: expected a number")
            gold = parse_number(text) or extract_number(text)  # a bare number, or a worked solution's
            if gold is None:
                raise DataError(f"{where}: column {column!r} (the answer) {text[:60]!r} is not a number")
            return gold
        if self.kind == "yes-no":
            gold = ("yes" if answer else "no") if isinstance(answer, bool) else _YES_NO.get(text.lower().rstrip("."))
            if gold is None:
                raise DataError(f"{where}: column {column!r} (the answer) {text[:60]!r} is not yes/no or true/false")
            return gold
        if self.kind == "choice":
            return self._letter(answer, text, where, options)
        return text

    def _letter(self, answer: Any, text: str, where: str, options: list[str] | None) -> str:
        """A choice's gold as its letter: given as the letter, as the option's text, or as a
        0-based index into the choices."""
        count = len(options) if options else 26
        letter = re.fullmatch(r"\(?([A-Za-z])[.)]?", text)
        if letter and letter[1].upper() in ascii_uppercase[:count]:
            return letter[1].upper()
        if options:
            same = [i for i, option in enumerate(options) if normal_text(option) == normal_text(text)]
            if len(same) == 1:
                return ascii_uppercase[same[0]]
            if not isinstance(answer, float) and text.isdigit() and int(text) < count:
                return ascii_uppercase[int(text)]
        choices = f"a letter A-{ascii_uppercase[count - 1]}"
        choices += ", an option's text or its 0-based index" if options else ""
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
            return extract_letter(text, len(options)) or match_option(text, options)
        return self.extract(text)

    def is_correct(self, predicted: str | None, gold: str) -> bool:
        if predicted is None:
            return False
        if self.kind == "number":
            return numbers_equal(predicted, gold)
        if self.kind in ("yes-no", "choice"):
            return predicted == gold
        return normal_text(predicted) == normal_text(gold)

    def hint(self, problem: Problem) -> str:
        return problem.meta.get("hint", problem.gold)


_MISSING = object()


def _twice(problem_id: str, where: str, first: str) -> None:
    raise DataError(
        f"{where}: id {problem_id!r} is used twice (also at {first}): give every row its own id, "
        f"or remove task.columns.id"
    )


def _field(record: dict, column: str) -> Any:
    """``record[column]``; a dotted name reads a nested field ("meta.answer") unless the record
    has a column of that very name. _MISSING where there is none."""
    if column in record:
        return record[column]
    value: Any = record
    for part in column.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _scalar(record: dict, column: str, where: str) -> Any:
    """A column's value, which must be one value (text, a number, true/false) or empty (None)."""
    value = _field(record, column)
    if value is _MISSING:
        raise DataError(f"{where}: no column {column!r}")
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise DataError(f"{where}: column {column!r} is {_what(value)}: expected a single value")
    return value


def _what(value: Any) -> str:
    if value is None or value is _MISSING:
        return "empty"
    if isinstance(value, str):
        return "empty" if not value.strip() else f"{value[:40]!r}"
    return f"a {type(value).__name__} ({str(value)[:40]})"


def _json_list(text: str) -> list | None:
    import json

    if not text.lstrip().startswith("["):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def _read_csv(path: Path, delimiter: str) -> list[Record]:
    """A CSV or TSV file with a header row, as (``"<file>:<line>"``, row) pairs; cells are text.
    A ".csv" whose header has no comma but semicolons is read with semicolons, as spreadsheets in
    many locales write it."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header = f.readline()
            if delimiter == "," and "," not in header and ";" in header:
                delimiter = ";"
            f.seek(0)
            reader = csv.DictReader(f, delimiter=delimiter, strict=True)
            rows = []
            for row in reader:
                if None in row:
                    raise DataError(
                        f"{path}:{reader.line_num}: more cells than the header's {len(reader.fieldnames or [])} columns"
                    )
                if any(v is not None and v.strip() for v in row.values()):
                    rows.append((f"{path}:{reader.line_num}", {k: (v if v != "" else None) for k, v in row.items()}))
            return rows
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}): save it as UTF-8") from None
    except csv.Error as e:
        raise DataError(f"{path}: not valid CSV ({e})") from None
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
        raise DataError(f"{path}: not a datasets.save_to_disk folder (no dataset_dict.json)") from None
    except Exception as e:  # noqa: BLE001 - a damaged folder: the same fix whatever datasets raises
        raise DataError(f"{path}: cannot load it with datasets.load_from_disk ({type(e).__name__})") from None


def _numbered(where: str, dataset: Any) -> Iterable[Record]:
    return ((f"{where} row {i}", dict(row)) for i, row in enumerate(dataset))
