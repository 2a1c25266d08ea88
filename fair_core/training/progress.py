"""Progress lines for a parent process to tail, and the rates they report.

``progress.jsonl`` gets one JSON object per line, flushed as written: ``train_step`` after every
optimizer step, ``train_resumed`` when a rerun starts from a checkpoint, and ``train_done`` at
the end. A resumed run appends, so a step between the last checkpoint and a kill appears
twice; the later line is the one that counts.

Units: ``tokens_per_second`` counts response tokens, the tokens that carry loss (no prompt,
no padding); ``input_tokens_per_second`` counts every non-padding token the model reads;
``samples_per_second`` counts pairs (one feedback plus one rationale example); rates are over
this process's training time so far, checkpoint writes included. ``memory_mb`` is the peak
GPU memory allocated by torch on CUDA, else the peak resident memory of the process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..runs.disk import full_at


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class Meter:
    """Running totals of one training process since it started stepping."""

    def __init__(self, start_step: int, max_steps: int):
        self.start_step = start_step
        self.max_steps = max_steps
        self.t0 = time.monotonic()
        self.pairs = self.response_tokens = self.input_tokens = 0
        self.losses: list[float] = []

    def add(self, pairs: int, response_tokens: int, input_tokens: int) -> None:
        self.pairs += pairs
        self.response_tokens += response_tokens
        self.input_tokens += input_tokens

    def rates(self, step: int) -> dict:
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        done = step - self.start_step
        return {
            "tokens_per_second": round(self.response_tokens / elapsed, 2),
            "input_tokens_per_second": round(self.input_tokens / elapsed, 2),
            "samples_per_second": round(self.pairs / elapsed, 3),
            "memory_mb": round(peak_memory_mb(), 1),
            "eta_s": round((self.max_steps - step) * elapsed / done, 1) if done else None,
        }

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.t0


def read_records(path: Path) -> list[dict]:
    """The records of a progress file in order ([] before it exists), without a last line the
    training process is still writing."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class ProgressLog:
    """Appends JSON lines to a file, each flushed at once."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        with full_at(self.path, lambda: 1 << 20):
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def close(self) -> None:
        self._file.close()
