"""What a teacher's calls cost: the price its config sets, which wins, else its backend's own
(litellm's price map), else nothing known. The gateway charges, the budget reserves and ``fair
estimate`` predicts with this one function, so the three agree."""

from __future__ import annotations

from .backend import Backend, Completion

MILLION = Completion("", 1_000_000, 1_000_000)


def cost(backend: Backend, completion: Completion) -> float | None:
    """Dollars for ``completion``; None when neither the config nor the backend knows a price."""
    price = backend.config.price
    if price is not None:
        per_input, per_output = price.per_token()
        return completion.prompt_tokens * per_input + completion.completion_tokens * per_output
    return backend.cost(completion)


def unpriced(backend: Backend) -> bool:
    """A teacher whose provider may bill it but whose price nobody knows: its calls would count as $0."""
    return not backend.local() and cost(backend, MILLION) is None


def unpriced_line(backend: Backend, so: str) -> str:
    """One line on such a teacher: that its price is unknown, ``so`` what follows, and the fix."""
    c = backend.config
    why = f"model {c.model!r} is not in litellm's price map" if c.backend == "litellm" else f"backend {c.backend!r}"
    return (
        f"teacher {c.name!r} has no price ({why}), so {so}: "
        f"set teachers.{c.name}.price = {{input = ..., output = ...}} in USD per million tokens"
    )
