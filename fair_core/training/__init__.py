"""Student fine-tuning, run in its own process: ``python -m fair_core.training --run-dir RUN
--round R --base MODEL [--adapter PREV] [--merge]``, or the same under ``accelerate launch``.

It reads ``RUN/rounds/R/train.jsonl`` (one feedback + rationale pair per line) and
``RUN/config.toml``, and writes in ``RUN/rounds/R/``: ``checkpoints/``, ``adapter/`` (LoRA) or
``model/`` (full fine-tuning), ``merged/`` with --merge, and ``progress.jsonl`` for the parent
to tail. A rerun resumes from the newest checkpoint. This module stays light (no torch):
the engine imports it only to build the command line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PARENT = "FAIR_PARENT_PID"  # set by the train stage: the process training must not outlive
DISK_FULL = 3  # the exit status of a training that stopped for want of space (its last stderr line says where)


def stop_with_parent() -> None:
    """Ask Linux for SIGTERM when our parent dies (kill -9, out of memory): training must not go
    on unseen after ``fair`` is gone; its checkpoints let the next run resume. A parent already
    gone before this call (checked against $FAIR_PARENT_PID) ends us at once. The variable is
    taken out of the environment, so processes we start check against us, not against fair."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    expected = os.environ.pop(PARENT, None)
    if expected and os.getppid() != int(expected):
        sys.exit("fair, which started this training, is gone")


def tell_launcher(message: str) -> None:
    """Leave ``message``, the one line that says why this process fails, where torchrun looks
    for it (``$TORCHELASTIC_ERROR_FILE``, set for each process it starts), so the launcher can
    end with it: see :mod:`.launch`."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        import json
        import time

        Path(path).write_text(json.dumps({"message": message, "timestamp": int(time.time())}))


def command(run_dir, round, base, adapter=None, merge=False, launcher="python", config_file=None) -> list[str]:
    """The argv that trains round ``round`` of ``run_dir``; ``launcher`` is train.launcher.

    "accelerate" runs ``accelerate launch`` through this interpreter (see :mod:`.launch`), so it
    picks up the user's accelerate config (several GPUs, DeepSpeed, FSDP, several nodes), or
    ``config_file`` (train.accelerate_config), without needing the script on PATH.
    """
    if launcher == "python" and config_file is None:
        head = [sys.executable, "-m", "fair_core.training"]
    elif launcher in ("python", "accelerate"):
        options = ["--config_file", str(config_file)] if config_file is not None else []
        head = [sys.executable, "-m", "fair_core.training.launch", *options, "--module", "fair_core.training"]
    else:
        raise ValueError(f"unknown launcher {launcher!r}: use python or accelerate")
    argv = head + ["--run-dir", str(Path(run_dir)), "--round", str(round), "--base", str(base)]
    if adapter is not None:
        argv += ["--adapter", str(adapter)]
    if merge:
        argv.append("--merge")
    return argv
