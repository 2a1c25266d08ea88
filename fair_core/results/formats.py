"""What an export format is, and the helpers the formats of compiled training data share.

A :class:`Format` is everything fair knows of one ``fair export --format``: its name, what its
dataset card says of it, how it is written and, for the compiled training data, the columns of
one example. The formats themselves are :data:`fair_core.results.export.FORMATS`: adding one is one
``Format`` there.

The compile stage writes ``rounds/N/train.jsonl``: one line per mistake, pairing a feedback
example with a rationale example, each a (prompt, response) with the exact prompt text the
student trains on. :func:`examples` flattens the pairs into one row per example, marked by
``kind`` so the joint loss (alpha * feedback + (1 - alpha) * rationale) can be rebuilt; a
trainable format's ``shaper`` then gives such a row's columns. The split keeps a mistake's two
examples together, so validation never scores an item whose other half trained.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

KINDS = ("feedback", "rationale")
VALIDATION_SHARE = 0.1

Shaper = Callable[[dict, bool], dict]
Writer = Callable[[Path, "Format", Path, "int | None"], list[Path]]


@dataclass(frozen=True)
class Format:
    """One export format. ``write(run_dir, format, out, round)`` writes it into ``out`` and returns
    the paths written (``round`` None: the format's default). ``note``: what its dataset card
    says of it, None for an export with no dataset card. A format of the compiled training data
    has a ``shaper``: one example's columns (its second argument: the student is prompted through
    its chat template), to which every format adds ``kind`` and ``item_id``; ``llama_factory``:
    what LLaMA-Factory's ``dataset_info.json`` says of it (its data/README.md)."""

    name: str
    note: str | None
    write: Writer
    shaper: Shaper | None = None
    llama_factory: dict | None = None


def examples(pairs: list[dict]) -> list[dict]:
    """One row per compiled example, in compile's order: each pair's feedback, then its rationale."""
    return [
        {"item_id": pair["item_id"], "kind": kind, "prompt": pair[kind]["prompt"], "response": pair[kind]["response"]}
        for pair in pairs
        for kind in KINDS
    ]


def split(rows: list[dict], seed: int) -> dict[str, list[dict]]:
    """Train and validation rows, by item: the items with the smallest seeded hash (a tenth,
    at least one when there are two or more) validate. Depends only on the ids and the seed."""
    items = list(dict.fromkeys(row["item_id"] for row in rows))
    size = min(max(1, round(len(items) * VALIDATION_SHARE)), len(items) - 1)
    held = set(sorted(items, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())[:size])
    return {
        "train": [r for r in rows if r["item_id"] not in held],
        "validation": [r for r in rows if r["item_id"] in held],
    }


def turns(row: dict) -> list[dict]:
    """An example as chat turns: the prompt as the only user turn, then the response."""
    return [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["response"]}]


def shape(fmt: Format, rows: list[dict], chat: bool) -> list[dict]:
    """``rows`` (see :func:`examples`) in ``fmt``'s columns."""
    shaper = fmt.shaper
    if shaper is None:
        raise ValueError(f"export format {fmt.name!r} holds no compiled examples")
    return [{**shaper(row, chat), "kind": row["kind"], "item_id": row["item_id"]} for row in rows]


def dataset_info(fmt: Format, name: str, files: dict[str, str]) -> dict:
    """LLaMA-Factory's entries for ``files`` (split -> file name): ``NAME_train`` for ``dataset``,
    ``NAME_validation`` for ``eval_dataset``."""
    return {f"{name}_{split}": {"file_name": file, **(fmt.llama_factory or {})} for split, file in files.items()}
