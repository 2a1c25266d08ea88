"""The gateway: cache, limits, retries with backoff, cost, budget and call events.

Each answered call is committed as soon as it is answered, and returned as an :class:`Answer`
(its text and usage); the stage makes its records from the text and stores them with the call's
key. A killed run loses at most the calls in flight, and a resumed run pays for no call that was
answered and stored before: the records a kill left unmade are made again from the cache.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import os
import random
import time
from dataclasses import dataclass
from typing import Callable

from ..errors import PluginResultError, expect
from ..redact import keep_environment_secrets, keep_secret, redact
from ..runs.disk import DiskFull
from ..runs.events import BudgetReached, CallDone, CallFailed, CallRetried, CallStarted, Event, Message
from ..runs.store import WAL_HEADROOM, Store
from .backend import (
    Backend,
    Completion,
    PermanentError,
    Refused,
    Request,
    TeacherDown,
    TransientError,
    Unreachable,
    token_count,
)
from .limits import Limits
from .prices import cost as price_of
from .prices import unpriced, unpriced_line
from .watchdog import Blocked, release, watched

MAX_DELAY_S = 60.0
# the longest wait a provider's Retry-After is granted: a longer one (a daily quota) fails the call
MAX_RETRY_AFTER_S = 300.0
# what a provider's finish_reason says of an answer cut short: never stored as an answer
CUT_SHORT = {
    "length": "the answer was cut off at the token limit (finish_reason length): raise max_tokens in its params",
    "content_filter": "the provider's content filter cut the answer (finish_reason content_filter)",
}
# requests refused (HTTP 400/422) in a row, with no answer between, that stop a teacher
REFUSED_IN_A_ROW = 3


# Unreachable in a row, per teacher: from the first number on, its calls go one at a time (each
# a probe after its backoff); at the second, the teacher is given up for this invocation.
PROBE_AFTER, GIVE_UP_AFTER = 3, 8


@dataclass(frozen=True)
class Answer:
    """A call's answer: its text, the key it is stored under (the records made from it keep it),
    and what it used; a cached answer used nothing now."""

    text: str
    key: str
    cached: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None


class CallFailure(Exception):
    """A call that will not be answered in this run (its reason is the message)."""


class Health:
    """What one teacher's calls have shown: whether it is down, and unreachable errors in a row."""

    def __init__(self) -> None:
        self.down: str | None = None
        self.unreachable = 0
        self.refused = 0
        self.probe = asyncio.Lock()


class Gateway:
    def __init__(
        self,
        store: Store,
        publish: Callable[[Event], None],
        teachers: dict[str, Backend],
        budget_usd: float | None = None,
        seed: int = 0,
    ) -> None:
        self.store = store
        self.publish = publish
        self.teachers = teachers
        # before any call: a provider that echoes its key is never stored saying it (a teacher
        # without api_key_env sends what its provider's SDK reads, OPENAI_API_KEY or the like)
        keep_environment_secrets()
        for backend in teachers.values():
            keep_secret(os.environ.get(backend.config.api_key_env or ""))
        self.limits = {name: Limits(b.config.concurrency, b.config.rpm, b.config.tpm) for name, b in teachers.items()}
        self.identity = {name: json.dumps(b.identity(), sort_keys=True) for name, b in teachers.items()}
        self.budget = budget_usd
        self.spent = store.spent_usd()
        self.reserved = 0.0  # the worst-case cost of the calls in flight
        self._settled = asyncio.Event()  # set (and replaced) when a call in flight settles its reserve
        self.running = asyncio.Event()
        self.running.set()
        self.cancelled = False
        self.budget_reached = False  # set once, when the first call is refused for it
        self.health = {name: Health() for name in teachers}
        for name, backend in teachers.items():  # before any call is timed
            try:
                backend.prepare()
            except Exception as e:  # noqa: BLE001 - a backend's bug stops its teacher, never the run
                self._down(name, self.health[name], redact(f"{type(e).__name__}: {e}"))
        self._inflight: dict[str, asyncio.Future] = {}
        self.full: DiskFull | None = None  # the first write a full disk refused
        self.held: list[tuple[str, dict]] = []  # (key, call) not stored for want of space
        self._rng = random.Random(seed)
        for backend in teachers.values():  # with a budget, the run's check refused to start instead
            if unpriced(backend):
                publish(Message("warning", unpriced_line(backend, "its calls count as $0")))

    # control (the TUI and the runner call these) ---------------------------------------------
    def pause(self) -> None:
        """Stop starting new calls; those in flight finish."""
        self.running.clear()

    def resume(self) -> None:
        self.running.set()

    def cancel(self) -> None:
        self.cancelled = True
        self.running.set()
        self._settle()

    # calls -----------------------------------------------------------------------------------
    def key(self, request: Request) -> tuple[str, str]:
        body = f"[{self.identity[request.teacher]},{json.dumps(request.messages, sort_keys=True)},{request.sample}]"
        return hashlib.sha256(body.encode()).hexdigest(), body

    async def call(self, request: Request) -> Answer:
        """The answer to ``request``: from the cache when it was answered before, shared with an
        identical request in flight, else sent (with retries) and stored."""
        key, body = self.key(request)
        shared = self._inflight.get(key)
        if shared is None:
            cached = self.store.cached_answer(key)
            if cached is None:
                return await self._single_flight(key, body, request)
            text = cached
        else:
            text = (await asyncio.shield(shared)).text  # a waiter cancelled (Ctrl-C) leaves the call to its owner
        self.publish(CallDone(request.teacher, request.purpose, request.item_id, cached=True))
        return Answer(text, key, cached=True)

    def _store(self, key: str, row: dict) -> None:
        """Store an answered call. On a full disk, hold it in memory (see :meth:`stop`), so that an
        answer paid for is stored once there is space, and start no other call."""
        try:
            self.store.record_call(key, row)
        except DiskFull as e:
            self.held.append((key, row))
            self.full = self.full or e
            raise

    def stop(self) -> DiskFull:
        """What ends a stage that a full disk stopped, once its calls in flight are done: the answers
        held are stored now if there is space again; those that are not are named in the error
        (the rerun asks them again: they were never counted as answered)."""
        while self.held:
            try:
                self.store.record_call(*self.held[0])
            except DiskFull:
                break
            self.held.pop(0)
        held = sum(len(json.dumps(row, default=str)) for _, row in self.held)
        return DiskFull.at(self.store.path, WAL_HEADROOM + held, len(self.held))

    async def _single_flight(self, key: str, body: str, request: Request) -> Answer:
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved even if unshared
        self._inflight[key] = future
        try:
            answer = await self._send(key, body, request)
        except BaseException as e:
            future.set_exception(e if isinstance(e, CallFailure) else CallFailure("interrupted"))
            raise
        finally:
            del self._inflight[key]
        future.set_result(answer)
        return answer

    async def _send(self, key: str, body: str, request: Request) -> Answer:
        backend = self.teachers[request.teacher]
        cfg = backend.config
        limits = self.limits[request.teacher]
        health = self.health[request.teacher]
        attempt = 0
        while True:
            async with limits.slots:
                worst = _worst_cost(backend, request)
                await self._afford(request, worst)  # with a slot in hand: the budget is current
                self.reserved += worst  # held until its real cost is known: the budget is never overshot
                try:
                    probing = health.unreachable >= PROBE_AFTER
                    if probing:
                        await health.probe.acquire()
                    try:
                        if health.down:  # known to fail (checked after the probe's wait): never sent
                            self._fail(key, body, request, health.down, attempt)
                        await limits.admit(_estimate_tokens(request, cfg.params))
                        self.publish(CallStarted(request.teacher, request.purpose, request.item_id))
                        start = time.perf_counter()
                        outcome = await self._attempt(backend, request, health)
                    finally:
                        if probing:
                            health.probe.release()
                finally:
                    self.reserved -= worst
                    self._settle()
                if isinstance(outcome, Completion):
                    completion = outcome
                    break
            reason, retry_after, final = outcome
            attempt += 1
            if retry_after is not None:  # a provider's number: NaN (every test false) asks for nothing
                retry_after = None if math.isnan(retry_after) else max(0.0, retry_after)
            if retry_after is not None and retry_after > MAX_RETRY_AFTER_S:
                reason, final = f"{reason}; the provider asks to wait {retry_after:.0f} s: rerun later", True
            if final or attempt > cfg.max_retries:
                if not final:
                    reason = f"{reason} (gave up after {attempt} tries)"
                self._fail(key, body, request, reason, attempt)
            delay = max(
                retry_after or 0.0,
                min(MAX_DELAY_S, cfg.retry_base_s * 2 ** (attempt - 1)) * self._rng.uniform(0.5, 1.5),
            )
            self.publish(CallRetried(request.teacher, request.purpose, request.item_id, attempt, reason, delay))
            await asyncio.sleep(delay)
        latency = time.perf_counter() - start
        cost = _cost(backend, completion)
        self.spent += cost or 0.0
        self._store(key, _row(request, backend, body, completion, cost, latency, attempt + 1, None))
        self.publish(
            CallDone(
                request.teacher,
                request.purpose,
                request.item_id,
                completion.prompt_tokens,
                completion.completion_tokens,
                cost or 0.0,
                latency,
            )
        )
        return Answer(completion.text, key, False, completion.prompt_tokens, completion.completion_tokens, cost)

    async def _attempt(self, backend: Backend, request: Request, health: Health) -> Completion | tuple:
        """One try: its completion (any known key in it redacted), or (reason, retry_after, final)
        with the reason redacted: this is where a provider's text enters fair. A teacher that is
        down, or unreachable too many times in a row, is marked so with the reason."""
        try:
            timeout = backend.config.timeout_s
            completion = await asyncio.wait_for(watched(backend.complete(request), timeout), timeout)
            expect(
                isinstance(completion, Completion) and isinstance(completion.text, str),
                f"teacher backend {backend.config.backend!r}",
                completion,
                "a Completion whose text is a str",
            )
            if not completion.text.strip():
                raise TransientError("empty answer")
            if completion.finish_reason in CUT_SHORT:
                raise TransientError(CUT_SHORT[completion.finish_reason])
            health.unreachable = health.refused = 0
            return dataclasses.replace(  # whatever the backend passed on of a provider's usage, a count
                completion,
                text=redact(completion.text, shapes=False),
                prompt_tokens=token_count(completion.prompt_tokens),
                completion_tokens=token_count(completion.completion_tokens),
            )
        except TimeoutError:
            return f"timeout after {backend.config.timeout_s:g} s", None, False
        except Exception as e:  # noqa: BLE001 - a backend bug fails this call, never the run
            return self._judge(request.teacher, health, e)

    def _judge(self, teacher: str, health: Health, e: Exception) -> tuple:
        """A failed try's (reason, retry_after, final), by the error's kind."""
        known = isinstance(e, (TransientError, PermanentError, PluginResultError, Blocked))
        reason = redact(str(e) if known else f"{type(e).__name__}: {e}")
        if isinstance(e, (TeacherDown, Blocked)):  # a backend that blocks the loop stalls every teacher: stop it
            self._down(teacher, health, reason)
            return reason, None, True
        if isinstance(e, Refused):
            health.refused += 1
            if health.refused >= REFUSED_IN_A_ROW:
                self._down(teacher, health, f"{reason} ({health.refused} requests refused in a row)")
            return reason, None, True
        if isinstance(e, Unreachable):
            health.unreachable += 1
            if health.unreachable >= GIVE_UP_AFTER:
                self._down(teacher, health, f"{reason} ({health.unreachable} tries in a row)")
                return health.down, None, True
            return reason, e.retry_after, False
        if isinstance(e, TransientError):
            return reason, e.retry_after, False
        return reason, None, True

    def stopped(self) -> list[str]:
        """Why each teacher that was stopped in this run was stopped."""
        return [h.down for h in self.health.values() if h.down]

    def _down(self, teacher: str, health: Health, reason: str) -> None:
        if health.down is None:
            health.down = f"teacher {teacher} stopped: {reason}"
            self.publish(
                Message(
                    "warning", f"{health.down}; its other calls fail without being sent: fix it and rerun to retry them"
                )
            )

    async def _afford(self, request: Request, worst: float) -> None:
        """Return once the run is not paused and this call's worst case fits the budget beside the
        worst cases of the calls in flight: those usually cost less, so it waits for them rather
        than fail while the money may be there."""
        while True:
            await self.running.wait()  # paused: hold here, so no new call starts
            self._check_go(request, worst)
            if self.budget is None or self.spent + self.reserved + worst <= self.budget:
                return
            await self._settled.wait()

    def _settle(self) -> None:
        """Wake the calls waiting in :meth:`_afford`: a reserve was released, or the run cancelled."""
        self._settled.set()
        self._settled = asyncio.Event()

    def _check_go(self, request: Request, worst: float = 0.0) -> None:
        """Refuse a call when cancelled, or when what is spent and this call's worst case would
        pass the budget (what the calls in flight reserve is waited for)."""
        if self.full is not None:  # no call starts that could not be stored
            raise DiskFull(str(self.full))
        if self.cancelled:
            raise CallFailure("cancelled")
        if self.budget is not None and self.spent + worst > self.budget:
            if not self.budget_reached:
                self.budget_reached = True
                self.publish(BudgetReached(self.spent, self.budget))
            raise CallFailure(f"budget of ${self.budget:g} reached")

    def _fail(self, key: str, body: str, request: Request, reason: str, attempts: int) -> None:
        backend = self.teachers[request.teacher]
        self.store.record_call(key, _row(request, backend, body, None, None, None, attempts, reason))
        self.publish(CallFailed(request.teacher, request.purpose, request.item_id, reason))
        raise CallFailure(reason)

    async def aclose(self) -> None:
        release()
        for backend in self.teachers.values():
            await backend.aclose()


def _worst_cost(backend: Backend, request: Request) -> float:
    """What a call may cost at most: its prompt (a token per 3 characters, generously) and all of
    ``max_tokens`` at the teacher's price; 0 where the price is not known."""
    prompt = _prompt_chars(request) // 3 + 16
    return _cost(backend, Completion("", prompt, int(backend.config.params.get("max_tokens", 512)))) or 0.0


def _estimate_tokens(request: Request, params: dict) -> int:
    return _prompt_chars(request) // 4 + int(params.get("max_tokens", 512))


def _prompt_chars(request: Request) -> int:
    return sum(len(m.get("content") or "") for m in request.messages)


def _row(
    request: Request,
    backend: Backend,
    body: str,
    completion: Completion | None,
    cost: float | None,
    latency: float | None,
    attempts: int,
    error: str | None,
) -> dict:
    return {
        "teacher": request.teacher,
        "backend": backend.config.backend,
        "model": backend.config.model,
        "purpose": request.purpose,
        "item_id": request.item_id,
        "request": body,
        "response": completion.text if completion else None,
        "prompt_tokens": completion.prompt_tokens if completion else None,
        "completion_tokens": completion.completion_tokens if completion else None,
        "cost_usd": cost,
        "latency_s": latency,
        "attempts": attempts,
        "error": error,
        "created": time.time(),
    }


def _cost(backend: Backend, completion: Completion) -> float | None:
    """The teacher's price of a completion; a pricing plugin that fails, or gives no finite sum of
    at least $0 (a NaN would hold the budget's every test false), prices it unknown rather than
    failing a call that was answered and paid for."""
    try:
        cost = price_of(backend, completion)
        return None if cost is None or not 0 <= float(cost) < math.inf else float(cost)
    except Exception:  # noqa: BLE001 - a plugin's bug must not lose the answer
        return None
