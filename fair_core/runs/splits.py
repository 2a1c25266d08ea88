"""The items a run uses (:class:`RunItems`), drawn from its task's train and test splits: its train
items, the test items it scores, and those it leaves out.

An accuracy means something only on items the student never trained on. A task's own test
split is not enough: a ``mistakes_file`` recorded on another split of the same data (the
paper's SVAMP mistakes fall partly in our test split) and questions that appear in both splits
would be scored after being trained on. So a test item is left out, with its reason, when its
normalised question is one of the mistakes-file questions the run trains on (it moves to train),
a train question, or, at evaluation, a question some round trained on (compile records those).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..task import Problem, Task, data_root

IN_MISTAKES_FILE = "in the mistakes file (trained on)"
IN_TRAIN = "its question is also a train question"
TRAINED = "trained on"


def normal(question: str) -> str:
    """A question as compared across splits and sources: case, accents' forms, punctuation and
    spacing do not make two questions different."""
    text = unicodedata.normalize("NFKC", question).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


@dataclass
class RunItems:
    train: list[Problem]
    test: list[Problem]
    left_out: dict[str, str] = field(default_factory=dict)  # test item id -> why it is not scored


def mistakes_path(configured: str) -> Path:
    """``task.mistakes_file`` as given, else under the data folder (``fair-reference/...``)."""
    path, root = Path(configured), data_root()
    if not path.exists() and root:
        return root / path
    return path


def plan(
    task: Task,
    mistake_questions: Iterable[str] = (),
    train_limit: int | None = None,
    test_limit: int | None = None,
    train_offset: int = 0,
) -> RunItems:
    """The run's items: the task's splits, with mistakes-file items moved from test to train and test
    items that share a question with train left out; the limits apply to what remains, so a
    ``test_limit`` of 50 scores 50 clean items. ``train_offset`` passes over the first train
    items (those another run trains on, when this one holds references out)."""
    from_file = {normal(q) for q in mistake_questions}
    train = task.load("train")
    in_train = {normal(p.question) for p in train}
    test, left_out = [], {}
    for p in task.load("test"):
        key = normal(p.question)
        if key in from_file:
            left_out[p.id] = IN_MISTAKES_FILE
            train.append(p)
        elif key in in_train:
            left_out[p.id] = IN_TRAIN
        else:
            test.append(p)
    train = train[train_offset:]
    return RunItems(train[:train_limit] if train_limit else train, test[:test_limit] if test_limit else test, left_out)


def fingerprint(item_ids: list[str]) -> str:
    """A short digest of a set of item ids: two runs with the same one scored the same items."""
    return "sha256:" + hashlib.sha256("\n".join(sorted(item_ids)).encode()).hexdigest()[:16]
