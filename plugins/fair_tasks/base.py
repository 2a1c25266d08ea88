"""What the built-in tasks share: local upstream files first, the Hugging Face hub second,
one-line DataErrors that name file and line, seeded splits, and lookup by question text."""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Iterator

from fair_core.errors import DataError
from fair_core.inputs import parse_json, read_text
from fair_core.task import Problem, Task

SPLITS = ("train", "test")
Record = tuple[str, dict]  # (where it came from, for errors; the upstream record)


class LocalTask(Task):
    """A task read from ``<data_dir>/<folder>/<files>`` when they are all there, else from
    ``hub_id`` through ``datasets.load_dataset``. Subclasses turn records into problems.

    ``hub_id`` given (``task.hub_id``) names another hub dataset with the upstream one's columns
    and splits (a mirror, a fork with fixes): it is read instead of any local files, without the
    upstream repo's load options (a config name, a revision)."""

    folder: ClassVar[str]
    files: ClassVar[tuple[str, ...]]
    hub_options: dict[str, str] = {}  # keyword arguments for load_dataset; a hub_id given clears them
    source_keys = frozenset({"hub_id"})

    def __init__(self, *args: Any, hub_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hub_only = bool(hub_id)
        if hub_id:
            self.hub_id, self.hub_options = hub_id, {}
        self._splits: dict[str, list[Problem]] | None = None
        self._questions: dict[str, Problem] | None = None

    @abstractmethod
    def read_local(self, folder: Path) -> dict[str, list[Problem]]:
        """Both splits from the upstream files in ``folder``."""

    @abstractmethod
    def read_hub(self, dataset: Any) -> dict[str, list[Problem]]:
        """Both splits from the hub's ``DatasetDict``, with the same ids as the local files."""

    # the Task contract ---------------------------------------------------------------------
    def load(self, split: str) -> list[Problem]:
        if split not in SPLITS:
            raise DataError(f"task {self.name}: unknown split {split!r}: use train or test")
        if self._splits is None:
            folder = None if self.hub_only else self.local_folder()
            self._splits = self.read_local(folder) if folder else self.read_hub(self._hub())
        return list(self._splits[split])

    def by_question(self, question: str) -> Problem | None:
        """The problem of either split whose question is exactly ``question`` (outer whitespace
        ignored); the train split wins on a duplicate. Maps released paper data onto problems."""
        if self._questions is None:
            self._questions = {}
            for split in SPLITS:
                for problem in self.load(split):
                    self._questions.setdefault(problem.question.strip(), problem)
        return self._questions.get(question.strip())

    # sources -------------------------------------------------------------------------------
    def local_folder(self) -> Path | None:
        if self.data_dir is None:
            return None
        folder = self.data_dir / self.folder
        return folder if all((folder / name).is_file() for name in self.files) else None

    def _hub(self) -> Any:
        try:
            from datasets import load_dataset

            return load_dataset(self.hub_id, **self.hub_options)
        except Exception as e:  # noqa: BLE001 - offline, missing package, hub error: all the same fix
            reason = (str(e).splitlines() or [""])[0][:160]
            failed = f"the hub dataset {self.hub_id} could not be loaded ({type(e).__name__}: {reason})"
            if self.hub_only:
                raise DataError(
                    f"task {self.name}: {failed}; check task.hub_id, and that the hub can be reached"
                ) from None
            local = (
                f"no {', '.join(self.files)} in {self.data_dir / self.folder}"
                if self.data_dir
                else "no data folder (FAIR_DATA_DIR is unset)"
            )
            raise DataError(
                f"task {self.name}: {local}, and {failed}; set FAIR_DATA_DIR or task.data_dir to a folder "
                f"that holds {self.folder}/"
            ) from None


# readers: every failure is a DataError naming the file (and the line when there is one), as
# fair_core.inputs reads untrusted files: not UTF-8, not JSON, or nested deep enough to crash
def read_json(path: Path) -> list[Record]:
    """A JSON array of objects, as (``"<file> item <i>"``, object) pairs."""
    data = parse_json(read_text(path), path)
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise DataError(f"{path}: expected a JSON array of objects")
    return [(f"{path} item {i}", item) for i, item in enumerate(data)]


def read_jsonl(path: Path, text: str | None = None) -> list[Record]:
    """One JSON object a line (blank lines skipped), as (``"<file>:<line>"``, object) pairs;
    ``text``: the file's, where the caller has read it already."""
    records = []
    for number, line in enumerate((read_text(path) if text is None else text).splitlines(), 1):
        if not line.strip():
            continue
        item = parse_json(line, path, number)
        if not isinstance(item, dict):
            raise DataError(f"{path}:{number}: expected a JSON object")
        records.append((f"{path}:{number}", item))
    return records


def hub_rows(dataset: Any, hub_id: str, split: str) -> Iterator[Record]:
    for i, row in enumerate(dataset[split]):
        yield f"{hub_id} {split} row {i}", dict(row)


def need(record: dict, key: str, where: str, kind: type | tuple[type, ...] = object) -> Any:
    """``record[key]``, or a DataError naming where the record came from."""
    if key not in record or not isinstance(record[key], kind):
        raise DataError(f"{where}: missing or malformed field {key!r}")
    return record[key]


def seeded_split(problems: list[Problem], test_size: int, seed: int) -> dict[str, list[Problem]]:
    """A deterministic split that depends only on the ids and the seed (not on file order or
    the Python version): the ``test_size`` ids with the smallest seeded hash are the test set.
    Both splits keep the source order."""

    def rank(problem: Problem) -> str:
        return hashlib.sha256(f"{seed}:{problem.id}".encode()).hexdigest()

    test_ids = {p.id for p in sorted(problems, key=rank)[:test_size]}
    return {"train": [p for p in problems if p.id not in test_ids], "test": [p for p in problems if p.id in test_ids]}
