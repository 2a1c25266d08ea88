"""A paired, continuous measure of what training taught, without generating: teacher-forced scores
of held-out reference rationales.

Accuracy on a few hundred items cannot tell two small students apart (at 5% discordance McNemar
needs about 940 items to see 2.6 points), and a greedy answer moves with format as much as with
reasoning. So a student is also scored by how likely it finds the teachers' own rationales for
questions it never trained on, under the prompt it trained with: per item, the mean log-probability
per token of the rationales whose answer is right (the *rationale score*), and that less the same
for the wrong ones (the *margin*, on items having both). Right and wrong are read by the task's
answer reader against the gold, not by review, so the measure does not favour the arm that used
review to choose. Every item's values are kept, so arms compare item by item, and every text's
score with the teacher who wrote it (a student trained on more of one teacher's rationales finds
all of that teacher's texts likelier, right and wrong: the *margin within teachers* takes each
teacher's mean out first).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

from ..errors import FairError
from ..runs.records import teacher_of
from ..runs.splits import fingerprint
from ..runs.store import Store
from ..student import Student
from ..task import Problem, Task


@dataclass(frozen=True)
class Reference:
    item_id: str
    prompt: str
    text: str
    correct: bool
    author: str


def references(store: Store, task: Task, round_: int = 0) -> list[Reference]:
    """A run's round's rationales (its teachers' solutions of its mistakes) as references, in the
    form the student trains on (Task.rationale_target); one from which the reader takes no answer
    is neither right nor wrong, and is left out."""
    mistakes = {m.item_id: m for m in store.mistakes(round_)}
    out = []
    for w in sorted(store.writings(round_), key=lambda w: (w.item_id, w.author)):
        m = mistakes.get(w.item_id)
        if w.kind != "rationale" or m is None:
            continue
        answer, correct = task.grade(Problem(m.item_id, m.question, m.gold), w.text)
        if answer is not None:
            prompt = task.prompt("learn_rationale", question=m.question)
            out.append(Reference(m.item_id, prompt, task.rationale_target(w.text), correct, w.author))
    return out


def read(run: Path, task: Task) -> list[Reference]:
    """The references of the run in ``run`` (round 0), read from its store; none is an error."""
    store = Store(run / "run.sqlite", readonly=True)
    try:
        refs = references(store, task)
    finally:
        store.close()
    if not refs:
        raise FairError(
            f"{run} holds no teacher rationale in which the task's reader finds an answer: nothing to "
            "score; run its solve stage, or hold out more items"
        )
    return refs


def digest(refs: list[Reference]) -> str:
    """Which references these are: two scores compare only when this is the same."""
    return fingerprint([f"{r.item_id}\t{r.author}\t{r.correct}\t{r.text}" for r in refs])


def score(student: Student, refs: list[Reference], on_progress=None) -> dict:
    """Per item, the mean score of its right rationales and of its wrong ones (None where it has
    none); per text, its score, with its item, author and class."""
    values = student.score([(r.prompt, r.text) for r in refs], on_progress)
    items: dict[str, dict[str, list[float]]] = {}
    for r, v in zip(refs, values):
        items.setdefault(r.item_id, {"correct": [], "wrong": []})["correct" if r.correct else "wrong"].append(v)
    return {
        "references": digest(refs),
        "items": {
            i: {k: round(fmean(vs), 6) if vs else None for k, vs in parts.items()} for i, parts in sorted(items.items())
        },
        "texts": [
            {"item": r.item_id, "author": r.author, "correct": r.correct, "score": round(v, 6)}
            for r, v in zip(refs, values)
        ],
    }


def rationale_scores(scored: dict) -> dict[str, float]:
    """Item -> its right rationales' mean score, on items having any."""
    return {i: v["correct"] for i, v in scored["items"].items() if v["correct"] is not None}


def margins(scored: dict) -> dict[str, float]:
    """Item -> right less wrong, on items having both."""
    return {
        i: v["correct"] - v["wrong"]
        for i, v in scored["items"].items()
        if v["correct"] is not None and v["wrong"] is not None
    }


def margins_within_teachers(scored: dict) -> dict[str, float]:
    """Item -> right less wrong, each text's score less its teacher's mean over all the texts
    scored: an arm's liking for one teacher's style moves that teacher's texts alike and cancels,
    so what is left compares right with wrong within each teacher."""
    by_teacher = defaultdict(list)
    for t in scored["texts"]:
        by_teacher[teacher_of(t["author"])].append(t["score"])
    mean = {teacher: fmean(scores) for teacher, scores in by_teacher.items()}
    items: dict[str, tuple[list[float], list[float]]] = {}
    for t in scored["texts"]:
        right, wrong = items.setdefault(t["item"], ([], []))
        (right if t["correct"] else wrong).append(t["score"] - mean[teacher_of(t["author"])])
    return {i: fmean(right) - fmean(wrong) for i, (right, wrong) in sorted(items.items()) if right and wrong}


METRICS = {"rationale score": rationale_scores, "margin": margins, "margin within teachers": margins_within_teachers}


def load(path: Path, refs: list[Reference]) -> dict | None:
    """A stored scoring of these references, or None (missing, or of other references)."""
    try:
        scored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return scored if isinstance(scored, dict) and scored.get("references") == digest(refs) else None
