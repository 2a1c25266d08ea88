"""Running a stage's teacher calls concurrently through the gateway, with progress and failures."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from typing import Callable, Iterable

from ..errors import FairError, PluginError, PluginResultError
from ..gateway.backend import Request
from ..gateway.gateway import CallFailure
from ..runs.disk import DiskFull
from ..runs.events import StageProgress
from ..runs.records import Review, Writing
from .base import Context

# The records an answer's text makes (a writing, a review): stored with the call's key
Records = Callable[[str], Iterable[Writing | Review]]
# (teacher, make): ``make`` builds the request and its records' maker only when a worker takes the
# job, so a stage of 200k calls never holds 200k prompts at once
Job = tuple[str, Callable[[], tuple[Request, Records]]]


async def run_jobs(ctx: Context, stage: str, jobs: Iterable[Job], kept: list | None = None) -> dict:
    """Send every job and store the records each answer makes (added to ``kept`` too, for a stage
    that goes on with them); a failed call is listed in the store with its reason, never raised.
    When a plugin makes a bad record (a parser returning a string), the answer is stored all the
    same, so fixing the plugin and rerunning pays nothing again, and the call fails with the
    plugin's fault. A record of a class the stage does not declare in ``records`` is a plugin's bug:
    no call starts after it, and the stage fails with a PluginError that names it, once the calls
    in flight are done (their answers cached: the fixed stage pays nothing again)."""
    gateway = ctx.gateway
    if gateway is None:
        raise FairError(f"stage {stage!r} calls teachers but was given no gateway: declare it with Need.COMMITTEE")
    pipeline = ctx.host.pipeline
    if stage not in pipeline.names():
        raise PluginError(f"run_jobs was given stage {stage!r}, which the pipeline lacks: pass its Stage's name")
    declared = pipeline[stage].records
    refused: list[PluginError] = []  # the first undeclared record stops the stage
    jobs = list(jobs)
    total, done, failed = len(jobs), 0, 0
    ctx.store.clear_failures(ctx.round, stage)
    ctx.run.publish(StageProgress(stage, ctx.round, 0, total))

    async def one(request: Request, records: Records) -> None:
        nonlocal done, failed
        try:
            answer = await gateway.call(request)
            try:
                made = list(records(answer.text))
            except PluginResultError as e:
                raise CallFailure(str(e)) from None
            stray = next((type(r).__name__ for r in made if not isinstance(r, declared)), None)
            if stray is not None:
                refused.append(
                    PluginError(
                        f"stage {stage!r} made a {stray} record, which its records do not declare: "
                        f"add {stray} to its Stage(records=...)"
                    )
                )
                return
            ctx.store.add_records(made, answer.key)
            if kept is not None:
                kept.extend(made)
        except CallFailure as e:
            failed += 1
            ctx.store.add_failure(
                ctx.round, stage, request.item_id, request.teacher, str(e), request.meta.get("author", "")
            )
        done += 1
        ctx.run.publish(StageProgress(stage, ctx.round, done, total))

    # a few workers per teacher, not a coroutine per job: 200k jobs must not mean 200k frames held
    # at once, and a slow teacher's queue never holds up the others'
    queues: dict[str, deque] = defaultdict(deque)
    for teacher, make in jobs:
        queues[teacher].append(make)

    async def worker(queue: deque) -> None:
        while queue and gateway.full is None and not refused:
            try:
                await one(*queue.popleft()())
            except DiskFull as e:  # no call starts after it; those in flight finish, held if not stored
                gateway.full = gateway.full or e

    await asyncio.gather(
        *(worker(queue) for teacher, queue in queues.items() for _ in range(2 * gateway.limits[teacher].concurrency))
    )
    if gateway.full is not None:
        raise gateway.stop()
    if refused:
        raise refused[0]
    return {"calls": total, "failed": failed}


def user(prompt: str) -> tuple[dict, ...]:
    return ({"role": "user", "content": prompt},)
