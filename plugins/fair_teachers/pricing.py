"""Prices per token from litellm's bundled cost map, read without importing litellm (~3 s)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path


@lru_cache(maxsize=1)
def cost_map() -> dict:
    spec = find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(list(spec.submodule_search_locations)[0]) / "model_prices_and_context_window_backup.json"
    return json.loads(path.read_text()) if path.exists() else {}


def price(model: str) -> tuple[float, float] | None:
    """(input, output) dollars per token for a litellm model string, or None when unknown."""
    table = cost_map()
    for name in (model, model.split("/", 1)[-1]):
        entry = table.get(name)
        if entry and "input_cost_per_token" in entry:
            return entry["input_cost_per_token"], entry.get("output_cost_per_token", 0.0)
    return None
