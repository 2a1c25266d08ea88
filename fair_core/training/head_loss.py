"""The output head and its cross-entropy as one autograd step, in cache-sized chunks.

Applied the plain way (``F.cross_entropy(head(h).float(), target)``), the [tokens, vocab]
logits pass through memory many times: the bf16 product, its fp32 copy, log-softmax, and in
the backward a zero-filled gradient, log-softmax's backward and a cast back. With a vocabulary
of 49k to 128k those passes cost as much as the decoder body on a CPU. Here the head's product
is one matrix multiply, kept in its own dtype; the fp32 work (log-sum-exp forward, softmax minus
one-hot backward) runs on chunks of rows small enough to stay in cache, and the backward writes
the logits' gradient straight into the stored logits' buffer before one multiply back to the
hidden states. The numbers are those of the plain way: the same product, fp32 softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# fp32 logits per chunk. A CPU core's L2 holds its share of a 2 MiB chunk (4 MiB was 25%
# slower on SmolLM2's 49k vocabulary); a GPU wants few, large launches, memory permitting.
CHUNK_ELEMENTS = {"cpu": 1 << 19, "cuda": 1 << 26}


def _chunks(logits: torch.Tensor) -> list[slice]:
    n_rows, vocab = logits.shape
    step = max(1, CHUNK_ELEMENTS.get(logits.device.type, CHUNK_ELEMENTS["cuda"]) // vocab)
    return [slice(i, i + step) for i in range(0, n_rows, step)]


class _HeadCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, target):
        logits = F.linear(hidden, weight)  # under autocast: its dtype (bf16), as the plain head
        nll = torch.empty(len(target), dtype=torch.float32, device=hidden.device)
        lse = torch.empty_like(nll)
        for rows in _chunks(logits):
            z = logits[rows].float()
            lse[rows] = torch.logsumexp(z, dim=1)
            nll[rows] = lse[rows] - z.gather(1, target[rows, None]).squeeze(1)
        ctx.save_for_backward(hidden, weight, target, logits, lse)
        return nll

    @staticmethod
    @torch.autograd.function.once_differentiable  # the backward consumes the stored logits
    def backward(ctx, grad_nll):
        hidden, weight, target, logits, lse = ctx.saved_tensors
        grad = logits  # overwritten chunk by chunk: d nll / d logits = softmax - one-hot
        for rows in _chunks(logits):
            p = (logits[rows].float() - lse[rows, None]).exp_()
            p[torch.arange(p.shape[0], device=p.device), target[rows]] -= 1
            grad[rows] = p.mul_(grad_nll[rows, None])
        w = weight.to(grad.dtype)
        grad_hidden = (grad @ w).to(hidden.dtype) if ctx.needs_input_grad[0] else None
        grad_weight = (grad.t() @ hidden.to(grad.dtype)).to(weight.dtype) if ctx.needs_input_grad[1] else None
        return grad_hidden, grad_weight, None


def _whole(weight: torch.Tensor) -> bool:
    return type(weight.data) is torch.Tensor and not hasattr(weight, "ds_id")


def head_cross_entropy(head: torch.nn.Module, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy of ``head(hidden)`` against ``target``; fused for a plain linear
    head (no bias) whose weight is all here, the plain way for any other. A weight sharded by
    DeepSpeed ZeRO-3 (``ds_id``) or FSDP2 (a DTensor) is gathered only by the head's own forward."""
    if type(head) is torch.nn.Linear and head.bias is None and _whole(head.weight):
        return _HeadCrossEntropy.apply(hidden, head.weight, target)
    return F.cross_entropy(head(hidden).float(), target, reduction="none")
