"""The public path of the engine's events (docs/api.md); they live in :mod:`fair_core.runs.events`."""

from .runs.events import *  # noqa: F403
