"""train: fine-tune the student on the round's compiled pairs, in its own process.

The child writes progress as JSONL; this stage tails it and republishes each line as a
:class:`TrainStep` event, so the console and the TUI see the child's progress live.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections import deque
from pathlib import Path

from ..errors import FairError
from ..runs.disk import DiskFull
from ..runs.events import Message, TrainStep, appended, from_dict
from ..runs.store import StageStatus
from .base import Context, Need, RunState, Stage

# What a round's training leaves: a redone training starts without any of it.
TRAINED = ("checkpoints", "adapter", "model", "merged")


def clear(run: RunState, round: int) -> None:
    """Checkpoints and outputs made from the old data or settings go."""
    for name in TRAINED:
        shutil.rmtree(run.path / "rounds" / str(round) / name, ignore_errors=True)


def run(ctx: Context) -> dict:
    out = ctx.run.round_dir(ctx.round)
    data = out / "train.jsonl"
    if ctx.store.stage_status(ctx.round, "compile") != StageStatus.DONE:
        raise FairError(
            f"round {ctx.round} has nothing to train on yet: its compile stage has not run; "
            f"run the stages before train first"
        )
    if not data.exists() or data.stat().st_size == 0:
        raise FairError(
            f"round {ctx.round} has no training data ({data}): no item got an accepted "
            f"rationale; rerun with a lower committee.threshold (review is judged again "
            f"from the stored scores) or check the teachers' failures (`fair report`)"
        )
    base, adapter = ctx.student_source(ctx.round)
    merge = ctx.config.train.merge or ctx.round < ctx.config.rounds - 1
    from ..training import DISK_FULL, PARENT, command

    t = ctx.config.train
    cmd = command(ctx.run.path, ctx.round, base, adapter, merge, launcher(t.launcher), t.accelerate_config)
    if t.accelerate_config:  # on several machines, each of the others runs this same command
        ctx.run.publish(Message("info", f"round {ctx.round} trains with: {shlex.join(cmd)}"))
    progress = out / "progress.jsonl"
    tail = Tail(progress)
    last: dict = {}
    env = {**os.environ, PARENT: str(os.getpid())}
    with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) as proc:
        errors: deque[str] = deque(maxlen=20)
        import threading

        stderr = proc.stderr
        assert stderr is not None  # stderr=PIPE
        reader = threading.Thread(target=lambda: errors.extend(stderr), daemon=True)
        reader.start()
        try:
            while proc.poll() is None:
                last = tail.publish(ctx) or last
                ctx.check_cancelled()  # the child resumes from its last checkpoint next time
                time.sleep(0.2)
        except BaseException:
            proc.terminate()
            raise
        reader.join(timeout=5)
        last = tail.publish(ctx) or last
    if proc.returncode != 0:
        lines = [line.strip() for line in errors if line.strip()]
        if proc.returncode == DISK_FULL and lines:
            raise DiskFull(lines[-1])
        raise FairError(f"training failed (exit {proc.returncode}): {lines[-1] if lines else 'no message'}")
    return {k: v for k, v in last.items() if k not in ("type", "ts")}


def launcher(configured: str) -> str:
    """train.launcher, except that several visible GPUs always go through accelerate (one
    process each, data parallel): a plain process would train on one and leave the rest idle."""
    if configured == "python":
        import torch

        if torch.cuda.device_count() > 1:
            return "accelerate"
    return configured


class Tail:
    """Reads the lines appended to a file since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def publish(self, ctx: Context) -> dict | None:
        last = None
        lines, self.offset = appended(self.path, self.offset)
        for line in lines:
            data = json.loads(line)
            if data.get("type") == "train_step":
                ctx.run.publish(from_dict({**data, "type": TrainStep.type, "round": ctx.round}))
            elif data.get("type") == "train_resumed":
                ctx.run.publish(
                    Message(
                        "info",
                        f"round {ctx.round} train resumed from its checkpoint at "
                        f"step {data['step']} of {data['max_steps']}",
                    )
                )
            last = data
        return last


STAGE = Stage(
    "train",
    run,
    Need.UNLOADED_STUDENT,
    reads="rounds/N/train.jsonl, the student that starts the round",
    writes="rounds/N: checkpoints, adapter or model (merged when a round follows), progress.jsonl",
    redo_keys=("train",),
    clear=clear,
)
