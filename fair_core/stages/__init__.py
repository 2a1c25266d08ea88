"""Pipeline stages: one module each, ending in its declaration ``STAGE = Stage(...)``.

PIPELINE is the built-in stages, in the order they run: a new built-in stage is its module plus
its name in ORDER; a plugin adds its own through the ``register_stages`` hook (``Host.pipeline``
is both). Every stage is idempotent and resumable.
"""

from __future__ import annotations

from importlib import import_module

from .base import Context, Need, Pipeline, Prompt, Purpose, Stage, StageCancelled, runs_async

ORDER = ("examine", "explain", "solve", "review", "compile", "train", "evaluate")
PIPELINE = Pipeline(import_module(f"{__name__}.{name}").STAGE for name in ORDER)

__all__ = ["PIPELINE", "Context", "Need", "Pipeline", "Prompt", "Purpose", "Stage", "StageCancelled", "runs_async"]
