"""The hand-labelled answer sets that hold the answer reader to how a person reads an output.

tests/data/answer_labels.jsonl names a task, a paper item id and the answer a person read in that
item's output; the output itself stays in ../shared/data/fair-reference. The test that holds the
reader to its agreement and the benchmark that compares readers both load it here.
tests/data/answer_outputs.jsonl carries its outputs, questions and golds itself (other models and
styles; a held-out part): see tests/data/README.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Mapping

from ..paper import read
from ..task import Problem, Task, data_root

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
LABELS = DATA / "answer_labels.jsonl"
OUTPUTS = DATA / "answer_outputs.jsonl"
FILES = {
    "svamp": "Llama-2-7b-chat-hf_svamp_false_round0.json",
    "strategyqa": "Llama-2-7b-chat-hf_strategyQA_false_round0.json",
}


def labelled(tasks: Mapping[str, Task]) -> Iterator[tuple[dict, Task, Problem, str]]:
    """(label row, its task, the problem with its gold, the model's output), in file order."""
    root = data_root()
    if root is None:
        raise FileNotFoundError("the labelled outputs need the data folder: set FAIR_DATA_DIR")
    ref = root / "fair-reference"
    items = {name: {x["id"]: x for x in read(ref / FILES[name])} for name in tasks}
    for line in LABELS.read_text().splitlines():
        row = json.loads(line)
        x, task = items[row["task"]][row["id"]], tasks[row["task"]]
        gold = task.extract(x["gold_answer"].split("\t")[0])  # StrategyQA's: "true.<TAB>facts"
        yield row, task, Problem(str(x["id"]), x["question"], gold or ""), x["student_wrong_pred"]


def outputs(tasks: Mapping[str, Task], part: str | None = None) -> Iterator[tuple[dict, Task, Problem, str]]:
    """As ``labelled``, for answer_outputs.jsonl: its ``part`` ("dev" or "heldout"), or all."""
    for line in OUTPUTS.read_text().splitlines():
        row = json.loads(line)
        if part is None or row["part"] == part:
            yield row, tasks[row["task"]], Problem(row["item"], row["question"], row["gold"]), row["output"]


def agrees(task: Task, read: str | None, label: str | None) -> bool:
    """Whether the answer read is the labelled one: both none, or equal as the task compares answers."""
    return read == label if read is None or label is None else task.is_correct(read, label)
