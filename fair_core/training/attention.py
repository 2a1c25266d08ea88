"""Causal attention within each packed sequence, with shared prompt prefixes computed once.

A packed batch is one row. Its layout is a list of groups, each a prefix followed by the
sequences that start with it: every feedback example of a batch begins with the same tokens
(chat template, system prompt, instruction), and so does every rationale example. A prefix is
causal, so its hidden states are the same in every sequence that starts with it: the row holds
it once, and each sequence's remaining tokens attend to the prefix's keys and values and then
causally to their own. That is exact (gradients from every sequence reach the prefix through
autograd) and saves the prefix's compute for all but one sequence per group.

Each slice runs plain sdpa, so the work is the sum over sequences of (prefix + own length) x
own length, not the square of the row, and no row-sized mask is ever built. The layout arrives
as the ``fair_segments`` keyword: ``((prefix_len, (len_1, len_2, ...)), ...)``, which
transformers passes from the model call down to every attention layer. Without it this is
sdpa with a causal mask only, exact for right-padded rows (no real token attends to the padding
after it).
"""

from __future__ import annotations

import torch

NAME = "fair_segments"


def segment_attention(
    module,
    query,
    key,
    value,
    attention_mask,
    dropout: float = 0.0,
    scaling=None,
    fair_segments: tuple | None = None,
    **kwargs,
):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    def attend(q, k, v, mask=None):
        return sdpa_attention_forward(module, q, k, v, mask, dropout=dropout, scaling=scaling, is_causal=mask is None)[
            0
        ]

    if fair_segments is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    sizes = [n for prefix, lengths in fair_segments for n in (prefix, *lengths)]
    # split (not slicing): its backward is one concatenation, not a zero-filled copy per slice
    parts = zip(*(t.split(sizes, dim=2) for t in (query, key, value)))
    outputs = []
    for prefix, lengths in fair_segments:
        q_p, k_p, v_p = next(parts)
        if prefix:
            outputs.append(attend(q_p, k_p, v_p))
        for n in lengths:
            q, k, v = next(parts)
            if prefix:  # all of the prefix, then causal within the sequence's own tokens
                mask = torch.ones(n, prefix + n, dtype=torch.bool, device=q.device).tril(prefix)
                outputs.append(attend(q, torch.cat([k_p, k], dim=2), torch.cat([v_p, v], dim=2), mask[None, None]))
            else:
                outputs.append(attend(q, k, v))
    return torch.cat(outputs, dim=1), None


def implementation() -> str:
    """The attention to load a student with: this module's, registered with transformers."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, segment_attention)
    return NAME
