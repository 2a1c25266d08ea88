"""Causal attention within each packed sequence, with shared prompt prefixes computed once.

A packed row's layout is a list of groups, each a prefix followed by the sequences that start
with it: every feedback example of a batch begins with the same tokens (chat template, system
prompt, instruction), and so does every rationale example. A prefix is causal, so its keys and
values are the same in every sequence that starts with it: they are computed once, and each
sequence's own tokens attend to the prefix and then causally to themselves. That is exact
(gradients from every sequence reach the prefix through autograd) and saves the prefix's
compute for all but one sequence per group.

The prefix is either in the row, just before its group, or in an earlier pass (see
:class:`PrefixKV`): a batch too long for one pass within the memory budget is cut into passes
that all read the prefixes' keys and values, computed once for the batch.

Each slice runs sdpa on its own, so the work is the sum over sequences of (prefix + own length)
x own length, not the square of the row, and no row-sized mask is ever built. The layout arrives
as the ``fair_segments`` keyword, a tuple of :class:`Group`, which transformers passes from the
model call down to every attention layer. Without it this is sdpa with a causal mask only, exact
for right-padded rows (no real token attends to the padding after it).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

NAME = "fair_segments"


class Group(NamedTuple):
    """Sequences sharing a prefix: ``prefix`` tokens of it at the start of the group in this row
    (0 when it is cached or there is none), then each sequence's own ``lengths`` tokens;
    ``cached``: which prefix of the batch's :class:`PrefixKV` they attend to first, if any."""

    prefix: int
    lengths: tuple[int, ...]
    cached: int | None = None


class PrefixKV:
    """The keys and values of a batch's shared prefixes, per layer, computed in one pass and read
    by every later pass of the batch.

    The prefix pass stores them (its row holds each prefix as a sequence of its own, in order);
    :meth:`detach` turns them into leaves that collect the later passes' gradients, and
    :meth:`backward` carries those gradients back through the prefix pass once they are all in."""

    def __init__(self) -> None:
        self.kv: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.capturing = True
        self._computed: list[torch.Tensor] = []
        self._leaves: list[torch.Tensor] = []

    def store(self, layer: int, index: int, key: torch.Tensor, value: torch.Tensor) -> None:
        self.kv[layer, index] = (key, value)

    def detach(self) -> None:
        self.capturing = False
        for at, pair in self.kv.items():
            leaves = tuple(t.detach().requires_grad_(t.requires_grad) for t in pair)
            for computed, leaf in zip(pair, leaves):
                if computed.requires_grad:
                    self._computed.append(computed)
                    self._leaves.append(leaf)
            self.kv[at] = leaves  # type: ignore[assignment]

    def backward(self) -> None:
        reached = [(c, leaf.grad) for c, leaf in zip(self._computed, self._leaves) if leaf.grad is not None]
        if reached:
            torch.autograd.backward([c for c, _ in reached], [g for _, g in reached])
        self.kv.clear()
        self._computed.clear()
        self._leaves.clear()


def _attend(module, q, k, v, mask, scaling, dropout):
    """sdpa in transformers' [batch, tokens, heads, dim] output layout. On a CPU, grouped keys and
    values are read as they are (flash attention takes a mask there); elsewhere they are repeated
    per query head when a mask is given, as transformers does."""
    groups = getattr(module, "num_key_value_groups", 1)
    gqa = groups > 1 and (mask is None or q.device.type == "cpu")
    if groups > 1 and not gqa:
        k, v = (t.repeat_interleave(groups, dim=1) for t in (k, v))
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=mask is None, scale=scaling, enable_gqa=gqa
    )
    return out.transpose(1, 2)


def segment_attention(
    module,
    query,
    key,
    value,
    attention_mask,
    dropout: float = 0.0,
    scaling=None,
    fair_segments: tuple[Group, ...] | None = None,
    fair_prefix: PrefixKV | None = None,
    **kwargs,
):
    if fair_segments is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    sizes = [n for g in fair_segments for n in (g.prefix, *g.lengths)]
    # split (not slicing): its backward is one concatenation, not a zero-filled copy per slice
    parts = zip(*(t.split(sizes, dim=2) for t in (query, key, value)))
    outputs, sequence = [], 0
    for group in fair_segments:
        q_p, k_p, v_p = next(parts)
        if group.prefix:
            outputs.append(_attend(module, q_p, k_p, v_p, None, scaling, dropout))
        elif group.cached is not None:
            assert fair_prefix is not None, "a group reads a cached prefix but none was given"
            k_p, v_p = fair_prefix.kv[module.layer_idx, group.cached]
        for n in group.lengths:
            q, k, v = next(parts)
            if fair_prefix is not None and fair_prefix.capturing:
                fair_prefix.store(module.layer_idx, sequence, k, v)
            sequence += 1
            p = k_p.shape[2]
            if p:  # all of the prefix, then causal within the sequence's own tokens
                mask = torch.ones(n, p + n, dtype=torch.bool, device=q.device).tril(p)
                outputs.append(
                    _attend(module, q, torch.cat([k_p, k], dim=2), torch.cat([v_p, v], dim=2), mask, scaling, dropout)
                )
            else:
                outputs.append(_attend(module, q, k, v, None, scaling, dropout))
    return torch.cat(outputs, dim=1), None


def implementation() -> str:
    """The attention to load a student with: this module's, registered with transformers."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, segment_attention)
    return NAME
