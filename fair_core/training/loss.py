"""The joint loss L = alpha * L_feedback + (1 - alpha) * L_rationale, pass by pass.

Each term is the mean cross-entropy over the response tokens of its half of the batch. The
decoder body runs once over the whole batch, in one pass or in several (see :mod:`.collator`);
the output head runs only at the positions that predict a response token (a fraction of all
positions), so the full [batch, length, vocab] logits are never built. Each pass's loss is its
share of the batch's (its tokens' sums over the batch's counts), so the passes' gradients add
up to the batch's. The loss is an ``nn.Module`` around the model so that accelerate's wrappers
(DDP, FSDP, DeepSpeed, autocast) see every forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from peft.helpers import disable_input_dtype_casting

from .attention import Group, PrefixKV
from .collator import FEEDBACK, IGNORE
from .head_loss import head_cross_entropy


def _base(model):
    """The transformers model inside a peft wrapper (LoRA layers are injected into it in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _checkpointed(model) -> bool:
    flag = getattr(model, "is_activation_checkpointing", None)  # transformers >= 5
    return getattr(model, "is_gradient_checkpointing", False) if flag is None else flag


def _decoder_inputs(input_ids, position_ids, attention_mask, segments, prefix) -> dict:
    inputs = {
        "input_ids": input_ids,
        "position_ids": position_ids,
        "attention_mask": attention_mask,
        "use_cache": False,
    }
    if segments is not None:
        inputs["fair_segments"] = tuple(segments)
    if prefix is not None:
        inputs["fair_prefix"] = prefix
    return inputs


def _as_given(model, input_ids):
    """Under autocast, peft would copy each LoRA layer's input to the adapter's fp32 only for
    autocast to copy it back to half precision for the multiply: leave the input as it is. Not
    with gradient checkpointing: its recompute in backward runs outside this context and must
    see the same dtypes as the forward did."""
    leave_input = torch.is_autocast_enabled(input_ids.device.type) and not _checkpointed(_base(model))
    return disable_input_dtype_casting(model, active=leave_input)


def token_nll(
    model, input_ids, labels, position_ids=None, attention_mask=None, segments=None, sliced: bool = True, prefix=None
):
    """Per-token cross-entropy at every labelled position, and the boolean mask of those positions
    (aligned with ``labels[:, 1:]``). ``segments``: the groups of sequences packed in the row
    (see :mod:`.attention`), ``prefix`` their cached prefixes; ``sliced``: apply the output
    head only where needed."""
    target = labels[:, 1:]
    keep = target != IGNORE
    inputs = _decoder_inputs(input_ids, position_ids, attention_mask, segments, prefix)
    base = _base(model)
    with _as_given(model, input_ids):
        if sliced:
            hidden = base.get_decoder()(**inputs).last_hidden_state
            return head_cross_entropy(base.get_output_embeddings(), hidden[:, :-1][keep], target[keep]), keep
        logits = model(**inputs).logits[:, :-1][keep]
    return F.cross_entropy(logits.float(), target[keep], reduction="none"), keep


def prefix_pass(model, input_ids, position_ids, segments, prefix: PrefixKV | None) -> None:
    """The decoder body over a row of shared prefixes, storing their keys and values in ``prefix``."""
    inputs = _decoder_inputs(input_ids, position_ids, None, segments, prefix)
    with _as_given(model, input_ids):
        _base(model).get_decoder()(**inputs)


class JointLoss(torch.nn.Module):
    def __init__(self, model, alpha: float, sliced: bool = True):
        super().__init__()
        self.model = model
        self.alpha = alpha
        self.sliced = sliced
        # read by accelerate from the module it prepares: the layers that FSDP wraps one by one
        # when its config names none (the decoder layers), rather than the whole model as one
        self._no_split_modules = getattr(model, "_no_split_modules", None)

    def forward(
        self,
        input_ids,
        labels=None,
        kinds=None,
        position_ids=None,
        attention_mask=None,
        segments=None,
        prefix: PrefixKV | None = None,
        counts=None,
    ):
        """(loss, loss_feedback, loss_rationale) of this pass, each term's sum over ``counts``
        (the batch's [pairs, feedback tokens, rationale tokens, ...]; this pass's own when not
        given). Without labels, the prefix pass: the decoder body only, storing into ``prefix``."""
        if labels is None:
            return prefix_pass(self.model, input_ids, position_ids, segments, prefix)
        nll, keep = token_nll(
            self.model, input_ids, labels, position_ids, attention_mask, segments, self.sliced, prefix
        )
        is_feedback = kinds[:, 1:][keep] == FEEDBACK
        n_f, n_r = (is_feedback.sum(), (~is_feedback).sum()) if counts is None else (counts[1], counts[2])
        loss_f = nll[is_feedback].sum() / n_f.clamp(min=1)
        loss_r = nll[~is_feedback].sum() / n_r.clamp(min=1)
        loss = self.alpha * loss_f + (1 - self.alpha) * loss_r
        return loss, loss_f.detach(), loss_r.detach()


def prefix_of(loss_fn, batch: dict) -> PrefixKV | None:
    """The keys and values of a collated batch's prefix pass, ready for its other passes (None
    when it has none)."""
    if batch.get("prefix") is None:
        return None
    prefix = PrefixKV()
    loss_fn(**batch["prefix"], prefix=prefix)
    prefix.detach()
    return prefix


def batch_backward(loss_fn, batch: dict, backward=torch.Tensor.backward) -> torch.Tensor:
    """Forward and ``backward`` over every pass of a collated batch (the prefix pass first, its own
    backward last, once the other passes' gradients have reached its keys and values); the
    batch's [loss, loss_feedback, loss_rationale], detached."""
    prefix = prefix_of(loss_fn, batch)
    total = None
    for one in batch["passes"]:
        loss, loss_f, loss_r = loss_fn(**one, prefix=prefix, counts=batch["counts"])
        backward(loss)
        losses = torch.stack([loss.detach(), loss_f, loss_r])
        total = losses if total is None else total + losses
    if prefix is not None:
        prefix.backward()
    assert total is not None, "a batch has at least one pass"
    return total


@torch.no_grad()
def probe(model, first: list[int], second: list[int]) -> tuple[bool, bool]:
    """Whether this model allows (the sliced head, packed rows), checked on real sequences.

    A model may post-process its logits (soft-capping, scaling) so that the bare head differs,
    or not pass the packed layout down to :mod:`.attention` (so its attention crosses
    sequences); either check then fails and the trainer falls back to the plain path for that
    feature. The packed check computes the first half of ``first`` in a pass of its own, then
    the rest of ``first`` and a sequence that starts with that half in one row that reads the
    first pass's keys and values.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    a = torch.tensor([first], device=device)
    b = torch.tensor([first[: len(first) // 2] + second], device=device)
    full_a, _ = token_nll(model, a, a, sliced=False)
    full_b, _ = token_nll(model, b, b, sliced=False)
    sliced_a, _ = token_nll(model, a, a, sliced=True)
    # fp32 throughout, or not: half-precision or 4-bit weights anywhere (QLoRA keeps its
    # embeddings fp32) compute in half precision
    tol = 1e-3 if all(p.dtype == torch.float32 for p in model.parameters()) else 5e-2
    sliced_ok = torch.allclose(sliced_a, full_a, atol=tol, rtol=tol)
    shared = len(first) // 2
    prefix = PrefixKV()
    prefix_pass(model, a[:, :shared], None, (Group(0, (shared,)),), prefix)
    prefix.detach()
    row = torch.cat([a[:, shared:], b[:, shared:]], dim=1)
    positions = torch.cat([torch.arange(shared, a.shape[1]), torch.arange(shared, b.shape[1])])[None].to(device)
    labels = row.clone()
    labels[0, a.shape[1] - shared] = IGNORE  # its predictor is the end of the prefix, in the other pass
    segments = (Group(0, (a.shape[1] - shared, b.shape[1] - shared), cached=0),)
    try:
        nll, _ = token_nll(model, row, labels, positions, segments=segments, sliced=sliced_ok, prefix=prefix)
    except (AttributeError, KeyError):  # an attention layer without a layer index, or not reached
        packed_ok = False
    else:
        packed_ok = torch.allclose(nll, torch.cat([full_a[shared:], full_b[shared:]]), atol=tol, rtol=tol)
    model.train(was_training)
    return sliced_ok, bool(packed_ok)
