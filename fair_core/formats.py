"""A round's compiled training data in the layouts other trainers read.

The compile stage writes ``rounds/N/train.jsonl``: one line per mistake, pairing a feedback
example with a rationale example, each a (prompt, response) with the exact prompt text the
student trains on. :func:`examples` flattens the pairs into one row per example, marked by
``kind`` so the joint loss (alpha * feedback + (1 - alpha) * rationale) can be rebuilt; each
format is then one small shaper of such a row:

- ``hf``: a ``datasets.DatasetDict`` (train, validation) of prompt/completion strings;
- ``messages`` (TRL, conversational): a user turn and an assistant turn, no system turn, since
  fair prompts its student with the prompt as the only user message;
- ``prompt-completion`` (TRL): the prompt and the response as chat turns when the student is
  prompted through its chat template, else as plain text; TRL then masks the prompt out of the
  loss, as fair does (``messages`` trains on every token unless TRL's assistant_only_loss is on);
- ``alpaca`` and ``sharegpt`` (LLaMA-Factory), with the ``dataset_info.json`` entries it reads.

The split keeps a mistake's two examples together, so validation never scores an item whose
other half trained.
"""

from __future__ import annotations

import hashlib
from typing import Callable

KINDS = ("feedback", "rationale")
VALIDATION_SHARE = 0.1


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


def _turns(row: dict) -> list[dict]:
    return [{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": row["response"]}]


# each format's columns for one example (``chat``: the student is prompted through its chat
# template); every format adds kind and item_id after them
SHAPERS: dict[str, Callable[[dict, bool], dict]] = {
    "hf": lambda row, chat: {"prompt": row["prompt"], "completion": row["response"]},
    "messages": lambda row, chat: {"messages": _turns(row)},
    "prompt-completion": lambda row, chat: (
        {"prompt": _turns(row)[:1], "completion": _turns(row)[1:]}
        if chat
        else {"prompt": row["prompt"], "completion": row["response"]}
    ),
    "alpaca": lambda row, chat: {"instruction": row["prompt"], "input": "", "output": row["response"]},
    "sharegpt": lambda row, chat: {"messages": _turns(row)},
}
FORMATS = tuple(SHAPERS)

# What LLaMA-Factory's dataset_info.json says of each of its formats (data/README.md there): the
# whole prompt goes in the instruction, so its template wraps the same text fair trained on.
LLAMA_FACTORY = {
    "alpaca": {"formatting": "alpaca", "columns": {"prompt": "instruction", "query": "input", "response": "output"}},
    "sharegpt": {
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
}


def shape(fmt: str, rows: list[dict], chat: bool) -> list[dict]:
    return [{**SHAPERS[fmt](row, chat), "kind": row["kind"], "item_id": row["item_id"]} for row in rows]


def dataset_info(fmt: str, name: str, files: dict[str, str]) -> dict:
    """LLaMA-Factory's entries for ``files`` (split -> file name): ``NAME_train`` for ``dataset``,
    ``NAME_validation`` for ``eval_dataset``."""
    return {f"{name}_{split}": {"file_name": file, **LLAMA_FACTORY[fmt]} for split, file in files.items()}
