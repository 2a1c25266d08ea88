"""Pipeline stages: one module each, ending in its declaration ``STAGE = Stage(...)``.

PIPELINE is the one list of stages, in the order they run: a new stage is its module plus its
name in ORDER. Every stage is idempotent and resumable.
"""

from __future__ import annotations

from importlib import import_module

from .base import Context, Need, Pipeline, Stage, StageCancelled, runs_async

ORDER = ("examine", "explain", "solve", "review", "compile", "train", "evaluate")
PIPELINE = Pipeline(import_module(f"{__name__}.{name}").STAGE for name in ORDER)

__all__ = ["PIPELINE", "Context", "Need", "Pipeline", "Stage", "StageCancelled", "runs_async"]
