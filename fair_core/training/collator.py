"""Batches of pairs laid out for one forward pass, with (next to) no padding.

Packed layout (the default): the whole batch in one row. The feedback examples come as one
group: the prompt prefix they all share (chat template, system prompt, instruction), once,
then each example's remaining tokens; the rationale examples likewise. Position ids restart at
each example (continuing after the prefix), and ``segments`` describes the groups for
:mod:`.attention`, which keeps every example's attention to its prefix and its own tokens.
The row is padded only up to ``multiple_of``. Unpacked layout (for models whose attention
cannot do this): one example per row, right-padded to the longest.

Labels are the token ids on response positions and -100 everywhere else (prompt, padding);
``kinds`` marks which half (feedback or rationale) each response token belongs to. A shared
prefix always stops short of every example's response, so the first token after it is a
prompt token and no label is ever predicted across a group boundary.
"""

from __future__ import annotations

import os
from typing import Any

from .data import Encoded, Pair

IGNORE = -100
FEEDBACK, RATIONALE = 1, 2


def shared_prefix(seqs: list[Encoded]) -> int:
    """How many leading prompt tokens all ``seqs`` share (0 for a single one), leaving at least
    one prompt token of each after it."""
    if len(seqs) < 2:
        return 0
    common = len(os.path.commonprefix([s.ids for s in seqs]))
    return max(0, min(common, min(s.n_prompt for s in seqs) - 1))


class PairCollator:
    def __init__(self, pad_id: int, packed: bool = True, multiple_of: int = 1):
        self.pad_id = pad_id
        self.packed = packed
        self.multiple_of = multiple_of

    def groups(self, pairs: list[Pair]) -> list[tuple[int, list[tuple[Encoded, int]]]]:
        """(shared prefix length, [(example, kind)]) per group; a row holds its groups in order."""
        halves = [[(p.feedback, FEEDBACK) for p in pairs], [(p.rationale, RATIONALE) for p in pairs]]
        if not self.packed:
            return [(0, [s]) for half in halves for s in half]
        return [(shared_prefix([s for s, _ in half]), half) for half in halves]

    def __call__(self, pairs: list[Pair]) -> dict:
        import torch

        groups = self.groups(pairs)
        rows = [groups] if self.packed else [[g] for g in groups]
        used = [sum(p + sum(len(s.ids) - p for s, _ in members) for p, members in row) for row in rows]
        width = -(-max(used) // self.multiple_of) * self.multiple_of
        shape = (len(rows), width)
        input_ids = torch.full(shape, self.pad_id, dtype=torch.long)
        labels = torch.full(shape, IGNORE, dtype=torch.long)
        kinds = torch.zeros(shape, dtype=torch.int8)
        position_ids = torch.zeros(shape, dtype=torch.long)
        for i, row in enumerate(rows):
            at = 0
            for prefix, members in row:
                input_ids[i, at : at + prefix] = torch.tensor(members[0][0].ids[:prefix], dtype=torch.long)
                position_ids[i, at : at + prefix] = torch.arange(prefix)
                at += prefix
                for seq, kind in members:
                    ids = torch.tensor(seq.ids[prefix:], dtype=torch.long)
                    end = at + len(ids)
                    response = at + seq.n_prompt - prefix
                    input_ids[i, at:end] = ids
                    labels[i, response:end] = input_ids[i, response:end]
                    kinds[i, response:end] = kind
                    position_ids[i, at:end] = torch.arange(prefix, len(seq.ids))
                    at = end
            position_ids[i, at:] = torch.arange(width - at)  # padding: a sequence of its own
        n_feedback = sum(p.feedback.n_response for p in pairs)
        n_rationale = sum(p.rationale.n_response for p in pairs)
        batch: dict[str, Any] = {
            "input_ids": input_ids,
            "labels": labels,
            "kinds": kinds,
            "position_ids": position_ids,
            "counts": torch.tensor([len(pairs), n_feedback, n_rationale, sum(used)], dtype=torch.long),
        }
        if self.packed:
            layout = tuple((p, tuple(len(s.ids) - p for s, _ in members)) for p, members in groups)
            batch["segments"] = layout + (((0, (width - used[0],)),) if width > used[0] else ())
        else:
            batch["attention_mask"] = (torch.arange(width)[None, :] < torch.tensor(used)[:, None]).long()
        return batch
