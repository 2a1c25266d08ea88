"""Pipeline stages, one module each; every stage is idempotent and resumable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import RunConfig
from ..host import Host
from ..rundir import Run
from ..task import Task


class StageCancelled(Exception):
    """Raised by a stage that noticed the run was cancelled; what it stored stays."""


@dataclass
class Context:
    """What a stage needs: the run, the plugins, the task and the round."""
    run: Run
    host: Host
    task: Task
    round: int
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. the round's gateway

    @property
    def config(self) -> RunConfig:
        return self.run.config

    @property
    def store(self):
        return self.run.store

    def cancelled(self) -> bool:
        return self.extras.get("cancelled", lambda: False)()

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise StageCancelled()
