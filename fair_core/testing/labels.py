"""The hand-labelled answer set (tests/data/answer_labels.jsonl) joined to the paper's outputs.

Each label line names a task, a paper item id and the answer a person read in that item's
output; the output itself stays in ../shared/data/fair-reference. The test that holds the
reader to its agreement and the benchmark that compares readers both load it here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Mapping

from ..paper import read
from ..task import Problem, Task, data_root

LABELS = Path(__file__).resolve().parents[2] / "tests" / "data" / "answer_labels.jsonl"
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
