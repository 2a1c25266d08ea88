"""What the references' score costs against what accuracy costs: scoring vs generating.

An arm of an experiment is measured either by generating an answer to every test question
(accuracy) or by scoring held-out teacher rationales teacher-forced (fair_core.results.likelihood: one
forward pass per text, no generation). This takes the paper's recorded SVAMP rationales on
``--items`` mistakes (the references an experiment holds out), scores them with the "hf" student,
and generates the student's answers to as many SVAMP test questions at the ablation's settings
(greedy, 160 new tokens, batches of 32), on the same model in one process. It prints both times
per item and ``RESULT cheaper=<x>`` last: how many times less an item costs scored than answered.

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
                out.append(Reference(problem.id, prompt, task.rationale_target(text), correct))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2", help="student.model: 'smollm2', a folder or a hub id")
    ap.add_argument("--items", type=int, default=48)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    host = get_host()
    task = host.get("tasks", "svamp")(prompts="paper")
    refs = references(task, args.items)
    questions = [task.prompt("student", question=p.question) for p in task.load("test")[: args.items]]
    config = StudentConfig(model=args.model, backend="hf", max_new_tokens=160, batch_size=32)
    student = host.get("students", "hf")(config)
    student.score([(r.prompt, r.text) for r in refs[:4]])  # warm: first-call costs out of both figures

    start = time.perf_counter()
    scores = student.score([(r.prompt, r.text) for r in refs])
    scoring = time.perf_counter() - start
    start = time.perf_counter()
    student.generate(questions)
    generating = time.perf_counter() - start

    per_item = {"scored": scoring / args.items, "answered": generating / len(questions)}
    print(f"model {args.model}, torch threads {torch.get_num_threads()}")
    print(
        f"scored   {len(refs)} references of {args.items} items in {scoring:.1f} s: {per_item['scored']:.2f} s an item"
    )
    print(f"answered {len(questions)} test questions in {generating:.1f} s: {per_item['answered']:.2f} s an item")
    print(f"mean score {sum(scores) / len(scores):.3f} (log-prob per token)")
    print(f"RESULT cheaper={per_item['answered'] / per_item['scored']:.1f}")


if __name__ == "__main__":
    main()
