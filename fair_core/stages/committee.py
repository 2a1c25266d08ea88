"""Running a stage's teacher calls concurrently through the gateway, with progress and failures."""

from __future__ import annotations

import asyncio
from typing import Iterable

from ..events import StageProgress
from ..gateway.backend import Request
from ..gateway.gateway import CallFailure, Gateway, Outputs
from . import Context

Job = tuple[Request, Outputs]


async def run_jobs(ctx: Context, stage: str, jobs: Iterable[Job]) -> dict:
    """Send every job; a failed call is listed in the store with its reason, never raised."""
    gateway: Gateway = ctx.extras["gateway"]
    jobs = list(jobs)
    total, done, failed = len(jobs), 0, 0
    ctx.store.clear_failures(ctx.round, stage)
    ctx.run.publish(StageProgress(stage, ctx.round, 0, total))

    async def one(request: Request, outputs: Outputs) -> None:
        nonlocal done, failed
        try:
            await gateway.call(request, outputs)
        except CallFailure as e:
            failed += 1
            ctx.store.add_failure(ctx.round, stage, request.item_id, request.teacher, str(e),
                                  request.meta.get("author", ""))
        done += 1
        ctx.run.publish(StageProgress(stage, ctx.round, done, total))

    await asyncio.gather(*(one(r, o) for r, o in jobs))
    return {"calls": total, "failed": failed}


def user(prompt: str) -> tuple[dict, ...]:
    return ({"role": "user", "content": prompt},)
