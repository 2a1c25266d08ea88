"""Training throughput: our trainer's step against the paper's data layout.

Both sides train the same model (same initial weights) on the same pairs, with the same batch
size (pairs per step), optimizer and number of steps, interleaved step by step so that a busy
machine slows both alike. Only the data layout and the loss path differ:

- ours: length-grouped batches, feedback and rationale packed into rows padded to the batch's
  longest row, one forward pass, the output head only at response positions, response-only
  loss (the fair_core.training collator and JointLoss);
- paper: every sequence padded to 512 with eos, pad positions labelled eos (so they enter the
  loss), attention mask all ones, one forward pass for the feedback half and one for the
  rationale half, logits and loss over every position (Learn-from-Committee's data.py/train.py).

Throughput is counted in real tokens: response tokens that are neither prompt nor padding
(for the paper's layout, those that survive its 512-token truncation). The last line is
``RESULT speedup=<ours / paper>``.

Models: ``--model smollm2`` (default; the real SmolLM2-135M-Instruct, on the paper's SVAMP
committee data), ``--model PATH`` (a local folder), or ``--arch llama-1b`` / ``--tiny`` (random
weights built from a config, synthetic pairs with SVAMP's measured lengths; no files needed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import torch  # noqa: E402

from fair_core.config import TrainConfig  # noqa: E402
from fair_core.training import attention  # noqa: E402
from fair_core.training.collator import PairCollator  # noqa: E402
from fair_core.training.data import Encoded, Encoder, LengthGroupedBatches, Pair  # noqa: E402
from fair_core.training.loss import JointLoss, probe  # noqa: E402
from fair_core.training.trainer import MAX_GRAD_NORM, adapt, load_model, resolve_precision  # noqa: E402

PAPER_LENGTH = 512
# Token counts of the SVAMP pairs (paper committee data, SmolLM2 tokenizer, chat template,
# the learn prompts): mean, std, min, max; and the prompt prefix that every example of a kind
# shares (template, system prompt, instruction). Synthetic pairs are drawn to match them.
SVAMP = {
    "feedback_prompt": (175, 56, 105, 496),
    "feedback_response": (120, 44, 41, 281),
    "rationale_prompt": (126, 10, 106, 158),
    "rationale_response": (102, 50, 2, 316),
}
SVAMP_SHARED = {"feedback": 64, "rationale": 72}
ARCHS = {  # Llama-3.2-1B's shape; a tiny one for smoke tests
    "llama-1b": dict(
        vocab_size=128256,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        tie_word_embeddings=True,
        rope_theta=500000.0,
    ),
    "tiny": dict(
        vocab_size=4096,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        tie_word_embeddings=True,
    ),
}
PEAK_BF16 = {"H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


# -- data ----------------------------------------------------------------------------------------


def real_pairs(tokenizer, data_dir: Path) -> list[Pair]:
    """The paper's SVAMP committee as compiled pairs: gpt's feedback, the first accepted rationale."""
    from fair_tasks.prompts import NUMBER

    feedback = json.loads((data_dir / "Llama-2-7b-chat-hf_svamp_feedback_round0.json").read_text())
    rationale = json.loads((data_dir / "Llama-2-7b-chat-hf_svamp_rationale_round0.json").read_text())
    encode = Encoder(tokenizer, chat_template=True, max_length=1024)
    return [
        encode.pair(
            {
                "item_id": str(f["id"]),
                "feedback": {
                    "prompt": NUMBER["learn_feedback"].format(
                        question=f["question"], student_answer=f["student_wrong_pred"]
                    ),
                    "response": f["gpt_feedback"],
                },
                "rationale": {
                    "prompt": NUMBER["learn_rationale"].format(question=f["question"]),
                    "response": r["correct_rationale"][0],
                },
            }
        )
        for f, r in zip(feedback, rationale)
        if r["correct_rationale"]
    ]


def synthetic_pairs(n: int, vocab: int, eos: int, seed: int = 0) -> list[Pair]:
    rng = random.Random(seed)
    shared = {half: [rng.randrange(vocab) for _ in range(k)] for half, k in SVAMP_SHARED.items()}

    def draw(part):
        mean, std, lo, hi = SVAMP[part]
        return min(hi, max(lo, round(rng.gauss(mean, std))))

    def seq(half):
        p, r = draw(f"{half}_prompt"), draw(f"{half}_response")
        rest = [rng.randrange(vocab) for _ in range(p + r - 1 - len(shared[half]))]
        return Encoded(shared[half] + rest + [eos], p)

    return [Pair(str(i), seq("feedback"), seq("rationale")) for i in range(n)]


def paper_batch(pairs: list[Pair], eos: int) -> tuple[list[dict], int]:
    """The paper's tensors for one batch (feedback half, rationale half) and its real tokens."""
    halves, real = [], 0
    for half in ("feedback", "rationale"):
        ids, labels = [], []
        for p in pairs:
            s = getattr(p, half)
            lab = [-100] * s.n_prompt + s.ids[s.n_prompt :]
            real += sum(1 for x in lab[:PAPER_LENGTH] if x != -100)
            pad = PAPER_LENGTH - len(s.ids)
            ids.append((s.ids + [eos] * pad)[:PAPER_LENGTH])
            labels.append((lab + [eos] * pad)[:PAPER_LENGTH])
        halves.append(
            {
                "input_ids": torch.tensor(ids),
                "labels": torch.tensor(labels),
                "attention_mask": torch.ones(len(ids), PAPER_LENGTH, dtype=torch.long),
            }
        )
    return halves, real


# -- models ----------------------------------------------------------------------------------------


def build_model(args, train: TrainConfig, precision: str, device: str):
    """A fresh model to train (same weights on every call)."""
    torch.manual_seed(0)
    if args.arch is None:
        return load_model(args.path, train, precision, {"": device} if device == "cuda" else None, None)
    from transformers import LlamaConfig, LlamaForCausalLM

    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    config = LlamaConfig(
        **ARCHS[args.arch], max_position_embeddings=2048, attn_implementation=attention.implementation()
    )
    with torch.device(device):
        model = LlamaForCausalLM(config)
    if half is not None and train.method != "full":
        model = model.to(half)
    return adapt(model, train)


def forward_flops(model, positions: int, head_positions: int, square_lengths: int) -> float:
    """Forward FLOPs: 2 per weight per position in the body, the head where computed, attention."""
    c = model.config
    embed = c.vocab_size * c.hidden_size
    body = sum(
        p.numel()
        for n, p in model.named_parameters()
        if "embed_tokens" not in n and "lm_head" not in n and "lora_" not in n
    )
    return 2 * body * positions + 2 * embed * head_positions + 2 * c.hidden_size * c.num_hidden_layers * square_lengths


# -- the run ----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2", help="smollm2 or a local model folder")
    ap.add_argument("--arch", choices=sorted(ARCHS), help="random weights from this config instead of --model")
    ap.add_argument("--tiny", action="store_true", help="smoke test: --arch tiny, batch 2, 2 steps")
    ap.add_argument("--method", choices=["lora", "full"], default="lora")
    ap.add_argument("--batch", type=int, default=8, help="pairs per step (both sides)")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per side")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps per side first")
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run every timed batch this many times per side and count the fastest run "
        "(filters out moments when other programs take the CPU)",
    )
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    args = ap.parse_args()
    if args.tiny:
        args.arch, args.batch, args.steps = "tiny", 2, 2
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = resolve_precision(args.precision)
    train = TrainConfig(method=args.method, precision=precision)

    if args.arch is None:
        from transformers import AutoTokenizer

        from fair_core.task import data_root

        if args.model == "smollm2":
            from fair_students.smollm2 import smollm2_path

            args.path = smollm2_path()
        else:
            args.path = Path(args.model)
        tokenizer = AutoTokenizer.from_pretrained(args.path)
        eos = tokenizer.eos_token_id
        pool = real_pairs(tokenizer, data_root() / "fair-reference")
        name = args.path.name
    else:
        eos = 2
        pool = synthetic_pairs(365, ARCHS[args.arch]["vocab_size"], eos)  # as many as SVAMP's pairs
        name = f"{args.arch} (random weights, synthetic SVAMP-length pairs)"
    # The trainer's own batches: its epoch-0 order over the whole dataset (length-grouped);
    # the paper's layout gets the very same pairs in the very same batches.
    order = [[pool[i] for i in b] for b in LengthGroupedBatches([p.length for p in pool], args.batch, seed=0)]
    if len(order) < args.warmup + args.steps:
        raise SystemExit(f"only {len(order)} batches of {args.batch} pairs: lower --steps or --batch")
    warm, timed = order[: args.warmup], order[args.warmup : args.warmup + args.steps]

    ours_model = build_model(args, train, precision, device)
    paper_model = build_model(args, train, precision, device)
    sliced, packed = probe(ours_model, order[0][0].feedback.ids[:64], order[0][0].rationale.ids[:64])
    ours_loss = JointLoss(ours_model, args.alpha, sliced)
    collate = PairCollator(eos, packed, multiple_of=8 if device == "cuda" else 1)

    def ours_step(batch_pairs):
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in collate(batch_pairs).items()}
        counts = batch.pop("counts")
        loss = ours_loss(**batch)[0]
        seqs = [len(p.feedback.ids) for p in batch_pairs] + [len(p.rationale.ids) for p in batch_pairs]
        flops = forward_flops(
            ours_model, batch["input_ids"].numel(), int(counts[1] + counts[2]), sum(n * n for n in seqs)
        )
        return loss, int(counts[1] + counts[2]), flops

    def paper_step(batch_pairs):
        halves, real = paper_batch(batch_pairs, eos)
        losses = [paper_model(**{k: v.to(device) for k, v in h.items()}).loss for h in halves]
        positions = 2 * len(batch_pairs) * PAPER_LENGTH
        flops = forward_flops(paper_model, positions, positions, positions * PAPER_LENGTH)
        return args.alpha * losses[0] + (1 - args.alpha) * losses[1], real, flops

    sides = {"ours": (ours_model, ours_step), "paper": (paper_model, paper_step)}
    optimizers = {
        k: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=2e-4) for k, (m, *_) in sides.items()
    }
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    stats = {
        k: {"time": 0.0, "cpu": 0.0, "tokens": 0, "flops": 0.0, "step_mb": 0.0, "peak_mb": 0.0, "loss": []}
        for k in sides
    }
    backward_factor = 2 if args.method == "full" else 1  # LoRA: no weight gradients for frozen weights

    def run_step(key: str, batch: list) -> tuple[float, float, int, float, float]:
        model, step = sides[key]
        model.train()
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.autocast(device, dtype=half, enabled=half is not None):
            loss, real, flops = step(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], MAX_GRAD_NORM)
        optimizers[key].step()
        optimizers[key].zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
            s = stats[key]
            s["step_mb"] = max(s["step_mb"], (torch.cuda.max_memory_allocated() - before) / 2**20)
            s["peak_mb"] = max(s["peak_mb"], torch.cuda.max_memory_allocated() / 2**20)
        return time.perf_counter() - t0, time.process_time() - c0, real, flops, loss.item()

    for i, batch in enumerate(warm + timed):
        timed_step = i >= args.warmup
        best: dict = {}
        for r in range(args.repeats if timed_step else 1):
            for key in sides:  # interleaved, so a busy moment hits both sides alike
                elapsed, cpu, real, flops, loss = run_step(key, batch)
                label = (
                    f"step {i + 1}"
                    + ("" if timed_step else " (warm-up)")
                    + (f" run {r + 1}" if args.repeats > 1 else "")
                )
                print(
                    f"  {label} {key}: {elapsed:.2f} s (process CPU {cpu:.2f} s), {real} real tokens, loss {loss:.3f}",
                    flush=True,
                )
                if key not in best or elapsed < best[key][0]:
                    best[key] = (elapsed, cpu, real, flops, loss)
        if timed_step:
            for key, (elapsed, cpu, real, flops, loss) in best.items():
                s = stats[key]
                s["time"] += elapsed
                s["cpu"] += cpu
                s["tokens"] += real
                s["flops"] += flops * (1 + backward_factor)
                s["loss"].append(loss)

    peak = None
    if device == "cuda" and half is not None:
        gpu = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16.items() if all(w in gpu for w in k.split())), None)
    where = (
        torch.cuda.get_device_name()
        if device == "cuda"
        else f"CPU ({torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at the end)"
    )
    print(
        f"model {name}, {args.method}, {precision}, batch {args.batch} pairs, {args.steps} timed steps "
        f"(fastest of {args.repeats} runs each) after {args.warmup} warm-up, on {where}; "
        f"ours: packed rows {packed}, sliced head {sliced}"
    )
    rate, cpu_rate = {}, {}
    for key, s in stats.items():
        rate[key] = s["tokens"] / s["time"]
        cpu_rate[key] = s["tokens"] / s["cpu"]
        line = (
            f"{key:>5}: {rate[key]:10.1f} real tokens/s  ({s['tokens']} tokens in {s['time']:.2f} s, "
            f"{s['time'] / args.steps:.3f} s/step; {cpu_rate[key]:.1f} per process-CPU second; "
            f"mean loss {statistics.mean(s['loss']):.3f})"
        )
        if device == "cuda":
            line += f", step memory {s['step_mb']:.0f} MiB (peak {s['peak_mb']:.0f} MiB, both models resident)"
        if peak:
            line += f", MFU {s['flops'] / s['time'] / peak:.1%}"
        print(line)
    if device == "cpu":  # on a shared machine, CPU time is less disturbed by other programs than wall time
        print(f"speedup by process CPU time: {cpu_rate['ours'] / cpu_rate['paper']:.2f}")
    print(f"RESULT speedup={rate['ours'] / rate['paper']:.2f}")


if __name__ == "__main__":
    main()
