"""evaluate: the round's trained student on the test split.

Round 0 also scores the untrained student when examine did not (a ``--stages`` subset without
evaluate): the report's "before" must not depend on which stages ran together.
"""

from __future__ import annotations

from . import Context
from .examine import score, test_items


def run(ctx: Context) -> dict:
    summary, problems = {}, test_items(ctx)
    if ctx.round == 0 and len(ctx.store.attempts(0, "test", "before")) < len(problems):
        summary = score(ctx, ctx.extras["student"](), "evaluate", "before", problems)
    return {**summary, **score(ctx, ctx.extras["student"](trained=True), "evaluate", "after", problems)}
