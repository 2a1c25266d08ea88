"""compile: the round's instruction data, as pairs of (feedback example, rationale example).

``paper`` mode: per mistake, one feedback and one accepted rationale chosen at random (seeded);
items with no accepted rationale are dropped, as the paper does. ``all`` mode: every accepted
rationale and every (accepted) feedback appear, paired round-robin. ``committee.distil_from``
keeps only the named teachers' writings (a single-teacher ablation). The normalised question of
every item trained on is recorded: evaluation never scores it.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import defaultdict

from ..splits import normal
from .base import Context, Need, Stage
from .solve import teacher_of


def build_pairs(ctx: Context) -> list[dict]:
    committee = ctx.config.committee
    accepted = {(v.item_id, v.kind, v.author) for v in ctx.store.verdicts(ctx.round) if v.accepted}
    by_item: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"feedback": [], "rationale": []})
    for w in sorted(ctx.store.writings(ctx.round), key=lambda w: w.teacher):
        if committee.distil_from and teacher_of(w.teacher) not in committee.distil_from:
            continue
        if w.kind == "rationale" or committee.review_feedback:
            if (w.item_id, w.kind, w.teacher) not in accepted:
                continue
        by_item[w.item_id][w.kind].append(w.text)
    pairs = []
    for m in ctx.store.mistakes(ctx.round):
        got = by_item.get(m.item_id)
        if not got or not got["rationale"] or not got["feedback"]:
            continue
        fb_prompt = ctx.task.prompt("learn_feedback", question=m.question, student_answer=m.wrong_output, gold=m.gold)
        ra_prompt = ctx.task.prompt("learn_rationale", question=m.question)
        if committee.compile_mode == "paper":
            rng = random.Random(f"{committee.seed}:{ctx.round}:{m.item_id}")
            chosen = [(rng.choice(got["feedback"]), rng.choice(got["rationale"]))]
        else:
            n = max(len(got["feedback"]), len(got["rationale"]))
            chosen = [
                (got["feedback"][i % len(got["feedback"])], got["rationale"][i % len(got["rationale"])])
                for i in range(n)
            ]
        pairs += [
            {
                "item_id": m.item_id,
                "feedback": {"prompt": fb_prompt, "response": fb},
                "rationale": {"prompt": ra_prompt, "response": ra},
            }
            for fb, ra in chosen
        ]
    return pairs


def run(ctx: Context) -> dict:
    pairs = build_pairs(ctx)
    questions = {m.item_id: normal(m.question) for m in ctx.store.mistakes(ctx.round)}
    ctx.store.add_trained(ctx.round, {p["item_id"]: questions[p["item_id"]] for p in pairs})
    out = ctx.run.round_dir(ctx.round)
    tmp = out / "train.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    os.replace(tmp, out / "train.jsonl")
    import datasets  # heavy: only here

    datasets.disable_progress_bars()

    staging = out / "dataset.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    datasets.Dataset.from_list(
        pairs
        or [{"item_id": "", "feedback": {"prompt": "", "response": ""}, "rationale": {"prompt": "", "response": ""}}]
    ).select(range(len(pairs))).save_to_disk(str(staging))
    shutil.rmtree(out / "dataset", ignore_errors=True)
    os.replace(staging, out / "dataset")
    return {"pairs": len(pairs), "items": len({p["item_id"] for p in pairs})}


STAGE = Stage(
    "compile",
    run,
    Need.NOTHING,
    reads="mistakes, writings, verdicts",
    writes="trained questions; rounds/N/train.jsonl and rounds/N/dataset",
)
