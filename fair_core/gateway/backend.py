"""The teacher backend contract and the errors that steer the gateway's retries."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    teacher: str
    purpose: str  # explain | solve | review | review_feedback
    item_id: str
    messages: tuple[dict, ...]
    sample: int = 0
    meta: dict = field(default_factory=dict, compare=False)  # e.g. the reviewed author


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # the provider's: "length" and "content_filter" mean cut short


# more tokens than any model reads or writes in one call: a provider's larger count is garbage, and
# kept whole it would overflow the store's integers (and every sum of them)
MAX_TOKENS = 10**9


def token_count(value) -> int:
    """A usage figure as the int it should be ("100" and 100.0 too), at most MAX_TOKENS (a count too
    large for a float included); 0 for anything else (NaN, a negative count, no number)."""
    try:
        count = float(value)
    except OverflowError:
        return MAX_TOKENS
    except (TypeError, ValueError):
        return 0
    return 0 if math.isnan(count) else int(min(max(0.0, count), MAX_TOKENS))


class TransientError(Exception):
    """Worth retrying: 429, 5xx, timeouts, dropped connections, garbage answers."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(Exception):
    """Retrying cannot help (no record to replay for this request): fail the call at once."""


class TeacherDown(PermanentError):
    """The teacher itself cannot answer any call (a bad key, no permission, an unknown model, no
    credit left: HTTP 401/402/403/404, a 429 for an exhausted quota): its other calls are not sent."""


class Refused(PermanentError):
    """The teacher refused this request (HTTP 400/422: too long for its context, a parameter it
    does not take): the call fails; several in a row with no answer between stop the teacher."""


class Unreachable(TransientError):
    """The teacher's server cannot be reached (connection refused, no such host): after a few
    in a row its calls are probed one at a time, and after more the teacher is given up."""


class Backend(ABC):
    """One teacher's way of answering. Built by a ``register_teachers`` factory from its config."""

    def __init__(self, config) -> None:
        self.config = config

    def check(self) -> None:
        """Raise FairError before any call is paid for when the teacher cannot work (no key...)."""

    def prepare(self) -> None:
        """Load what the calls need (a heavy import), once, when the gateway starts: every call then
        runs under its timeout (:mod:`.watchdog`), which could cut a slow import in the middle and
        leave the module half-imported for every later call. An error here stops this teacher."""

    @abstractmethod
    async def complete(self, request: Request) -> Completion:
        """Answer one request, raising TransientError or PermanentError on failure."""

    def cost(self, completion: Completion) -> float | None:
        """Dollars for one completion; None when no price is known. A price set in the teacher's
        config (``teachers.NAME.price``) wins over this: see :mod:`fair_core.gateway.prices`."""
        return None

    def local(self) -> bool:
        """Whether it answers with no provider's bill (a recorded committee, a model on this
        machine, a server on this network): unpriced, it then costs $0 rather than an unknown sum."""
        return False

    def count_tokens(self, messages: tuple[dict, ...]) -> int | None:
        """The prompt tokens of ``messages`` as this teacher's model counts them, for ``fair
        estimate``; None when the backend cannot tell (the estimate then counts 4 characters a token)."""
        return None

    def identity(self) -> dict:
        """What makes two answers interchangeable: the cache key is built from it and the
        request's messages. Teachers that differ in ``options`` may answer differently, so they
        get separate cache entries; a backend that overrides this keeps every option that can
        change an answer (and never a secret)."""
        return {
            "backend": self.config.backend,
            "model": self.config.model,
            "params": self.config.params,
            "options": self.config.options,
        }

    async def aclose(self) -> None:
        pass
