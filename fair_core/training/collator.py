"""Batches of pairs laid out for one forward pass, padded only as far as the batch needs.

Packed layout (the default): each row holds one feedback and one rationale sequence back to
back, with position ids restarting at each sequence, so attention stays within a sequence
(transformers builds the block-causal mask from the position ids). Long feedback examples are
put beside short rationale examples, so the rows come out nearly equal and padding is small.
Unpacked layout (for models whose attention cannot take packed rows): one sequence per row.

Labels are the token ids on response positions and -100 everywhere else (prompt, padding);
``kinds`` marks which half (feedback or rationale) each response token belongs to.
"""

from __future__ import annotations

from .data import Encoded, Pair

IGNORE = -100
FEEDBACK, RATIONALE = 1, 2


class PairCollator:
    def __init__(self, pad_id: int, packed: bool = True, multiple_of: int = 1):
        self.pad_id = pad_id
        self.packed = packed
        self.multiple_of = multiple_of

    def rows(self, pairs: list[Pair]) -> list[list[tuple[Encoded, int]]]:
        feedback = [(p.feedback, FEEDBACK) for p in pairs]
        rationale = [(p.rationale, RATIONALE) for p in pairs]
        if not self.packed:
            return [[s] for s in feedback + rationale]
        feedback.sort(key=lambda s: len(s[0].ids), reverse=True)
        rationale.sort(key=lambda s: len(s[0].ids))
        return [[f, r] for f, r in zip(feedback, rationale)]

    def __call__(self, pairs: list[Pair]) -> dict:
        import torch

        rows = self.rows(pairs)
        used = [sum(len(s.ids) for s, _ in row) for row in rows]
        width = -(-max(used) // self.multiple_of) * self.multiple_of
        shape = (len(rows), width)
        input_ids = torch.full(shape, self.pad_id, dtype=torch.long)
        labels = torch.full(shape, IGNORE, dtype=torch.long)
        kinds = torch.zeros(shape, dtype=torch.int8)
        position_ids = torch.zeros(shape, dtype=torch.long)
        for i, row in enumerate(rows):
            at = 0
            for seq, kind in row:
                ids = torch.tensor(seq.ids)
                end = at + len(seq.ids)
                input_ids[i, at:end] = ids
                labels[i, at + seq.n_prompt:end] = ids[seq.n_prompt:]
                kinds[i, at + seq.n_prompt:end] = kind
                position_ids[i, at:end] = torch.arange(len(seq.ids))
                at = end
            # Padding is a sequence of its own; being last in a causal row, nothing attends to it.
            position_ids[i, at:] = torch.arange(width - at)
        n_feedback = sum(p.feedback.n_response for p in pairs)
        n_rationale = sum(p.rationale.n_response for p in pairs)
        batch = {"input_ids": input_ids, "labels": labels, "kinds": kinds, "position_ids": position_ids,
                 "counts": torch.tensor([len(pairs), n_feedback, n_rationale, sum(used)], dtype=torch.long)}
        if not self.packed:
            batch["attention_mask"] = (torch.arange(width)[None, :] < torch.tensor(used)[:, None]).long()
        return batch
