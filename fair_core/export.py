"""Export a run's committee data (the paper's JSON, JSONL records, a `datasets` folder) or the
split it scored on."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .errors import FairError
from .paper import export_files
from .rundir import write_atomic
from .splits import fingerprint
from .store import Store


def records(store: Store, round: int) -> list[dict]:
    """One record per mistake: the question, the student's answer, every writing with its reviews
    and verdict."""
    writings, reviews, verdicts = store.writings(round), store.reviews(round), store.verdicts(round)
    out = []
    for m in store.mistakes(round):
        items = []
        for w in (w for w in writings if w.item_id == m.item_id):
            v = next((v for v in verdicts if v.item_id == w.item_id and v.kind == w.kind and v.author == w.teacher), None)
            items.append({"kind": w.kind, "teacher": w.teacher, "text": w.text,
                          "reviews": [{"reviewer": r.reviewer, "score": r.score, "raw": r.raw} for r in reviews
                                      if r.item_id == w.item_id and r.kind == w.kind and r.author == w.teacher],
                          "accepted": v.accepted if v else None})
        out.append({"round": round, "item_id": m.item_id, "question": m.question, "gold": m.gold,
                    "student_output": m.wrong_output, "student_answer": m.wrong_answer, "writings": items})
    return out


def split(store: Store) -> dict:
    """The item ids a run trains on and scores, and each test item it left out with why: two
    runs whose ``test_set`` match scored the same items."""
    ids = {name: [row["item_id"] for row in store.items(name)] for name in ("train", "test")}
    if not ids["train"] and not ids["test"]:
        raise FairError("this run has not drawn its split yet: run its examine stage first")
    return {"test_set": fingerprint(ids["test"]) if ids["test"] else None, **ids, "left_out": store.left_out()}


def export(run_dir: Path, fmt: str, out: Path, round: int = 0) -> list[Path]:
    db = run_dir / "run.sqlite"
    if not db.exists():
        raise FairError(f"{run_dir} is not a run directory (no run.sqlite): pass the --run-dir of a run")
    store = Store(db)
    try:
        if fmt == "split":
            return [write_atomic(out / "split.json", json.dumps(split(store), indent=1, ensure_ascii=False) + "\n")]
        if not store.mistakes(round):
            raise FairError(f"run {run_dir} has no mistakes in round {round}: nothing to export")
        if fmt == "paper":
            return export_files(store, out, round)
        rows = records(store, round)
    finally:
        store.close()
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        return [write_atomic(out / f"round{round}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))]
    import datasets

    datasets.disable_progress_bars()
    path = out / f"round{round}"
    staging = out / f".round{round}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    datasets.Dataset.from_list(rows).save_to_disk(str(staging))
    shutil.rmtree(path, ignore_errors=True)
    os.replace(staging, path)
    return [path]
