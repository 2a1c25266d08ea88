"""The public path of a run's records (docs/api.md, plugin-authoring.md); they live in :mod:`fair_core.runs.records`."""

from .runs.records import *  # noqa: F403
