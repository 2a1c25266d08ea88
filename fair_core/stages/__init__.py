"""Pipeline stages: one module each, ending in its declaration ``STAGE = Stage(...)``.

PIPELINE is the built-in stages, in the order they run: a new built-in stage is its module plus
its place there; a plugin adds its own through the ``register_stages`` hook (``Host.pipeline``
is both). Every stage is idempotent and resumable.
"""

from __future__ import annotations

from . import compile, evaluate, examine, explain, review, solve, train
from .base import Context, Need, Pipeline, Prompt, Purpose, Stage, StageCancelled, runs_async

PIPELINE = Pipeline(stage.STAGE for stage in (examine, explain, solve, review, compile, train, evaluate))

__all__ = ["PIPELINE", "Context", "Need", "Pipeline", "Prompt", "Purpose", "Stage", "StageCancelled", "runs_async"]
