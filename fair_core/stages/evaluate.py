"""evaluate: the round's trained student on the test split."""

from __future__ import annotations

from . import Context
from .examine import score


def run(ctx: Context) -> dict:
    return score(ctx, ctx.extras["student"](trained=True), "evaluate", "after")
