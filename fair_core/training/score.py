"""Teacher-forced scores of many responses, computed as a training step computes its loss.

Held-out references come several to a question (each teacher's rationale after the same
prompt), so the responses that share a prompt are packed as one group of the collator's layout:
the prompt's keys and values are computed once for the group (:mod:`.attention`), and the
output head runs only at the positions that predict a response token (:mod:`.head_loss`). On
SVAMP's paper prompts that is about half the tokens and a third of the head's work of scoring
each text on its own, with the same numbers: a model that cannot take packed rows or the sliced
head (:func:`.loss.probe`) is scored row by row, as it would be trained.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import accumulate

import torch

from . import attention
from .collator import RATIONALE, PairCollator, shared_prefix
from .data import Encoded
from .loss import probe, token_nll


def _groups(encoded: list[Encoded]) -> list[list[int]]:
    """The sequences' indices grouped by identical prompt tokens, in order of first appearance."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, e in enumerate(encoded):
        groups.setdefault(tuple(e.ids[: e.n_prompt]), []).append(i)
    return list(groups.values())


def _passes(
    encoded: list[Encoded], groups: list[list[int]], pass_tokens: int, packed: bool
) -> list[list[tuple[list[int], int]]]:
    """Consecutive groups, each with its shared prefix, in passes of at most ``pass_tokens`` tokens
    as laid out (packed: each prefix once; else one row per sequence, padded to the longest), a
    longer group alone, so that memory stays bounded."""
    passes: list[list[tuple[list[int], int]]] = []
    rows = longest = used = 0
    for group in groups:
        seqs = [encoded[i] for i in group]
        prefix = shared_prefix(seqs) if packed else 0
        n = prefix + sum(len(s.ids) - prefix for s in seqs)
        width = max(len(s.ids) for s in seqs)
        if not passes or (used + n if packed else (rows + len(seqs)) * max(longest, width)) > pass_tokens:
            passes.append([])
            rows = longest = used = 0
        passes[-1].append((group, prefix))
        rows, longest, used = rows + len(seqs), max(longest, width), used + n
    return passes


@torch.inference_mode()
def mean_logprobs(
    model, encoded: list[Encoded], pass_tokens: int, on_progress: Callable[[int], None] | None = None
) -> list[float]:
    """Per sequence, the mean log-probability of its response tokens after its prompt."""
    if not encoded:
        return []
    before = model.config._attn_implementation
    model.set_attn_implementation(attention.implementation())
    try:
        sliced, packed = probe(model, encoded[0].ids[:64], encoded[-1].ids[:64])
        collator = PairCollator(pad_id=0, packed=packed)
        device = next(model.parameters()).device
        scores = [0.0] * len(encoded)
        for one in _passes(encoded, _groups(encoded), pass_tokens, packed):
            seqs = [i for group, _ in one for i in group]
            layout = [(prefix, [(encoded[i], RATIONALE) for i in group]) for group, prefix in one]
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in collator.one_pass(layout).items()}
            nll, _ = token_nll(
                model,
                batch["input_ids"],
                batch["labels"],
                batch["position_ids"],
                batch.get("attention_mask"),
                batch.get("segments"),
                sliced=sliced,
            )
            ends = list(accumulate(encoded[i].n_response for i in seqs))
            for i, start, end in zip(seqs, [0, *ends], ends):
                scores[i] = -nll[start:end].float().mean().item()
            if on_progress:
                on_progress(len(seqs))
        return scores
    finally:
        model.set_attn_implementation(before)
