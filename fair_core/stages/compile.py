"""compile: the round's instruction data, as pairs of (feedback example, rationale example).

``paper`` mode: per mistake, one feedback and one accepted rationale chosen at random (seeded
by ``committee.seed``); items with no accepted rationale are dropped, as the paper does. ``all``
mode: every accepted rationale and every (accepted) feedback appear, paired round-robin.
``committee.distil_from`` keeps only the named teachers' writings (a single-teacher ablation);
``committee.selection = "size-matched"`` keeps as many, drawn at random (review's control).
Responses are stripped, and rationales closed as the student's prompt asks
(Task.rationale_target). The normalised question of every item trained on is recorded:
evaluation never scores it.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict

from ..inert import inert_json
from ..runs.records import Mistake, teacher_of
from ..runs.splits import normal
from ..task import PROMPT_FIELDS
from .base import Context, Need, Prompt, Stage


def build_pairs(ctx: Context, mistakes: list[Mistake]) -> list[dict]:
    """The round's pairs, from its ``mistakes`` (read once by the caller), writings and verdicts."""
    committee = ctx.config.committee
    writings = [
        w
        for w in sorted(ctx.store.writings(ctx.round), key=lambda w: w.author)
        if w.kind in ("feedback", "rationale")  # what the student learns; a plugin's stage may write other kinds
        and (not committee.distil_from or teacher_of(w.author) in committee.distil_from)
    ]
    accepted = {(v.item_id, v.kind, v.author) for v in ctx.store.verdicts(ctx.round) if v.accepted}
    kept: set[tuple[str, str, str]] = {
        key
        for w in writings
        if (key := (w.item_id, w.kind, w.author)) in accepted
        or (w.kind == "feedback" and not committee.review_feedback)
    }
    if committee.selection == "size-matched":
        kept = size_matched(writings, kept, random.Random(f"{committee.seed}:{ctx.round}:size-matched"))
    by_item: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"feedback": [], "rationale": []})
    for w in writings:
        if (w.item_id, w.kind, w.author) in kept:
            by_item[w.item_id][w.kind].append(
                w.text.strip() if w.kind == "feedback" else ctx.task.rationale_target(w.text)
            )
    pairs = []
    for m in mistakes:
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


def size_matched(writings: list, kept: set[tuple[str, str, str]], rng: random.Random) -> set[tuple[str, str, str]]:
    """Review's control: as many items, and as many rationales, as review kept (among items with
    feedback to pair), drawn at random from every teacher's rationales, reviewed or not. Training
    then differs from FAIR's in which rationales it sees, not in how many pairs or steps."""
    with_feedback = {k[0] for k in kept if k[1] == "feedback"}
    rationales: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for w in writings:
        if w.kind == "rationale" and w.item_id in with_feedback:
            rationales[w.item_id].append((w.item_id, w.kind, w.author))
    reviewed = [k for k in kept if k[1] == "rationale" and k[0] in with_feedback]
    n_items = len({k[0] for k in reviewed})
    items = rng.sample(sorted(rationales), min(n_items, len(rationales)))
    drawn = [rng.choice(rationales[i]) for i in items]
    rest = sorted(k for i in items for k in rationales[i] if k not in drawn)
    drawn += rng.sample(rest, max(0, min(len(reviewed) - len(drawn), len(rest))))
    return {k for k in kept if k[1] == "feedback"} | set(drawn)


def run(ctx: Context) -> dict:
    mistakes = ctx.store.mistakes(ctx.round)
    pairs = build_pairs(ctx, mistakes)
    questions = {m.item_id: normal(m.question) for m in mistakes}
    ctx.store.add_trained(ctx.round, {p["item_id"]: questions[p["item_id"]] for p in pairs})
    out = ctx.run.round_dir(ctx.round)
    tmp = out / "train.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for p in pairs:
            f.write(inert_json(p) + "\n")
    os.replace(tmp, out / "train.jsonl")
    return {"pairs": len(pairs), "items": len({p["item_id"] for p in pairs})}


STAGE = Stage(
    "compile",
    run,
    Need.NOTHING,
    reads="mistakes, writings, verdicts",
    writes="trained questions; rounds/N/train.jsonl",
    redo_keys=("committee.compile_mode", "committee.distil_from", "committee.selection", "committee.seed"),
    prompts=(  # the student's training prompts, for the feedback and the rationale targets
        Prompt("learn_feedback", PROMPT_FIELDS["learn_feedback"]),
        Prompt("learn_rationale", PROMPT_FIELDS["learn_rationale"]),
    ),
)
