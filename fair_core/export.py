"""Export a run: its committee data (the paper's JSON, JSONL records), its compiled training data
in the layouts other trainers read (see fair_core.formats), the split it scored on, or its
trained student (merged, GGUF: see fair_core.student_export). Every export carries a card,
README.md (see fair_core.card)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from . import formats
from .card import Facts, dataset_card
from .errors import FairError
from .paper import export_files
from .rundir import move_into, write_atomic
from .splits import fingerprint
from .store import StageStatus, Store
from .student_export import FORMATS as MODEL_FORMATS
from .student_export import export_student

FORMATS = ("paper", "jsonl", *formats.FORMATS, "split", *MODEL_FORMATS)


def records(store: Store, round: int) -> list[dict]:
    """One record per mistake: the question, the student's answer, every writing with its reviews
    and verdict."""
    writings, reviews, verdicts = store.writings(round), store.reviews(round), store.verdicts(round)
    out = []
    for m in store.mistakes(round):
        items = []
        for w in (w for w in writings if w.item_id == m.item_id):
            v = next(
                (v for v in verdicts if v.item_id == w.item_id and v.kind == w.kind and v.author == w.teacher), None
            )
            items.append(
                {
                    "kind": w.kind,
                    "teacher": w.teacher,
                    "text": w.text,
                    "reviews": [
                        {"reviewer": r.reviewer, "score": r.score, "raw": r.raw}
                        for r in reviews
                        if r.item_id == w.item_id and r.kind == w.kind and r.author == w.teacher
                    ],
                    "accepted": v.accepted if v else None,
                }
            )
        out.append(
            {
                "round": round,
                "item_id": m.item_id,
                "question": m.question,
                "gold": m.gold,
                "student_output": m.wrong_output,
                "student_answer": m.wrong_answer,
                "writings": items,
            }
        )
    return out


def split(store: Store) -> dict:
    """The item ids a run trains on and scores, and each test item it left out with why: two
    runs whose ``test_set`` match scored the same items."""
    ids = {name: [row["item_id"] for row in store.items(name)] for name in ("train", "test")}
    if not ids["train"] and not ids["test"]:
        raise FairError("this run has not drawn its split yet: run its examine stage first")
    return {"test_set": fingerprint(ids["test"]) if ids["test"] else None, **ids, "left_out": store.left_out()}


def compiled(store: Store, run_dir: Path, round: int) -> list[dict]:
    """The pairs the compile stage wrote for ``round``: exactly what the train stage reads."""
    from .training.data import read_pairs

    if store.stage_status(round, "compile") != StageStatus.DONE:
        raise FairError(
            f"run {run_dir} has no compiled training data for round {round}: run its compile stage "
            f"first (fair run CONFIG --run-dir {run_dir} --stages compile)"
        )
    return read_pairs(run_dir / "rounds" / str(round) / "train.jsonl")


def export(run_dir: Path, fmt: str, out: Path, round: int | None = None) -> list[Path]:
    """Write ``fmt`` of ``round`` (default: 0 for data, the last trained round for a model)."""
    db = run_dir / "run.sqlite"
    if not db.exists():
        raise FairError(f"{run_dir} is not a run directory (no run.sqlite): pass the --run-dir of a run")
    if fmt in MODEL_FORMATS:
        return export_student(run_dir, fmt, out, round)
    round = round or 0
    store = Store(db, readonly=True)
    try:
        if fmt == "split":
            return [write_atomic(out / "split.json", json.dumps(split(store), indent=1, ensure_ascii=False) + "\n")]
        if fmt in formats.FORMATS:
            pairs = compiled(store, run_dir, round)
        elif not store.mistakes(round):
            raise FairError(f"run {run_dir} has no mistakes in round {round}: nothing to export")
        elif fmt == "paper":
            written = export_files(store, out, round)
        else:
            rows = records(store, round)
    finally:
        store.close()
    facts = Facts(run_dir, round)
    if fmt == "paper":
        return [*written, write_atomic(out / "README.md", dataset_card(facts, fmt, None, {}))]
    if fmt == "jsonl":
        name = f"round{round}.jsonl"
        return [
            write_atomic(out / name, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)),
            write_atomic(out / "README.md", dataset_card(facts, fmt, None, {"train": name})),
        ]
    return trainable(pairs, fmt, facts, out)


def trainable(pairs: list[dict], fmt: str, facts: Facts, out: Path) -> list[Path]:
    """The compiled examples in ``fmt``, split into train and validation, with the card (and
    LLaMA-Factory's dataset_info.json), built aside and then moved into ``out``."""
    parts = formats.split(formats.examples(pairs), facts.config.train.seed)
    chat = facts.config.student.chat_template
    counts = {s: dict(Counter(r["kind"] for r in rows)) for s, rows in parts.items()}
    staging = out / f".{fmt}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    if fmt == "hf":
        import datasets

        datasets.disable_progress_bars()
        shaped = {s: formats.shape(fmt, rows, chat) for s, rows in parts.items()}
        features = datasets.Features({k: datasets.Value("string") for k in shaped["train"][0]})
        datasets.DatasetDict(
            {s: datasets.Dataset.from_list(rows, features=features) for s, rows in shaped.items()}
        ).save_to_disk(str(staging))
        files = {s: f"{s}/*.arrow" for s in parts}
    else:
        staging.mkdir(parents=True)
        files = {s: f"{s}.jsonl" for s, rows in parts.items() if rows}
        for s, name in files.items():
            (staging / name).write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in formats.shape(fmt, parts[s], chat)),
                encoding="utf-8",
            )
        if fmt in formats.LLAMA_FACTORY:
            info = formats.dataset_info(fmt, f"fair_{facts.task}_r{facts.round}", files)
            (staging / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n")
    (staging / "README.md").write_text(dataset_card(facts, fmt, counts, files), encoding="utf-8")
    return move_into(staging, out)
