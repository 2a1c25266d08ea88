"""The compiled pairs of a round, tokenized once, and the length-grouped batch order.

Every line of ``train.jsonl`` pairs a mistake's feedback example with its rationale example;
a batch always carries whole pairs so the joint loss sees both halves of each mistake.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..student import prompt_ids


@dataclass(frozen=True)
class Encoded:
    """One training sequence: prompt tokens then response tokens (the response ends with eos)."""

    ids: list[int]
    n_prompt: int

    @property
    def n_response(self) -> int:
        return len(self.ids) - self.n_prompt


@dataclass(frozen=True)
class Pair:
    item_id: str
    feedback: Encoded
    rationale: Encoded

    @property
    def length(self) -> int:
        return len(self.feedback.ids) + len(self.rationale.ids)


def read_pairs(path: Path) -> list[dict]:
    """The rows of a compiled ``train.jsonl``; a missing, empty or malformed file is a DataError."""
    if not path.is_file():
        raise DataError(f"compiled dataset {path} does not exist: run the compile stage of this round first")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            for half in ("feedback", "rationale"):
                if not isinstance(row[half]["prompt"], str) or not isinstance(row[half]["response"], str):
                    raise TypeError(half)
        except (ValueError, KeyError, TypeError):
            raise DataError(
                f"{path} line {n} is not a pair of {{prompt, response}} examples "
                "(feedback and rationale): recompile the round"
            ) from None
        empty = [half for half in ("feedback", "rationale") if not row[half]["prompt"].strip()]
        if empty:  # the first response token would have no position to be predicted from
            raise DataError(
                f"{path} line {n}: the {empty[0]} example's prompt is empty, and a response must follow "
                "a prompt: give it one, or recompile the round"
            )
        rows.append(row)
    if not rows:
        raise DataError(
            f"compiled dataset {path} is empty: this round has no mistake with an accepted "
            "rationale, so there is nothing to train on"
        )
    return rows


class Encoder:
    """Token ids of (prompt, response) in the format the student is prompted in at inference.

    The prompt is encoded exactly as the transformers student backend encodes it (the chat
    template's generation prompt rendered to text, or the plain prompt with the tokenizer's
    special tokens); the response is its own tokens plus eos, so the model learns to stop.
    """

    def __init__(self, tokenizer, chat_template: bool, max_length: int):
        if tokenizer.eos_token_id is None:
            raise DataError("the student tokenizer has no eos token: a response could never end")
        self.tokenizer = tokenizer
        self.use_template = bool(chat_template and tokenizer.chat_template)
        self.max_length = max_length

    def prompt_ids(self, prompt: str) -> list[int]:
        return prompt_ids(self.tokenizer, prompt, self.use_template)

    def __call__(self, prompt: str, response: str) -> Encoded:
        p = self.prompt_ids(prompt)
        r = self.tokenizer(response, add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]
        # Over budget: cut the prompt from the left (its end holds the question and the turn
        # marker the response follows); a response alone over budget keeps its start.
        r = r[: self.max_length - 1]
        p = p[-(self.max_length - len(r)) :]
        return Encoded(p + r, len(p))

    def pair(self, row: dict) -> Pair:
        f, r = row["feedback"], row["rationale"]
        return Pair(str(row.get("item_id", "")), self(f["prompt"], f["response"]), self(r["prompt"], r["response"]))


class LengthGroupedBatches:
    """Batches of pair indices, shuffled per epoch, with pairs of similar length together.

    Indices are shuffled, cut into groups of ``group`` batches, each group sorted by length and
    cut into batches, and the batch order shuffled again: a batch pads little, and the order is
    still random. The order is a pure function of (seed, epoch), so a resumed run replays it.
    The trainer sets ``epoch`` itself; there is deliberately no ``set_epoch``, which accelerate's
    data loader would call with its own count of iterations (wrong after a resume).

    Sharded over ``processes`` (accelerate deals batch i to process i mod processes), an epoch
    has a multiple of ``processes`` batches, none empty, sizes as even as can be and at most
    ``batch_size`` (2 where that is 1 and the pairs do not divide evenly): every process gets
    the same number of batches and every pair is in one. There is deliberately no
    ``batch_size`` attribute: with one, accelerate drops a whole round whose last batch is
    short while its length still counts it, and the ranks wait for each other for ever.
    """

    drop_last = False  # read by accelerate when it shards batches over processes

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group: int = 32, processes: int = 1):
        if len(lengths) < processes:
            raise DataError(
                f"{len(lengths)} training pairs cannot be shared by {processes} training processes: "
                "train on fewer processes (accelerate launch --num_processes) or compile more pairs"
            )
        self.lengths = lengths
        self.seed = seed
        self.group = group
        self.epoch = 0
        rounds = min(-(-math.ceil(len(lengths) / batch_size) // processes), len(lengths) // processes)
        n = rounds * processes
        q, r = divmod(len(lengths), n)
        self.sizes = [q + 1] * r + [q] * (n - r)

    def __len__(self) -> int:
        return len(self.sizes)

    def __iter__(self):
        rng = random.Random(f"{self.seed}:{self.epoch}")
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        batches, start = [], 0
        for g in range(0, len(self.sizes), self.group):
            sizes = self.sizes[g : g + self.group]
            chunk = sorted(order[start : start + sum(sizes)], key=self.lengths.__getitem__, reverse=True)
            start += sum(sizes)
            for n in sizes:
                batches.append(chunk[:n])
                chunk = chunk[n:]
        rng.shuffle(batches)
        return iter(batches)
