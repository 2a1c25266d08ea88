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
(for the paper's layout, those that survive its 512-token truncation). Each layout trains in a
process of its own, so that its peak memory is its own: on a CPU the peak resident memory of
that process (the model included, alike for both), on a GPU torch's peak allocation, and there
also the timed steps' own ("step memory": their peak over what was held before them). The two
processes take turns, step by step. The last line is
``RESULT speedup=<ours / paper real tokens/s> memory_ratio=<ours / paper peak memory>``.

Models: ``--model smollm2`` (default; the real SmolLM2-135M-Instruct, on the paper's SVAMP
committee data), ``--model PATH`` (a local folder), or ``--arch llama-1b`` / ``--tiny`` (random
weights built from a config, synthetic pairs with SVAMP's measured lengths; no files needed).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

import torch  # noqa: E402
from accelerate.utils import send_to_device  # noqa: E402

from fair_core.config import TrainConfig  # noqa: E402
from fair_core.testing.pairs import paper_pairs  # noqa: E402
from fair_core.training import attention  # noqa: E402
from fair_core.training.collator import PairCollator  # noqa: E402
from fair_core.training.data import Encoded, Encoder, LengthGroupedBatches, Pair  # noqa: E402
from fair_core.training.loss import JointLoss, batch_backward, probe  # noqa: E402
from fair_core.training.trainer import PASS_TOKENS, adapt, load_model, resolve_precision  # noqa: E402

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
# dense bf16 peak FLOP/s by device name, the first whose words all appear in it counting
PEAK_BF16 = {
    "H100 NVL": 835e12,
    "H200 NVL": 835e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "H200": 989e12,
    "A100": 312e12,
}


# -- data ----------------------------------------------------------------------------------------


def real_pairs(tokenizer, data_dir: Path) -> list[Pair]:
    """The paper's SVAMP committee as compiled pairs: gpt's feedback, the first accepted rationale."""
    from fair_tasks.prompts import NUMBER

    encode = Encoder(tokenizer, chat_template=True, max_length=1024)
    return [encode.pair(row) for row in paper_pairs(data_dir, NUMBER)]


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


# -- one layout, in its own process -------------------------------------------------------------


def peak_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def step_mb(device: str, resident_mb: float) -> float | None:
    """On a GPU, the most the timed steps allocated over what was held before them (weights,
    gradients and optimizer state kept between steps): the figure that grows with the batch,
    which a full fine-tuning's fixed state hides in the peak; None on a CPU."""
    return peak_mb(device) - resident_mb if device == "cuda" else None


def layout(side: str, args, batches: list[list[Pair]], eos: int, conn) -> None:
    """Train ``side``'s layout on ``batches``, one step each time the parent asks; report each step,
    then the peak memory."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = resolve_precision(args.precision)
    train = TrainConfig(method=args.method, precision=precision, pass_tokens=args.pass_tokens)
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    model = build_model(args, train, precision, device)
    first = batches[0][0]
    if side == "ours":
        sliced, packed = probe(model, first.feedback.ids[:64], first.rationale.ids[:64])
        loss_fn = JointLoss(model, args.alpha, sliced)
        pass_tokens = None if args.pass_tokens == 0 else args.pass_tokens or PASS_TOKENS[device]
        collate = PairCollator(eos, packed, multiple_of=8 if device == "cuda" else 1, pass_tokens=pass_tokens)
        conn.send({"packed": packed, "sliced": sliced, "pass_tokens": pass_tokens})

        def step(pairs):
            batch = send_to_device(collate(pairs), device)
            with torch.autocast(device, dtype=half, enabled=half is not None):
                loss = batch_backward(loss_fn, batch)[0]
            counts = batch["counts"]
            seqs = [len(p.feedback.ids) for p in pairs] + [len(p.rationale.ids) for p in pairs]
            positions = int(counts[3])
            flops = forward_flops(model, positions, int(counts[1] + counts[2]), sum(n * n for n in seqs))
            return loss, int(counts[1] + counts[2]), flops
    else:
        conn.send({})

        def step(pairs):
            halves, real = paper_batch(pairs, eos)
            with torch.autocast(device, dtype=half, enabled=half is not None):
                losses = [model(**{k: v.to(device) for k, v in h.items()}).loss for h in halves]
                loss = args.alpha * losses[0] + (1 - args.alpha) * losses[1]
            loss.backward()
            positions = 2 * len(pairs) * PAPER_LENGTH
            return loss.detach(), real, forward_flops(model, positions, positions, positions * PAPER_LENGTH)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=2e-4)
    model.train()
    resident = earlier_peak = 0.0
    while (i := conn.recv()) is not None:
        if device == "cuda":
            torch.cuda.synchronize()
            if i == args.warmup:  # the first timed step: from here on, the step's own memory
                resident, earlier_peak = torch.cuda.memory_allocated() / 2**20, max(earlier_peak, peak_mb(device))
                torch.cuda.reset_peak_memory_stats()
        t0, c0 = time.perf_counter(), time.process_time()
        loss, real, flops = step(batches[i])
        torch.nn.utils.clip_grad_norm_(params, train.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        conn.send((time.perf_counter() - t0, time.process_time() - c0, real, flops, loss.item()))
    conn.send((max(earlier_peak, peak_mb(device)), step_mb(device, resident)))


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
    ap.add_argument(
        "--pass-tokens",
        type=int,
        default=None,
        help="ours: tokens per forward pass (default: the trainer's; 0: one pass)",
    )
    args = ap.parse_args()
    if args.tiny:
        args.arch, args.batch, args.steps = "tiny", 2, 2
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precision = resolve_precision(args.precision)

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
    batches = order[: args.warmup + args.steps]

    spawn = multiprocessing.get_context("spawn")  # a fresh process per layout: its memory is its own
    sides, workers = {}, []
    for side in ("ours", "paper"):
        parent, child = spawn.Pipe()
        worker = spawn.Process(target=layout, args=(side, args, batches, eos, child), daemon=True)
        worker.start()
        child.close()  # the worker's end: if it dies, recv() here fails at once instead of waiting
        sides[side] = parent
        workers.append(worker)
    info = {side: conn.recv() for side, conn in sides.items()}
    stats = {k: {"time": 0.0, "cpu": 0.0, "tokens": 0, "flops": 0.0, "loss": []} for k in sides}
    backward_factor = 2 if args.method == "full" else 1  # LoRA: no weight gradients for frozen weights

    for i in range(len(batches)):
        timed_step = i >= args.warmup
        best: dict = {}
        for r in range(args.repeats if timed_step else 1):
            for key, conn in sides.items():  # turn by turn, so a busy moment hits both sides alike
                conn.send(i)
                elapsed, cpu, real, flops, loss = conn.recv()
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
    peak_memory, step_memory = {}, {}
    for key, conn in sides.items():
        conn.send(None)
        peak_memory[key], step_memory[key] = conn.recv()
    for worker in workers:
        worker.join()

    peak = None
    if device == "cuda" and precision in ("bf16", "fp16"):
        gpu = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16.items() if all(w in gpu for w in k.split())), None)
    where = (
        torch.cuda.get_device_name()
        if device == "cuda"
        else f"CPU ({torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} at the end)"
    )
    ours = info["ours"]
    print(
        f"model {name}, {args.method}, {precision}, batch {args.batch} pairs, {args.steps} timed steps "
        f"(fastest of {args.repeats} runs each) after {args.warmup} warm-up, on {where}; "
        f"ours: packed rows {ours['packed']}, sliced head {ours['sliced']}, passes of at most "
        f"{ours['pass_tokens'] or 'any number of'} tokens"
    )
    memory = "peak resident memory of its process" if device == "cpu" else "peak memory allocated by torch"
    rate, cpu_rate = {}, {}
    for key, s in stats.items():
        rate[key] = s["tokens"] / s["time"]
        cpu_rate[key] = s["tokens"] / s["cpu"]
        line = (
            f"{key:>5}: {rate[key]:10.1f} real tokens/s  ({s['tokens']} tokens in {s['time']:.2f} s, "
            f"{s['time'] / args.steps:.3f} s/step; {cpu_rate[key]:.1f} per process-CPU second; "
            f"mean loss {statistics.mean(s['loss']):.3f}), {memory} {peak_memory[key]:.0f} MiB"
        )
        if step_memory[key] is not None:
            line += f", step memory {step_memory[key]:.0f} MiB"
        if peak:
            line += f", MFU {s['flops'] / s['time'] / peak:.1%}"
        print(line)
    if device == "cpu":  # on a shared machine, CPU time is less disturbed by other programs than wall time
        print(f"speedup by process CPU time: {cpu_rate['ours'] / cpu_rate['paper']:.2f}")
    print(
        f"RESULT speedup={rate['ours'] / rate['paper']:.2f} "
        f"memory_ratio={peak_memory['ours'] / peak_memory['paper']:.2f}"
    )


if __name__ == "__main__":
    main()
