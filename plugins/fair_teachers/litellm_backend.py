"""The litellm teacher: any provider litellm knows, or any OpenAI-compatible base URL.

OpenAI-compatible endpoints (an ``api_base`` with an ``openai/`` model, or ``options.transport =
"http"``) go through our lean HTTP client (http_client.py) by default: litellm's own call costs
~8 ms of CPU, which caps a 2-core client near 120 calls per second. ``options.transport =
"litellm"`` forces litellm. The transport changes how a call is sent, never its answer, so it is
no part of the teacher's identity.
"""

from __future__ import annotations

import ipaddress
import os
import re
import warnings
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

from fair_core.errors import FairError
from fair_core.gateway.backend import (
    Backend,
    Completion,
    Refused,
    Request,
    TeacherDown,
    TransientError,
    Unreachable,
    token_count,
)
from fair_core.inert import inert
from fair_core.redact import redact

from .pricing import known, price

if TYPE_CHECKING:  # imported where it is used: litellm-only teachers never load it
    from .http_client import ChatClient

DOWN = {401, 402, 403, 404}  # the teacher cannot answer anything: stop it
REFUSED = {400, 422}  # this request: fail the call
TRANSPORTS = ("auto", "litellm", "http")  # options.transport
# a 429 that no wait will help: the account's quota or credit is spent
_SPENT = re.compile(r"insufficient_quota|exceeded your current quota|billing|credit", re.I)
_TRACEBACK = re.compile(r"\s*Traceback \(most recent call last\)")


def import_litellm():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    # litellm's response models warn on stderr when a provider's field is not the type they expect,
    # quoting its value cut in the middle: noise to a user, and a key's cut tail no redaction finds
    warnings.filterwarnings("ignore", message="Pydantic serializer warnings", category=UserWarning)
    return litellm


def _chain(e: BaseException | None, depth: int = 6) -> str:
    """An exception's message with those of its causes: where the OS's reason is kept."""
    parts = []
    while e is not None and depth:
        parts.append(f"{type(e).__name__}: {e}")
        e, depth = e.__cause__ or e.__context__, depth - 1
    return " | ".join(parts)


def classify(status: int | None, reason: str, retry_after: float | None = None, fix: dict | None = None) -> Exception:
    """The gateway's error for an HTTP status; ``fix``: what to do about a 401/403 ("key"), a
    404 ("model") and a spent account ("credit"), for the message."""
    fix = fix or {}
    if status in DOWN or (status == 429 and _SPENT.search(reason)):
        what = "key" if status in (401, 403) else "model" if status == 404 else "credit"
        return TeacherDown(f"HTTP {status}: {reason}" + (f": {fix[what]}" if what in fix else ""))
    if status in REFUSED:
        return Refused(f"HTTP {status}: {reason}")
    return TransientError(f"HTTP {status}: {reason}" if status else reason, retry_after)


def redirected(status: int, location: str | None, base: str) -> TeacherDown:
    """A chat endpoint that redirects has a wrong api_base (http for https, no /v1, a moved host):
    the teacher stops, with the base its Location points to. Never followed: a redirected POST may
    be resent without its body, or carry the key to another host. The Location is provider text."""
    if not location:
        return TeacherDown(f"HTTP {status} with no Location: check api_base {base}")
    moved = urlsplit(urljoin(f"{base.rstrip('/')}/chat/completions", location))
    path = moved.path.rstrip("/")
    if path.endswith("/chat/completions"):
        fix = "set api_base to " + urlunsplit((moved.scheme, moved.netloc, path[: -len("/chat/completions")], "", ""))
    else:
        fix = "set api_base to the URL that /chat/completions is under"
    shown = inert(redact(moved.geturl()))[:200]  # redacted before the cut, which could leave part of a key
    return TeacherDown(f"HTTP {status}: api_base {base} redirects to {shown}: {inert(redact(fix))[:200]}")


# how a refused connection or an unknown host reads in litellm's and the OS's messages
_UNREACHABLE = re.compile(
    r"connection refused|connect call failed|name or service not known|nodename nor servname|"
    r"temporary failure in name resolution|getaddrinfo failed|no route to host",
    re.I,
)


class LiteLLMTeacher(Backend):
    def __init__(self, config) -> None:
        super().__init__(config)
        self.transport = config.options.get("transport", "auto")
        self.direct = self.transport == "http" or (
            self.transport == "auto"
            and config.api_base is not None
            and (config.model.startswith("openai/") or "/" not in config.model)
        )
        self._client: ChatClient | None = None
        self._price = price(config.model)

    def _key(self) -> str | None:
        """The key, without the line break a value read from a file keeps (it would break the header)."""
        env = self.config.api_key_env
        return os.environ.get(env, "").strip() or None if env else None

    def check(self) -> None:
        name, env = self.config.name, self.config.api_key_env
        if not self.config.model:
            raise FairError(f'teacher {name!r} has no model: set model, e.g. "openai/gpt-4o-mini"')
        if self.transport not in TRANSPORTS:
            raise FairError(
                f'teacher {name!r}: options.transport is {self.transport!r}: use "auto", "litellm" or "http" '
                f"(fair's lean client, for an OpenAI-compatible api_base)"
            )
        if env and not os.environ.get(env, "").strip():  # blank: every call would be refused, and paid for in time
            raise FairError(
                f"teacher {name!r}: environment variable {env} is not set"
                f"{' (it is blank)' if env in os.environ else ''}: export it with the provider's API key"
            )
        if self.direct:
            return
        litellm = import_litellm()
        try:
            litellm.get_llm_provider(self.config.model, api_base=self.config.api_base)
        except Exception:  # noqa: BLE001 - whatever litellm raises, the model is unknown to it
            raise FairError(
                f"teacher {name!r}: litellm does not know model {self.config.model!r}: use a "
                f"provider-prefixed name such as openai/gpt-4o-mini"
            ) from None
        if not env and not self.config.api_base:
            missing = litellm.validate_environment(self.config.model).get("missing_keys") or []
            if missing:
                raise FairError(
                    f"teacher {name!r}: environment variable {missing[0]} is not set: export "
                    f"it, or name another one with api_key_env"
                )

    def prepare(self) -> None:
        """litellm is imported here, when the gateway starts, not in the first call, where its
        seconds of import ran under the call's timeout: `fair run` imported it in check(), but a
        gateway driven from Python without that check did not."""
        if not self.direct:
            import_litellm()

    def _fixes(self) -> dict:
        c = self.config
        key = f"check the API key in ${c.api_key_env}" if c.api_key_env else "check the provider's API key"
        return {
            "key": f"{key} and its access to {c.model}",
            "model": f"check teachers.{c.name}.model ({c.model!r})" + (f" at {c.api_base}" if c.api_base else ""),
            "credit": "add credit or raise the quota on the provider's billing page",
        }

    async def complete(self, request: Request) -> Completion:
        if self.direct:
            return await self._complete_http(request)
        return await self._complete_litellm(request)

    async def _complete_http(self, request: Request) -> Completion:
        from .http_client import BadResponse, CannotConnect, ChatClient, ConnectionLost, HTTPError

        if self._client is None:
            base = self.config.api_base or "https://api.openai.com/v1"
            self._client = ChatClient(base, api_key=self._key(), max_connections=self.config.concurrency)
        model = self.config.model.removeprefix("openai/")
        try:
            c = await self._client.complete(
                model, list(request.messages), self.config.params, timeout=self.config.timeout_s
            )
        except HTTPError as e:
            if 300 <= e.status < 400:
                raise redirected(e.status, e.location, base) from None
            raise classify(e.status, redact(e.message)[:200], e.retry_after, self._fixes()) from None
        except CannotConnect as e:
            raise Unreachable(redact(str(e))[:200]) from None
        except (ConnectionLost, BadResponse, OSError) as e:
            raise TransientError(redact(f"{type(e).__name__}: {e}")[:200]) from None
        return Completion(c.text, c.prompt_tokens, c.completion_tokens, c.finish_reason)

    async def _complete_litellm(self, request: Request) -> Completion:
        litellm = import_litellm()
        try:
            r = await litellm.acompletion(
                model=self.config.model,
                messages=list(request.messages),
                api_base=self.config.api_base,
                # a keyless local server still needs some key for the openai client
                api_key=self._key() or ("none" if self.config.api_base else None),
                timeout=self.config.timeout_s,
                num_retries=0,
                **self.config.params,
            )
        except Exception as e:  # noqa: BLE001 - litellm maps every provider error onto openai's exception types
            status = getattr(e, "status_code", None)
            # redacted before it is clipped: a cut must not leave part of a key that no rule then knows;
            # litellm may append a traceback of its own to a message ("Invalid response object Traceback ...")
            reason = _TRACEBACK.split(redact(f"{type(e).__name__}: {e}"))[0].splitlines()[0][:200]
            if _UNREACHABLE.search(_chain(e)):  # litellm may report a refused connection as a 500
                raise Unreachable(f"cannot connect to {self.config.api_base or self.config.model}: {reason}") from None
            status = status if isinstance(status, int) else None
            raise classify(status, reason, _retry_after(e), self._fixes()) from None
        if not getattr(r, "choices", None):  # a 200 with no answer in it, as a broken proxy sends
            raise TransientError("the response has no choices")
        usage = getattr(r, "usage", None)
        choice = r.choices[0]
        finish = getattr(choice, "finish_reason", None)
        return Completion(
            choice.message.content or "",
            token_count(getattr(usage, "prompt_tokens", 0)),
            token_count(getattr(usage, "completion_tokens", 0)),
            finish if isinstance(finish, str) else None,
        )

    def cost(self, completion: Completion) -> float | None:
        if self._price is None:
            return None
        return completion.prompt_tokens * self._price[0] + completion.completion_tokens * self._price[1]

    def local(self) -> bool:
        """A server on this machine or a private network (Ollama, vLLM at localhost:8000), which no
        provider bills for; a price set for it still counts."""
        if self.config.api_base is None:  # litellm's default base: Ollama's is on this machine
            return self.config.model.split("/")[0] in ("ollama", "ollama_chat")
        host = urlsplit(self.config.api_base).hostname
        if host is None:
            return False
        try:
            return ipaddress.ip_address(host).is_private
        except ValueError:
            return host == "localhost" or host.endswith(".localhost")

    def count_tokens(self, messages: tuple[dict, ...]) -> int | None:
        """litellm's count with the model's own tokenizer where it has one (tiktoken otherwise),
        for a model its price map lists; None for others, whose tokenizer it would only guess."""
        name = known(self.config.model)
        return None if name is None else import_litellm().token_counter(model=name, messages=list(messages))

    def identity(self) -> dict:
        return {
            "backend": "litellm",
            "model": self.config.model,
            "api_base": self.config.api_base,
            "params": self.config.params,
        }

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def _retry_after(e: Exception) -> float | None:
    """The wait a provider's error asks for, read as the lean client reads it."""
    from .http_client import retry_after

    headers = getattr(getattr(e, "response", None), "headers", None) or getattr(e, "litellm_response_headers", None)
    try:
        return retry_after({str(k).lower(): str(v) for k, v in headers.items()}) if headers else None
    except AttributeError:  # no mapping: nothing asked
        return None
