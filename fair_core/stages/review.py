"""review: teachers score each other's rationales (and, optionally, feedback); a policy judges.

Reviewer assignment: ``others`` (every other teacher: the paper), ``all`` (self included), or
``k`` peers drawn per writing with a seeded generator.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Callable

from ..config import CommitteeConfig
from ..errors import expect
from ..gateway.backend import Request
from ..runs.records import Mistake, Review, Verdict, Writing, teacher_of
from ..runs.store import Store
from ..task import PROMPT_FIELDS
from .base import Context, Need, PluginHost, Prompt, Purpose, Stage
from .committee import Job, run_jobs, user

if TYPE_CHECKING:
    from ..task import Task


def reviewers(
    author: str, teachers: list[str], committee: CommitteeConfig, round: int, item_id: str, kind: str
) -> list[str]:
    own = teacher_of(author)
    if committee.assignment == "all":
        return list(teachers)
    peers = [t for t in teachers if t != own]
    if committee.assignment == "k":
        rng = random.Random(f"{committee.seed}:{round}:{item_id}:{kind}:{author}")
        return sorted(rng.sample(peers, min(committee.k, len(peers))), key=teachers.index)
    return peers


def jobs(ctx: Context) -> list[Job]:
    """The calls review still has to make: each stored writing (rationales; feedback too with
    review_feedback) to each of its reviewers who has not scored it yet (``fair estimate``
    counts these very requests)."""
    return _jobs(ctx, ctx.store.mistakes(ctx.round), ctx.store.writings(ctx.round), ctx.store.reviews(ctx.round))


def _jobs(ctx: Context, mistakes: list[Mistake], writings: list[Writing], reviews: list[Review]) -> list[Job]:
    """:func:`jobs`, from the round's records read once by the caller."""
    committee = ctx.config.committee
    score = scorer(ctx.host, committee)
    names = [t.name for t in ctx.config.teachers]
    by_id = {m.item_id: m for m in mistakes}
    have = {(r.item_id, r.kind, r.author, r.reviewer) for r in reviews}
    kinds = reviewed(committee)

    def job(w, reviewer):
        m = by_id[w.item_id]
        if w.kind == "rationale":
            prompt = ctx.task.prompt("review", question=m.question, rationale=w.text, gold=m.gold, hint=m.hint)
        else:
            prompt = ctx.task.prompt(
                "review_feedback",
                question=m.question,
                student_answer=m.wrong_output,
                feedback=w.text,
                gold=m.gold,
                hint=m.hint,
            )
        purpose = "review" if w.kind == "rationale" else "review_feedback"
        records = lambda text: [Review(ctx.round, w.item_id, w.kind, w.author, reviewer, text, score(text))]  # noqa: E731
        return Request(reviewer, purpose, w.item_id, user(prompt), meta={"author": w.author}), records

    todo = [w for kind in kinds for w in writings if w.kind == kind and w.item_id in by_id]
    return [
        (reviewer, partial(job, w, reviewer))
        for w in todo
        for reviewer in reviewers(w.author, names, committee, ctx.round, w.item_id, w.kind)
        if (w.item_id, w.kind, w.author, reviewer) not in have
    ]


async def run(ctx: Context) -> dict:
    committee = ctx.config.committee
    mistakes, writings, reviews = (
        ctx.store.mistakes(ctx.round),
        ctx.store.writings(ctx.round),
        ctx.store.reviews(ctx.round),
    )
    if ctx.store.get_meta("parser", committee.parser) != committee.parser:  # the parser changed: read again
        score = scorer(ctx.host, committee)
        reviews = [r if r.raw is None else replace(r, score=score(r.raw)) for r in reviews]
        ctx.store.set_review_scores(r for r in reviews if r.raw is not None)
    ctx.store.set_meta("parser", committee.parser)
    made: list[Review] = []
    summary = await run_jobs(ctx, "review", _jobs(ctx, mistakes, writings, reviews), made)
    summary.update(judge(ctx.store, ctx.round, committee, ctx.host, ctx.task, (mistakes, writings, reviews + made)))
    return summary


def scorer(host: PluginHost, committee: CommitteeConfig) -> Callable[[str], int | None]:
    """The configured parser, checked: a review's score from its text. The one place a review is
    parsed (a live review, a stored one when the parser changes, a paper file's score)."""
    parse = host.get("parsers", committee.parser)
    return lambda raw: _checked(parse(raw), committee.parser)


def _checked(value, parser: str) -> int | None:
    """A parser's score, or PluginResultError when it is not an int or None."""
    expect(
        value is None or (isinstance(value, int) and not isinstance(value, bool)),
        f"score parser {parser!r}",
        value,
        "an int (1..5 counts) or None",
    )
    return value


def reviewed(committee: CommitteeConfig) -> tuple[str, ...]:
    """The kinds of writing review scores and judges (a plugin's stage may store others)."""
    return ("rationale", "feedback") if committee.review_feedback else ("rationale",)


def judge(
    store: Store,
    round: int,
    committee: CommitteeConfig,
    host: PluginHost,
    task: Task,
    records: tuple[list[Mistake], list[Writing], list[Review]] | None = None,
) -> dict:
    """Turn the round's review scores into verdicts with the configured policy; ``records``: the
    round's mistakes, writings and reviews, when the caller holds them already."""
    policy = host.get("policies", committee.policy)(committee.threshold)
    mistakes, writings, reviews = records or (store.mistakes(round), store.writings(round), store.reviews(round))
    scores: dict[tuple, list] = defaultdict(list)
    for r in sorted(reviews, key=lambda r: r.reviewer):  # each writing's scores in reviewer order, as stored
        scores[(r.item_id, r.kind, r.author)].append(r.score)
    golds = {m.item_id: m.gold for m in mistakes}
    verdicts = []
    for w in writings:
        if w.kind not in reviewed(committee):
            continue
        got = scores.get((w.item_id, w.kind, w.author), [])
        decided = policy.decide(got)
        expect(
            isinstance(decided, tuple)
            and len(decided) == 2
            and isinstance(decided[0], bool)
            and (decided[1] is None or isinstance(decided[1], (int, float))),
            f"review policy {committee.policy!r}",
            decided,
            "(accepted: bool, statistic: float or None)",
        )
        accepted, value = decided
        reason = "" if accepted else ("no counted score" if value is None else f"{committee.policy} {value:g}")
        if accepted and w.kind == "rationale" and committee.verify_answer:
            if not task.is_correct(task.extract(w.text), golds.get(w.item_id, "")):
                accepted, reason = False, "does not reach the gold answer"
        verdicts.append(Verdict(round, w.item_id, w.kind, w.author, accepted, value, reason))
    store.set_verdicts(round, verdicts)
    return {
        "accepted": sum(v.accepted for v in verdicts if v.kind == "rationale"),
        "rejected": sum(not v.accepted for v in verdicts if v.kind == "rationale"),
    }


STAGE = Stage(
    "review",
    run,
    Need.COMMITTEE,
    reads="mistakes, writings, reviews made before",
    writes="reviews, verdicts, calls, failures",
    records=(Review, Verdict),
    redo_keys=("committee.threshold", "committee.policy", "committee.verify_answer", "committee.parser"),
    prompts=(  # a peer's rationale (or feedback) scored 1-5
        Prompt("review", PROMPT_FIELDS["review"]),
        Prompt("review_feedback", PROMPT_FIELDS["review_feedback"]),
    ),
    jobs=jobs,
    # a review reasons before its score; its prompt quotes a writing not written before the run
    purposes=(
        Purpose("review", typical=150, quotes="rationale"),
        Purpose("review_feedback", typical=150, quotes="feedback", student=True),
    ),
)
