"""explain: every teacher writes feedback on each of the student's mistakes, with the gold hint."""

from __future__ import annotations

from ..gateway.backend import Request
from . import Context
from .committee import run_jobs, user


async def run(ctx: Context) -> dict:
    have = {(w.item_id, w.teacher) for w in ctx.store.writings(ctx.round, "feedback")}
    def job(m, t):
        prompt = ctx.task.prompt("explain", question=m.question, student_answer=m.wrong_output, gold=m.gold,
                                 hint=m.hint)
        row = lambda text, key: [("writings", (ctx.round, m.item_id, "feedback", t.name, text, key))]  # noqa: E731
        return Request(t.name, "explain", m.item_id, user(prompt)), row

    jobs = [(t.name, lambda m=m, t=t: job(m, t)) for m in ctx.store.mistakes(ctx.round)
            for t in ctx.config.teachers if (m.item_id, t.name) not in have]
    return await run_jobs(ctx, "explain", jobs)
