"""What the references' score costs against what accuracy costs: scoring vs generating.

An arm of an experiment is measured either by generating an answer to every test question
(accuracy) or by scoring held-out teacher rationales teacher-forced (fair_core.results.likelihood: one
forward pass per text, no generation). This takes the paper's recorded SVAMP rationales on
``--items`` mistakes (the references an experiment holds out), scores them with the "hf" student,
and generates the student's answers to as many SVAMP test questions at the ablation's settings
(greedy, 160 new tokens, batches of 32), on the same model in one process. It prints both times
per item and per arm (the ablation's 267 reference items against accuracy's 940 clean test
items), and ``RESULT per_item=<x> per_arm=<y>`` last: how many times less scoring costs than
answering, item for item and arm for arm.

    python benchmarks/likelihood.py                   # SmolLM2-135M-Instruct, 48 items
    python benchmarks/likelihood.py --items 96 --threads 2
"""

from __future__ import annotations

import argparse
import time

from fair_core.config import StudentConfig
from fair_core.host import get_host
from fair_core.paper import read
from fair_core.results.likelihood import Reference
from fair_core.task import Problem, data_root


def references(task, n: int) -> list[Reference]:
    """The three recorded teachers' rationales on the paper's last ``n`` SVAMP mistakes, each
    classed by the task's reader, as an experiment classes its held-out references."""
    path = data_root() / "fair-reference" / "Llama-2-7b-chat-hf_svamp_rationale_round0.json"
    out = []
    for x in read(path)[-n:]:
        problem = Problem(str(x["id"]), x["question"], task.extract(str(x["gold_answer"])) or "")
        for teacher in ("gpt", "gemini", "mistral"):
            text = x[f"{teacher}_rationale"][0]
            answer, correct = task.grade(problem, text)
            if answer is not None:
                prompt = task.prompt("learn_rationale", question=x["question"])
                out.append(Reference(problem.id, prompt, task.rationale_target(text), correct, teacher))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2", help="student.model: 'smollm2', a folder or a hub id")
    ap.add_argument("--items", type=int, default=48)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument(
        "--adapter", help="a trained LoRA adapter (a run's rounds/0/adapter): a trained arm answers at length"
    )
    ap.add_argument("--test-items", type=int, default=940, help="the clean test items accuracy needs (SVAMP: 940)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    host = get_host()
    task = host.get("tasks", "svamp")(prompts="paper")
    refs = references(task, args.items)
    questions = [task.prompt("student", question=p.question) for p in task.load("test")[: args.items]]
    config = StudentConfig(model=args.model, backend="hf", max_new_tokens=160, batch_size=32)
    student = host.get("students", "hf")(config, adapter=args.adapter)
    student.score([(r.prompt, r.text) for r in refs[:4]])  # warm: first-call costs out of both figures

    start = time.perf_counter()
    scores = student.score([(r.prompt, r.text) for r in refs])
    scoring = time.perf_counter() - start
    start = time.perf_counter()
    student.generate(questions)
    generating = time.perf_counter() - start

    per_item = {"scored": scoring / args.items, "answered": generating / len(questions)}
    per_arm = {"scored": per_item["scored"] * 267, "answered": per_item["answered"] * args.test_items}
    print(f"model {args.model}{' + ' + args.adapter if args.adapter else ''}, torch threads {torch.get_num_threads()}")
    print(
        f"scored   {len(refs)} references of {args.items} items in {scoring:.1f} s: {per_item['scored']:.2f} s an item"
    )
    print(f"answered {len(questions)} test questions in {generating:.1f} s: {per_item['answered']:.2f} s an item")
    print(f"mean score {sum(scores) / len(scores):.3f} (log-prob per token)")
    print(
        f"per arm: references of 267 items {per_arm['scored'] / 60:.1f} min, accuracy on {args.test_items} "
        f"clean test items {per_arm['answered'] / 60:.1f} min"
    )
    item_ratio = per_item["answered"] / per_item["scored"]
    arm_ratio = per_arm["answered"] / per_arm["scored"]
    print(f"RESULT per_item={item_ratio:.1f} per_arm={arm_ratio:.1f}")


if __name__ == "__main__":
    main()
