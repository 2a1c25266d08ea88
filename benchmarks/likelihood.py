"""What the references' score costs against what accuracy costs: scoring vs generating.

An arm of an experiment is measured either by generating an answer to every test question
(accuracy) or by scoring held-out teacher rationales teacher-forced (fair_core.results.likelihood: one
forward pass per text, no generation). This takes the paper's recorded SVAMP rationales on
``--items`` mistakes (the references an experiment holds out), scores them with the "hf" student,
and generates the student's answers to as many SVAMP test questions at the ablation's settings
(greedy, the student's default of 256 new tokens, batches of 32), on the same model in one
process. It also times a bare forward pass over the same token rows (each item's prompt once and
its references, the head only where a response token is predicted): the floor, below which
scoring these texts in this precision cannot go. It prints the times per item and per arm (the
ablation's 267 reference items against accuracy's 940 clean test items), and
``RESULT per_item=<x> per_arm=<y> at_floor=<z>`` last: how many times less scoring costs than
answering, item for item and arm for arm, and the floor's time over scoring's (1.0: nothing
left to save).

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
from fair_core.training.collator import shared_prefix
from fair_core.training.data import Encoder


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


def floor_seconds(student, refs: list[Reference]) -> float:
    """A bare forward pass over each item's packed row (its shared prompt once, then every
    reference's own tokens), the head and log-softmax only at the response positions: the
    arithmetic scoring cannot avoid, with none of its bookkeeping."""
    import torch

    encoder = Encoder(student.tokenizer, student.config.chat_template, max_length=4096)
    items: dict[str, list] = {}
    for r in refs:
        items.setdefault(r.item_id, []).append(encoder(r.prompt, r.text))
    rows = []
    for seqs in items.values():
        prefix = shared_prefix(seqs)
        rows.append((prefix + sum(len(s.ids) - prefix for s in seqs), sum(s.n_response for s in seqs)))
    model = student.model
    with torch.inference_mode():
        start = time.perf_counter()
        for length, responses in rows:
            hidden = model.model(input_ids=torch.randint(100, 1000, (1, length))).last_hidden_state
            torch.log_softmax(model.lm_head(hidden[0, -responses:]).float(), -1)
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2", help="student.model: 'smollm2', a folder or a hub id")
    ap.add_argument("--items", type=int, default=48)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument(
        "--adapter", help="a trained LoRA adapter (a run's rounds/0/adapter): a trained arm answers at length"
    )
    ap.add_argument("--test-items", type=int, default=940, help="the clean test items accuracy needs (SVAMP: 940)")
    ap.add_argument(
        "--max-new-tokens",
        type=int,
        default=StudentConfig.model_fields["max_new_tokens"].default,
        help="an answer's token budget (default: the student's, which the ablation's accuracy used)",
    )
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    host = get_host()
    task = host.get("tasks", "svamp")(prompts="paper")
    refs = references(task, args.items)
    questions = [task.prompt("student", question=p.question) for p in task.load("test")[: args.items]]
    config = StudentConfig(model=args.model, backend="hf", max_new_tokens=args.max_new_tokens, batch_size=32)
    student = host.get("students", "hf")(config, adapter=args.adapter)
    student.score([(r.prompt, r.text) for r in refs[:4]])  # warm: first-call costs out of every figure
    floor_seconds(student, refs[:4])

    start = time.perf_counter()
    scores = student.score([(r.prompt, r.text) for r in refs])
    scoring = time.perf_counter() - start
    start = time.perf_counter()
    student.generate(questions)
    generating = time.perf_counter() - start
    floor = floor_seconds(student, refs)

    per_item = {"scored": scoring / args.items, "answered": generating / len(questions)}
    per_arm = {"scored": per_item["scored"] * 267, "answered": per_item["answered"] * args.test_items}
    print(f"model {args.model}{' + ' + args.adapter if args.adapter else ''}, torch threads {torch.get_num_threads()}")
    print(
        f"scored   {len(refs)} references of {args.items} items in {scoring:.1f} s: {per_item['scored']:.2f} s an item"
    )
    print(f"floor    a bare forward pass over the same rows: {floor:.1f} s ({floor / scoring:.0%} of scoring's time)")
    print(f"answered {len(questions)} test questions in {generating:.1f} s: {per_item['answered']:.2f} s an item")
    print(f"mean score {sum(scores) / len(scores):.3f} (log-prob per token)")
    print(
        f"per arm: references of 267 items {per_arm['scored'] / 60:.1f} min, accuracy on {args.test_items} "
        f"clean test items {per_arm['answered'] / 60:.1f} min"
    )
    item_ratio = per_item["answered"] / per_item["scored"]
    arm_ratio = per_arm["answered"] / per_arm["scored"]
    print(f"RESULT per_item={item_ratio:.1f} per_arm={arm_ratio:.1f} at_floor={floor / scoring:.2f}")


if __name__ == "__main__":
    main()
