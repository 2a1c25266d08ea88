"""Batches of pairs laid out for as few forward passes as memory allows, with (next to) no padding.

Packed layout (the default): the whole batch in one row. The feedback examples come as one
group: the prompt prefix they all share (chat template, system prompt, instruction), once,
then each example's remaining tokens; the rationale examples likewise. Position ids restart at
each example (continuing after the prefix), and ``segments`` describes the groups for
:mod:`.attention`, which keeps every example's attention to its prefix and its own tokens.
The row is padded only up to ``multiple_of``. Unpacked layout (for models whose attention
cannot do this): one example per row, right-padded to the longest.

Activation memory grows with the tokens of a pass, so a batch longer than ``pass_tokens`` is
cut into several passes, whole examples each, whose gradients add up to the batch's: the
shared prefixes then go first in a pass of their own, and every later pass reads their keys
and values (see :class:`.attention.PrefixKV`), so they are still computed once.

Labels are the token ids on response positions and -100 everywhere else (prompt, padding);
``kinds`` marks which half (feedback or rationale) each response token belongs to. A shared
prefix always stops short of every example's response, so the first token after it is a
prompt token and no label is ever predicted across a group boundary.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, NamedTuple

from .attention import Group
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


class _Piece(NamedTuple):
    """Tokens to place in a row: the first is at position ``start``; the first ``n_prompt`` carry
    no label, the rest are labelled as half ``kind``; ``group``: the batch's group they belong to."""

    ids: list[int]
    start: int
    n_prompt: int
    kind: int
    group: int = 0

    def write(self, tensors: dict, row: int, at: int) -> int:
        """Write into ``row`` of the batch's tensors from column ``at``; the column after."""
        import torch

        end = at + len(self.ids)
        tensors["input_ids"][row, at:end] = torch.tensor(self.ids, dtype=torch.long)
        labelled = at + self.n_prompt
        tensors["labels"][row, labelled:end] = tensors["input_ids"][row, labelled:end]
        tensors["kinds"][row, labelled:end] = self.kind
        tensors["position_ids"][row, at:end] = torch.arange(self.start, self.start + len(self.ids))
        return end


class PairCollator:
    def __init__(self, pad_id: int, packed: bool = True, multiple_of: int = 1, pass_tokens: int | None = None):
        self.pad_id = pad_id
        self.packed = packed
        self.multiple_of = multiple_of
        self.pass_tokens = pass_tokens

    def groups(self, pairs: list[Pair]) -> list[tuple[int, list[tuple[Encoded, int]]]]:
        """(shared prefix length, [(example, kind)]) per half of the batch."""
        halves = [[(p.feedback, FEEDBACK) for p in pairs], [(p.rationale, RATIONALE) for p in pairs]]
        return [(shared_prefix([s for s, _ in half]) if self.packed else 0, half) for half in halves]

    def __call__(self, pairs: list[Pair]) -> dict:
        import torch

        groups = self.groups(pairs)
        used = sum(p + sum(len(s.ids) - p for s, _ in members) for p, members in groups)
        n_feedback = sum(p.feedback.n_response for p in pairs)
        n_rationale = sum(p.rationale.n_response for p in pairs)
        batch: dict[str, Any] = {
            "counts": torch.tensor([len(pairs), n_feedback, n_rationale, used], dtype=torch.long),
            "prefix": None,
        }
        if not self.packed:
            batch["passes"] = [self._unpacked(run) for run in self._passes(self._whole(groups))]
        elif self.pass_tokens is None or used <= self.pass_tokens:
            batch["passes"] = [self.one_pass(groups)]
        else:
            batch["prefix"], batch["passes"] = self._cut(groups)
        return batch

    def one_pass(self, groups: list[tuple[int, list[tuple[Encoded, int]]]]) -> dict:
        """``groups`` ((shared prefix length, [(example, kind)]) each) in one pass, whatever its
        length: packed, each prefix just before its group; unpacked, one example per row. The
        labelled positions come in the examples' order."""
        if not self.packed:
            return self._unpacked(self._whole(groups))
        return self._packed(
            [
                (Group(p, tuple(len(s.ids) - p for s, _ in members)), self._pieces(g, p, members, inline=True))
                for g, (p, members) in enumerate(groups)
            ]
        )

    @staticmethod
    def _whole(groups: list[tuple[int, list[tuple[Encoded, int]]]]) -> list[_Piece]:
        """Every example as one piece, prompt and all: the unpacked layout's rows."""
        return [_Piece(s.ids, 0, s.n_prompt, kind) for _, members in groups for s, kind in members]

    @staticmethod
    def _pieces(group: int, prefix: int, members: list[tuple[Encoded, int]], inline: bool) -> list[_Piece]:
        head = [_Piece(members[0][0].ids[:prefix], 0, prefix, 0, group)] if inline and prefix else []
        return head + [_Piece(s.ids[prefix:], prefix, s.n_prompt - prefix, kind, group) for s, kind in members]

    def _passes(self, pieces: list[_Piece]) -> list[list[_Piece]]:
        """``pieces`` in as few passes of at most ``pass_tokens`` tokens as first-fit decreasing
        finds (a longer piece alone), each pass keeping the pieces' order so that a group's stay
        together; one pass when there is no limit. Fuller passes mean fewer, larger matrix
        multiplies: the longest SVAMP batches of the training benchmark take 8 to 10 passes of
        512 tokens, where consecutive runs took 11 or 12."""
        if self.pass_tokens is None:
            return [pieces]
        passes: list[list[int]] = []
        room: list[int] = []
        for i in sorted(range(len(pieces)), key=lambda i: -len(pieces[i].ids)):
            n = len(pieces[i].ids)
            at = next((j for j, free in enumerate(room) if free >= n), None)
            if at is None:
                passes.append([])
                room.append(self.pass_tokens)
                at = len(passes) - 1
            passes[at].append(i)
            room[at] -= n
        return [[pieces[i] for i in sorted(members)] for members in passes]

    def _cut(self, groups) -> tuple[dict | None, list[dict]]:
        """The prefix pass (each group's shared prefix as a sequence of its own) and the passes of
        the examples, which read the prefixes' keys and values by their place in the prefix pass."""
        shared = [(g, p, members[0][0].ids[:p]) for g, (p, members) in enumerate(groups) if p]
        cached = {g: i for i, (g, _, _) in enumerate(shared)}
        prefix_pass = shared and self._packed(
            [(Group(0, tuple(p for _, p, _ in shared)), [_Piece(ids, 0, p, 0) for _, p, ids in shared])]
        )
        pieces = [piece for g, (p, members) in enumerate(groups) for piece in self._pieces(g, p, members, False)]
        passes = []
        for run in self._passes(pieces):
            row = []
            for g, same in itertools.groupby(run, key=lambda piece: piece.group):
                mine = list(same)
                row.append((Group(0, tuple(len(piece.ids) for piece in mine), cached.get(g)), mine))
            passes.append(self._packed(row))
        return prefix_pass or None, passes

    def _packed(self, row: list[tuple[Group, list[_Piece]]]) -> dict:
        import torch

        used = sum(len(piece.ids) for _, pieces in row for piece in pieces)
        width = -(-used // self.multiple_of) * self.multiple_of
        tensors = self._tensors(1, width)
        at = 0
        for _, pieces in row:
            for piece in pieces:
                at = piece.write(tensors, 0, at)
        tensors["position_ids"][0, at:] = torch.arange(width - at)  # padding: a sequence of its own
        segments = tuple(group for group, _ in row)
        tensors["segments"] = segments + ((Group(0, (width - used,)),) if width > used else ())
        return tensors

    def _unpacked(self, rows: list[_Piece]) -> dict:
        import torch

        lengths = [len(piece.ids) for piece in rows]
        width = -(-max(lengths) // self.multiple_of) * self.multiple_of
        tensors = self._tensors(len(rows), width)
        for i, piece in enumerate(rows):
            piece.write(tensors, i, 0)
        tensors["attention_mask"] = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()
        return tensors

    def _tensors(self, n_rows: int, width: int) -> dict:
        import torch

        shape = (n_rows, width)
        return {
            "input_ids": torch.full(shape, self.pad_id, dtype=torch.long),
            "labels": torch.full(shape, IGNORE, dtype=torch.long),
            "kinds": torch.zeros(shape, dtype=torch.int8),
            "position_ids": torch.zeros(shape, dtype=torch.long),
        }
