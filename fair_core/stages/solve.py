"""solve: every teacher answers each mistaken question itself, step by step, with no hint."""

from __future__ import annotations

from functools import partial

from ..gateway.backend import Request
from ..runs.records import Writing, author_name
from ..task import PROMPT_FIELDS
from .base import Context, Need, Prompt, Purpose, Stage
from .committee import Job, run_jobs, user


def jobs(ctx: Context) -> list[Job]:
    """The calls solve still has to make: one per mistake, teacher and sample without a rationale
    yet (``fair estimate`` counts these very requests)."""
    have = {(w.item_id, w.author) for w in ctx.store.writings(ctx.round, "rationale")}

    def job(m, t, s):
        records = lambda text: [Writing(ctx.round, m.item_id, "rationale", author_name(t.name, s), text)]  # noqa: E731
        request = Request(t.name, "solve", m.item_id, user(ctx.task.prompt("solve", question=m.question)), sample=s)
        return request, records

    return [
        (t.name, partial(job, m, t, s))
        for m in ctx.store.mistakes(ctx.round)
        for t in ctx.config.teachers
        for s in range(ctx.config.committee.samples)
        if (m.item_id, author_name(t.name, s)) not in have
    ]


async def run(ctx: Context) -> dict:
    return await run_jobs(ctx, "solve", jobs(ctx))


STAGE = Stage(
    "solve",
    run,
    Need.COMMITTEE,
    reads="mistakes, rationales written before",
    writes="rationale writings, calls, failures",
    records=(Writing,),
    prompts=(Prompt("solve", PROMPT_FIELDS["solve"]),),
    jobs=jobs,
    purposes=(Purpose("solve", typical=200),),
)
