"""Where a training step's memory goes: the trainer's process, piece by piece, on one batch.

Loads the demo's student (SmolLM2-135M-Instruct, LoRA, the trainer's precision) on the paper's
SVAMP pairs, then reports resident memory after each phase of setting up, what one forward
pass keeps for its backward (every tensor autograd saves, counted once per storage and grouped
by the code that saved it), and the peak of a few training steps with passes of the given
sizes. Each pass size runs in a fresh process, so its peak is its own.

    python benchmarks/memory.py                       # passes of 0 (one per batch), 1024, 512 tokens
    python benchmarks/memory.py --pass-tokens 768 --steps 4
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import resource
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins"), str(ROOT / "benchmarks")]


def rss_mb() -> float:
    """Resident memory now (Linux /proc)."""
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def setup(batch_size: int, pass_tokens: int | None, phases: list):
    import torch
    from train import real_pairs
    from transformers import AutoTokenizer

    from fair_core.config import TrainConfig
    from fair_core.task import data_root
    from fair_core.training.collator import PairCollator
    from fair_core.training.data import LengthGroupedBatches
    from fair_core.training.loss import JointLoss, probe
    from fair_core.training.trainer import load_model, resolve_precision
    from fair_students.smollm2 import smollm2_path

    phases.append(("python, torch, transformers imported", rss_mb()))
    path = smollm2_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    pool = real_pairs(tokenizer, data_root() / "fair-reference")
    order = [[pool[i] for i in b] for b in LengthGroupedBatches([p.length for p in pool], batch_size, seed=0)]
    phases.append(("tokenizer and pairs", rss_mb()))
    precision = resolve_precision("auto")
    model = load_model(path, TrainConfig(method="lora", precision=precision), precision, None, None)
    phases.append((f"model loaded ({precision}, LoRA)", rss_mb()))
    first = order[0][0]
    sliced, packed = probe(model, first.feedback.ids[:64], first.rationale.ids[:64])
    phases.append(("probe", rss_mb()))
    collate = PairCollator(tokenizer.eos_token_id, packed, pass_tokens=pass_tokens)
    half = {"bf16": torch.bfloat16}.get(precision)
    return model, JointLoss(model, 0.5, sliced), collate, order, half


def saved_by_source(loss_fn, batch, half) -> tuple[collections.Counter, int]:
    """Bytes autograd keeps from the forward of ``batch``'s first pass, by the function
    (file:function, two frames) that saved them; each storage counted once, the model's own
    weights (which autograd keeps a reference to) not at all."""
    import torch

    seen = {p.untyped_storage().data_ptr() for p in loss_fn.parameters()}
    by: collections.Counter = collections.Counter()

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            frames = [
                f for f in traceback.extract_stack() if "site-packages" in f.filename or "fair_core" in f.filename
            ]
            by[" < ".join(f"{Path(f.filename).name}:{f.name}" for f in frames[-2:][::-1])] += storage.nbytes()
        return t

    from fair_core.training.loss import prefix_of

    one = batch["passes"][0]
    with torch.autocast("cpu", dtype=half, enabled=half is not None):
        prefix = prefix_of(loss_fn, batch)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss_fn(**one, prefix=prefix, counts=batch["counts"])
    return by, one["input_ids"].numel()


def profile(pass_tokens: int | None, steps: int, batch_size: int, conn) -> None:
    import torch

    from fair_core.training.loss import batch_backward

    phases: list = []
    model, loss_fn, collate, order, half = setup(batch_size, pass_tokens, phases)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    model.train()
    steps_out = []
    for pairs in order[:steps]:
        batch = collate(pairs)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=half, enabled=half is not None):
            batch_backward(loss_fn, batch)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        steps_out.append((int(batch["counts"][3]), len(batch["passes"]), time.perf_counter() - t0, peak_mb()))
    by, tokens = saved_by_source(loss_fn, collate(order[0]), half)  # after the steps: their peak is their own
    conn.send((phases, by, tokens, steps_out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pass-tokens", type=int, nargs="*", default=[0, 1024, 512], help="0: one pass per batch")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    spawn = multiprocessing.get_context("spawn")
    for n in args.pass_tokens:
        parent, child = spawn.Pipe()
        worker = spawn.Process(target=profile, args=(n or None, args.steps, args.batch, child))
        worker.start()
        phases, by, tokens, steps = parent.recv()
        worker.join()
        print(f"== passes of {n or 'any number of'} tokens")
        for what, mb in phases:
            print(f"  resident after {what:<40} {mb:8.0f} MiB")
        total = sum(by.values())
        per_token = total / tokens / 1024
        print(
            f"  kept for backward, one pass of {tokens} tokens: {total / 2**20:.0f} MiB ({per_token:.0f} KiB a token)"
        )
        for where, nbytes in by.most_common(8):
            print(f"    {nbytes / 2**20:8.0f} MiB  {where}")
        for used, passes, seconds, peak in steps:
            print(f"  step of {used} tokens in {passes} passes: {seconds:.1f} s, peak resident so far {peak:.0f} MiB")
        print(f"RESULT pass_tokens={n} peak_mb={steps[-1][3]:.0f}")


if __name__ == "__main__":
    main()
