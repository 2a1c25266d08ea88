"""The joint loss L = alpha * L_feedback + (1 - alpha) * L_rationale, in one forward pass.

Each term is the mean cross-entropy over the response tokens of its half of the batch. The
decoder body runs once over the whole batch; the output head runs only at the positions that
predict a response token (a fraction of all positions), so the full [batch, length, vocab]
logits are never built. The loss is an ``nn.Module`` around the model so that accelerate's
wrappers (DDP, FSDP, DeepSpeed, autocast) see every forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from peft.helpers import disable_input_dtype_casting

from .collator import FEEDBACK, IGNORE
from .head_loss import head_cross_entropy


def _base(model):
    """The transformers model inside a peft wrapper (LoRA layers are injected into it in place)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _checkpointed(model) -> bool:
    flag = getattr(model, "is_activation_checkpointing", None)  # transformers >= 5
    return getattr(model, "is_gradient_checkpointing", False) if flag is None else flag


def token_nll(model, input_ids, labels, position_ids=None, attention_mask=None, segments=None, sliced: bool = True):
    """Per-token cross-entropy at every labelled position, and the boolean mask of those positions
    (aligned with ``labels[:, 1:]``). ``segments``: the lengths of the sequences packed in the
    row (see :mod:`.attention`); ``sliced``: apply the output head only where needed."""
    target = labels[:, 1:]
    keep = target != IGNORE
    inputs = {
        "input_ids": input_ids,
        "position_ids": position_ids,
        "attention_mask": attention_mask,
        "use_cache": False,
    }
    if segments is not None:
        inputs["fair_segments"] = tuple(segments)
    # Under autocast, peft would copy each LoRA layer's input to the adapter's fp32 only for
    # autocast to copy it back to half precision for the multiply: leave the input as it is.
    # Not with gradient checkpointing: its recompute in backward runs outside this context and
    # must see the same dtypes as the forward did.
    base = _base(model)
    leave_input = torch.is_autocast_enabled(input_ids.device.type) and not _checkpointed(base)
    with disable_input_dtype_casting(model, active=leave_input):
        if sliced:
            hidden = base.get_decoder()(**inputs).last_hidden_state
            return head_cross_entropy(base.get_output_embeddings(), hidden[:, :-1][keep], target[keep]), keep
        logits = model(**inputs).logits[:, :-1][keep]
    return F.cross_entropy(logits.float(), target[keep], reduction="none"), keep


class JointLoss(torch.nn.Module):
    def __init__(self, model, alpha: float, sliced: bool = True):
        super().__init__()
        self.model = model
        self.alpha = alpha
        self.sliced = sliced

    def forward(self, input_ids, labels, kinds, position_ids=None, attention_mask=None, segments=None):
        nll, keep = token_nll(self.model, input_ids, labels, position_ids, attention_mask, segments, self.sliced)
        is_feedback = kinds[:, 1:][keep] == FEEDBACK
        n_f = is_feedback.sum().clamp(min=1)
        n_r = (~is_feedback).sum().clamp(min=1)
        loss_f = nll[is_feedback].sum() / n_f
        loss_r = nll[~is_feedback].sum() / n_r
        loss = self.alpha * loss_f + (1 - self.alpha) * loss_r
        return loss, loss_f.detach(), loss_r.detach()


@torch.no_grad()
def probe(model, first: list[int], second: list[int]) -> tuple[bool, bool]:
    """Whether this model allows (the sliced head, packed rows), checked on real sequences.

    A model may post-process its logits (soft-capping, scaling) so that the bare head differs,
    or not pass the packed layout down to :mod:`.attention` (so its attention crosses
    sequences); either check then fails and the trainer falls back to the plain path for that
    feature. The packed check packs ``first`` with a sequence that shares its first half.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    a = torch.tensor([first], device=device)
    b = torch.tensor([first[: len(first) // 2] + second], device=device)
    full_a, _ = token_nll(model, a, a, sliced=False)
    full_b, _ = token_nll(model, b, b, sliced=False)
    sliced_a, _ = token_nll(model, a, a, sliced=True)
    tol = 1e-3 if next(model.parameters()).dtype == torch.float32 else 5e-2
    sliced_ok = torch.allclose(sliced_a, full_a, atol=tol, rtol=tol)
    shared = len(first) // 2
    row = torch.cat([a, b[:, shared:]], dim=1)
    positions = torch.cat([torch.arange(a.shape[1]), torch.arange(shared, b.shape[1])])[None].to(device)
    labels = row.clone()
    labels[0, a.shape[1]] = IGNORE  # its predictor is the end of the prefix, not the token before
    segments = ((shared, (a.shape[1] - shared, b.shape[1] - shared)),)
    nll, _ = token_nll(model, row, labels, positions, segments=segments, sliced=sliced_ok)
    packed_ok = torch.allclose(nll, torch.cat([full_a, full_b[shared:]]), atol=tol, rtol=tol)
    model.train(was_training)
    return sliced_ok, bool(packed_ok)
