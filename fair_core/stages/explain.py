"""explain: every teacher writes feedback on each of the student's mistakes, with the gold hint."""

from __future__ import annotations

from functools import partial

from ..gateway.backend import Request
from ..runs.records import Writing
from ..task import PROMPT_FIELDS
from .base import Context, Need, Prompt, Purpose, Stage
from .committee import Job, run_jobs, user


def jobs(ctx: Context) -> list[Job]:
    """The calls explain still has to make: one per mistake and teacher without feedback yet
    (``fair estimate`` counts these very requests)."""
    have = {(w.item_id, w.author) for w in ctx.store.writings(ctx.round, "feedback")}

    def job(m, t):
        prompt = ctx.task.prompt(
            "explain", question=m.question, student_answer=m.wrong_output, gold=m.gold, hint=m.hint
        )
        records = lambda text: [Writing(ctx.round, m.item_id, "feedback", t.name, text)]  # noqa: E731
        return Request(t.name, "explain", m.item_id, user(prompt)), records

    return [
        (t.name, partial(job, m, t))
        for m in ctx.store.mistakes(ctx.round)
        for t in ctx.config.teachers
        if (m.item_id, t.name) not in have
    ]


async def run(ctx: Context) -> dict:
    return await run_jobs(ctx, "explain", jobs(ctx))


STAGE = Stage(
    "explain",
    run,
    Need.COMMITTEE,
    reads="mistakes, feedback written before",
    writes="feedback writings, calls, failures",
    records=(Writing,),
    prompts=(Prompt("explain", PROMPT_FIELDS["explain"]),),
    jobs=jobs,
    # about what the paper's recorded SVAMP committee writes (feedback 120-160 tokens)
    purposes=(Purpose("explain", typical=150, student=True),),
)
