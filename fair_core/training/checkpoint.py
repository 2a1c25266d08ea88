"""Folders that appear whole or not at all: checkpoints and final outputs.

Everything is written under a hidden temporary name and renamed into place, so a kill at any
moment leaves either the previous complete folder or the new complete one, plus a hidden
leftover that the next run removes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..runs.disk import DiskFull, full_at

STATE = "trainer_state.json"
_STEP = re.compile(r"step-(\d+)")


def publish(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing an older ``final``."""
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def staging(final: Path) -> Path:
    """The hidden sibling of ``final`` to write into before :func:`publish`: the same name in
    every process of a distributed run (they all write their part of a checkpoint there);
    :func:`clean_leftovers` clears it at the start of a run."""
    return final.with_name(f".{final.name}.tmp")


@contextmanager
def staged(tmp: Path, final: Path, need: Callable[[], int]) -> Iterator[None]:
    """Writing ``final`` through its staging folder ``tmp``: a full disk removes what was staged
    (its space given back; the previous complete folder stays) and raises DiskFull naming
    ``final`` and ``need()``, about the bytes it takes."""
    try:
        with full_at(final, need):
            yield
    except DiskFull:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def clean_leftovers(folder: Path) -> None:
    """Remove the hidden temporaries of runs that were killed while writing."""
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".") and p.name.endswith((".tmp", ".old")):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


class Checkpoints:
    """``step-N`` folders (accelerate state + trainer_state.json) in one folder; the last
    ``keep`` are kept."""

    def __init__(self, folder: Path, keep: int = 2):
        self.folder = folder
        self.keep = keep

    def complete(self) -> list[tuple[int, Path]]:
        if not self.folder.is_dir():
            return []
        found = [
            (int(m.group(1)), p)
            for p in self.folder.iterdir()
            if (m := _STEP.fullmatch(p.name)) and (p / STATE).is_file()
        ]
        return sorted(found)

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1][1] if done else None

    def staging(self, step: int) -> Path:
        return staging(self.folder / f"step-{step}")

    def commit(self, tmp: Path, step: int, state: dict) -> None:
        """Write the trainer state into ``tmp``, publish it as ``step-N`` and prune old ones."""
        (tmp / STATE).write_text(json.dumps(state))
        publish(tmp, self.folder / f"step-{step}")
        for _, old in self.complete()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def state(path: Path) -> dict:
        return json.loads((path / STATE).read_text())
