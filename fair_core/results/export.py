"""Export a run: its committee data (the paper's JSON, JSONL records), its compiled training data
in the layouts other trainers read (see fair_core.results.formats), the split it scored on, or its
trained student (merged, GGUF: see fair_core.student_export). Every export but the split carries
a card, README.md (see fair_core.results.card). :data:`FORMATS` holds each format whole."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import FairError
from ..inert import inert_json
from ..runs.splits import fingerprint
from . import formats
from .formats import Format, turns

if TYPE_CHECKING:
    from ..runs.store import Store

# The writers import the store, the run directory's helpers and the cards when they write: the
# CLI reads FORMATS to build its parser, and `fair --help` must not load the config's models.


def records(store: Store, round: int) -> list[dict]:
    """One record per mistake: the question, the student's answer, every writing with its reviews
    and verdict."""
    writings, reviews, verdicts = store.writings(round), store.reviews(round), store.verdicts(round)
    out = []
    for m in store.mistakes(round):
        items = []
        for w in (w for w in writings if w.item_id == m.item_id):
            v = next(
                (v for v in verdicts if v.item_id == w.item_id and v.kind == w.kind and v.author == w.author), None
            )
            items.append(
                {
                    "kind": w.kind,
                    "teacher": w.author,  # the exported files keep their key
                    "text": w.text,
                    "reviews": [
                        {"reviewer": r.reviewer, "score": r.score, "raw": r.raw}
                        for r in reviews
                        if r.item_id == w.item_id and r.kind == w.kind and r.author == w.author
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
    ids = {name: store.item_ids(name) for name in ("train", "test")}
    if not ids["train"] and not ids["test"]:
        raise FairError("this run has not drawn its split yet: run its examine stage first")
    return {"test_set": fingerprint(ids["test"]) if ids["test"] else None, **ids, "left_out": store.left_out()}


def compiled(store: Store, run_dir: Path, round: int) -> list[dict]:
    """The pairs the compile stage wrote for ``round``: exactly what the train stage reads."""
    from ..runs.store import StageStatus
    from ..training.data import read_pairs

    if store.stage_status(round, "compile") != StageStatus.DONE:
        raise FairError(
            f"run {run_dir} has no compiled training data for round {round}: run its compile stage "
            f"first (fair run CONFIG --run-dir {run_dir} --stages compile)"
        )
    return read_pairs(run_dir / "rounds" / str(round) / "train.jsonl")


def export(run_dir: Path, fmt: str, out: Path, round: int | None = None) -> list[Path]:
    """Write ``fmt`` of ``round`` (default: 0 for data, the last trained round for a model)."""
    if fmt not in FORMATS:
        raise FairError(f"no export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if not (run_dir / "run.sqlite").exists():
        raise FairError(f"{run_dir} is not a run directory (no run.sqlite): pass the --run-dir of a run")
    _writable(out)
    return FORMATS[fmt].write(run_dir, FORMATS[fmt], out, round)


def _writable(out: Path) -> None:
    """``out`` is a folder this user can write in, or can become one: said before anything is
    read or built (a file in its place made every format's writer raise)."""
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise FairError(f"--out {out}: {existing} is a file, not a folder: pass a folder")
    if not os.access(existing, os.W_OK):
        raise FairError(f"--out {out}: this user cannot write in {existing}: pass a folder you can write")


def _store(run_dir: Path) -> closing[Store]:
    from ..runs.store import Store

    return closing(Store(run_dir / "run.sqlite", readonly=True))


def _committee(store: Store, run_dir: Path, round: int) -> None:
    """Refuse a round with no committee data."""
    if not store.count_mistakes(round):
        raise FairError(f"run {run_dir} has no mistakes in round {round}: nothing to export")


def write_paper(run_dir: Path, fmt: Format, out: Path, round: int | None) -> list[Path]:
    """The paper's three JSON files of the committee's records (see fair_core.paper)."""
    from ..paper import export_files
    from ..runs.rundir import write_atomic
    from .card import Facts, dataset_card

    round = round or 0
    with _store(run_dir) as store:
        _committee(store, run_dir, round)
        written = export_files(store, out, round)
    return [*written, write_atomic(out / "README.md", dataset_card(Facts(run_dir, round), fmt, None, {}))]


def write_jsonl(run_dir: Path, fmt: Format, out: Path, round: int | None) -> list[Path]:
    """The committee's records, one line per mistake (see :func:`records`)."""
    from ..runs.rundir import write_atomic
    from .card import Facts, dataset_card

    round = round or 0
    with _store(run_dir) as store:
        _committee(store, run_dir, round)
        rows = records(store, round)
    name = f"round{round}.jsonl"
    card = dataset_card(Facts(run_dir, round), fmt, None, {"train": name})
    return [
        write_atomic(out / name, "".join(inert_json(r) + "\n" for r in rows)),
        write_atomic(out / "README.md", card),
    ]


def write_split(run_dir: Path, fmt: Format, out: Path, round: int | None) -> list[Path]:
    """split.json (see :func:`split`): the run's, whatever the round."""
    from ..runs.rundir import write_atomic

    with _store(run_dir) as store:
        text = inert_json(split(store), indent=1) + "\n"
    return [write_atomic(out / "split.json", text)]


def write_student(run_dir: Path, fmt: Format, out: Path, round: int | None) -> list[Path]:
    from ..student_export import export_student

    return export_student(run_dir, fmt.name, out, round)


Save = Callable[[Path, dict[str, list[dict]]], dict[str, str]]


def trainable(run_dir: Path, fmt: Format, out: Path, round: int | None, save: Save) -> list[Path]:
    """The compiled examples in ``fmt``, split into train and validation, with the card (and
    LLaMA-Factory's dataset_info.json), built aside and then moved into ``out``. ``save`` lays
    out the shaped splits in a folder and returns each split's files (a path glob)."""
    from ..runs.rundir import move_into
    from .card import Facts, dataset_card

    round = round or 0
    with _store(run_dir) as store:
        pairs = compiled(store, run_dir, round)
    facts = Facts(run_dir, round)
    parts = formats.split(formats.examples(pairs), facts.config.train.seed)
    chat = facts.config.student.chat_template
    counts = {s: dict(Counter(r["kind"] for r in rows)) for s, rows in parts.items()}
    staging = out / f".{fmt.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    files = save(staging, {s: formats.shape(fmt, rows, chat) for s, rows in parts.items()})
    if fmt.llama_factory:
        info = formats.dataset_info(fmt, f"fair_{facts.task}_r{facts.round}", files)
        (staging / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n")
    (staging / "README.md").write_text(dataset_card(facts, fmt, counts, files), encoding="utf-8")
    return move_into(staging, out)


def save_arrow(folder: Path, shaped: dict[str, list[dict]]) -> dict[str, str]:
    """A ``datasets.DatasetDict`` of string columns with a split for each that holds any row (one
    compiled item validates none), saved with ``save_to_disk``."""
    import datasets

    datasets.disable_progress_bars()
    features = datasets.Features({k: datasets.Value("string") for k in shaped["train"][0]})
    splits = {s: rows for s, rows in shaped.items() if rows}  # datasets refuses an empty list of rows
    datasets.DatasetDict(
        {s: datasets.Dataset.from_list(rows, features=features) for s, rows in splits.items()}
    ).save_to_disk(str(folder))
    return {s: f"{s}/*.arrow" for s in splits}


def save_jsonl(folder: Path, shaped: dict[str, list[dict]]) -> dict[str, str]:
    """One JSONL file per split that holds any row."""
    folder.mkdir(parents=True)
    files = {s: f"{s}.jsonl" for s, rows in shaped.items() if rows}
    for s, name in files.items():
        text = "".join(inert_json(r) + "\n" for r in shaped[s])
        (folder / name).write_text(text, encoding="utf-8")
    return files


def _text(row: dict, chat: bool) -> dict:
    return {"prompt": row["prompt"], "completion": row["response"]}


def _messages(row: dict, chat: bool) -> dict:
    return {"messages": turns(row)}


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "paper",
            "the FAIR paper's own JSON files (`*_false_*`, `*_feedback_*`, `*_rationale_*`).",
            write_paper,
        ),
        Format(
            "jsonl",
            "one record per mistake: the question, the student's answer, every teacher writing with its "
            "reviews and verdict.",
            write_jsonl,
        ),
        Format(
            "hf",
            "a `datasets.DatasetDict` (train, validation) saved with `save_to_disk`: `prompt`, `completion`, "
            "`kind`, `item_id`. Load it with `datasets.load_from_disk(FOLDER)`, or from the hub with "
            "`load_dataset(REPO)`.",
            partial(trainable, save=save_arrow),
            shaper=_text,
        ),
        # TRL's conversational format: no system turn, since fair prompts its student with the
        # prompt as the only user message
        Format(
            "messages",
            "TRL's conversational format: `messages` (a user turn, then the assistant's), `kind`, `item_id`; "
            "TRL trains on every token of it unless `assistant_only_loss` is on.",
            partial(trainable, save=save_jsonl),
            shaper=_messages,
        ),
        # chat turns when the student is prompted through its chat template, else plain text; TRL
        # masks the prompt out of the loss, as fair does
        Format(
            "prompt-completion",
            "TRL's prompt-completion format: `prompt`, `completion`, `kind`, `item_id`; TRL trains on "
            "the completion only, as fair does.",
            partial(trainable, save=save_jsonl),
            shaper=lambda row, chat: (
                {"prompt": turns(row)[:1], "completion": turns(row)[1:]} if chat else _text(row, chat)
            ),
        ),
        # LLaMA-Factory: the whole prompt goes in the instruction, so its template wraps the same
        # text fair trained on
        Format(
            "alpaca",
            "LLaMA-Factory's alpaca format (`instruction` holds the whole prompt, `input` is empty, "
            "`output`), with its `dataset_info.json`.",
            partial(trainable, save=save_jsonl),
            shaper=lambda row, chat: {"instruction": row["prompt"], "input": "", "output": row["response"]},
            llama_factory={
                "formatting": "alpaca",
                "columns": {"prompt": "instruction", "query": "input", "response": "output"},
            },
        ),
        Format(
            "sharegpt",
            "LLaMA-Factory's sharegpt format with OpenAI-style `messages`, with its `dataset_info.json`.",
            partial(trainable, save=save_jsonl),
            shaper=_messages,
            llama_factory={
                "formatting": "sharegpt",
                "columns": {"messages": "messages"},
                "tags": {
                    "role_tag": "role",
                    "content_tag": "content",
                    "user_tag": "user",
                    "assistant_tag": "assistant",
                    "system_tag": "system",
                },
            },
        ),
        Format("split", None, write_split),
        Format("merged", None, write_student),
        Format("gguf", None, write_student),
    )
}
