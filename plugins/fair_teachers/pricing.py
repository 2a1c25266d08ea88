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


def known(model: str) -> str | None:
    """The name litellm's price map lists ``model`` under: the model string itself, or it less its
    leading provider parts ("anthropic/claude-haiku-4-5" -> "claude-haiku-4-5"; an OpenRouter
    "openrouter/openai/gpt-4o-mini" is priced as "gpt-4o-mini"); None when it has no price there."""
    table = cost_map()
    parts = model.split("/")
    for name in ("/".join(parts[i:]) for i in range(len(parts))):
        if "input_cost_per_token" in table.get(name, {}):
            return name
    return None


def price(model: str) -> tuple[float, float] | None:
    """(input, output) dollars per token for a litellm model string, or None when unknown."""
    name = known(model)
    if name is None:
        return None
    entry = cost_map()[name]
    return entry["input_cost_per_token"], entry.get("output_cost_per_token", 0.0)
