"""evaluate: the round's trained student on the test split.

Round 0 also scores the untrained student when examine did not (a ``--stages`` subset without
evaluate): the report's "before" must not depend on which stages ran together.
"""

from __future__ import annotations

from ..runs.records import Attempt
from .base import Context, Need, RunState, Stage
from .examine import score, test_items


def clear(run: RunState, round: int) -> None:
    """A redone evaluate scores the new trained student: the old one's answers go."""
    run.store.delete_attempts(round, "test", "after")


def run(ctx: Context) -> dict:
    summary, problems = {}, test_items(ctx)
    if ctx.round == 0 and len(ctx.store.attempts(0, "test", "before")) < len(problems):
        summary = score(ctx, ctx.student(), "evaluate", "before", problems)
    return {**summary, **score(ctx, ctx.student(trained=True), "evaluate", "after", problems)}


STAGE = Stage(
    "evaluate",
    run,
    Need.STUDENT,
    reads="the test split less what any round trained on, the trained student",
    writes="attempts (test 'after'; round 0: 'before' when examine did not score it), items, left_out",
    records=(Attempt,),
    clear=clear,
)
