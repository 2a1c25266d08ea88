"""solve: every teacher answers each mistaken question itself, step by step, with no hint."""

from __future__ import annotations

from ..gateway.backend import Request
from . import Context
from .committee import run_jobs, user


def author_name(teacher: str, sample: int) -> str:
    """The author of a rationale: the teacher, with ``#k`` for its k-th extra sample."""
    return teacher if sample == 0 else f"{teacher}#{sample}"


def teacher_of(author: str) -> str:
    return author.split("#", 1)[0]


async def run(ctx: Context) -> dict:
    have = {(w.item_id, w.teacher) for w in ctx.store.writings(ctx.round, "rationale")}
    jobs = []
    for m in ctx.store.mistakes(ctx.round):
        prompt = ctx.task.prompt("solve", question=m.question)
        for t in ctx.config.teachers:
            for s in range(ctx.config.committee.samples):
                author = author_name(t.name, s)
                if (m.item_id, author) in have:
                    continue
                row = lambda text, key, m=m, a=author: [("writings", (ctx.round, m.item_id, "rationale", a, text, key))]
                jobs.append((Request(t.name, "solve", m.item_id, user(prompt), sample=s), row))
    return await run_jobs(ctx, "solve", jobs)
