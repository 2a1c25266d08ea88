"""Examination speed: the student answering train questions in batches vs one at a time.

The paper's code examines the student with one ``model.generate`` call per question. This runs
that loop and the "hf" student backend (left-padded, length-sorted batches whose rows leave as
they end) on the same model, questions and greedy settings, and prints both times, how many
answers differ, and ``RESULT speedup=<x>`` last.

    python benchmarks/examine.py                      # SmolLM2-135M-Instruct, 64 SVAMP questions
    python benchmarks/examine.py --batch-size 16,32,64 --threads 2
"""

from __future__ import annotations

import argparse
import json
import time

from fair_core.config import StudentConfig
from fair_core.task import data_root


def svamp_questions(n: int) -> tuple[list[str], str]:
    """The first ``n`` SVAMP train prompts from the svamp task, else straight from SVAMP.json."""
    try:
        from fair_core.host import get_host

        task = get_host().get("tasks", "svamp")()
        problems = task.load("train")[:n]
        return [task.prompts["student"].format(question=p.question) for p in problems], "svamp task, train split"
    except Exception as e:  # noqa: BLE001 - the task plugin is optional here; the timing needs only questions
        reason = f"{type(e).__name__}: {e}".splitlines()[0][:80]
    items = json.loads((data_root() / "svamp" / "SVAMP.json").read_text())
    items.sort(key=lambda it: int(it["ID"].rsplit("-", 1)[1]))
    return [f"{it['Body']} {it['Question']}" for it in items[:n]], f"SVAMP.json by ID ({reason})"


def one_at_a_time(student, prompts: list[str], new_tokens: int) -> list[str]:
    """The paper's loop: one unpadded prompt per ``generate`` call."""
    import torch

    tok, out = student.tokenizer, []
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([student.encode(prompt)], device=student.device)
            gen = student.model.generate(
                input_ids=ids,
                max_new_tokens=new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tok.pad_token_id,
            )
            out.append(tok.decode(gen[0, ids.shape[1] :], skip_special_tokens=True).strip())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2", help="student.model: 'smollm2', a folder or a hub id")
    ap.add_argument("--n", type=int, default=64, help="questions")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", default="64", help="one size, or a comma list to compare")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    ap.add_argument("--dtype", default="auto", help="student.dtype for both ways (auto: fp32 on CPU)")
    args = ap.parse_args()

    import torch

    from fair_students.hf import HFStudent

    if args.threads:
        torch.set_num_threads(args.threads)
    prompts, source = svamp_questions(args.n)
    config = StudentConfig(model=args.model, max_new_tokens=args.new_tokens, dtype=args.dtype)
    student = HFStudent(config)
    print(
        f"model {args.model} on {student.device} ({student.model.dtype}), {torch.get_num_threads()} threads; "
        f"{len(prompts)} questions from {source}; {args.new_tokens} new tokens, greedy",
        flush=True,
    )
    student.generate(prompts[:2])  # warm-up, untimed

    start = time.perf_counter()
    single = one_at_a_time(student, prompts, args.new_tokens)
    base = time.perf_counter() - start
    print(f"one at a time: {base:.1f} s", flush=True)

    best = None
    for size in [int(s) for s in args.batch_size.split(",")]:
        student.config = config.model_copy(update={"batch_size": size})
        start = time.perf_counter()
        batched = student.generate(prompts)
        took = time.perf_counter() - start
        differ = sum(a != b for a, b in zip(single, batched))
        print(
            f"batched (batch size {size}): {took:.1f} s, speedup {base / took:.2f}x, "
            f"{differ} of {len(prompts)} answers differ from one at a time",
            flush=True,
        )
        best = max(best or 0.0, base / took)
    print(f"RESULT speedup={best:.2f}")


if __name__ == "__main__":
    main()
