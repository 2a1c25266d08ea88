"""A local OpenAI-compatible chat server with scripted teachers and injected faults.

Tests and benchmarks talk to it over real HTTP/1.1 on 127.0.0.1, so the whole client stack (litellm,
the litellm teacher's lean HTTP client, retries, pools) runs exactly as against a provider, offline and free.
It is built on asyncio streams with keep-alive and no framework: one process answers thousands of
requests a second, and a benchmark's 160 a second cost it a few percent of one core.

Models are scripted teachers picked by name ("openai/" is stripped): ``solver`` solves SVAMP by its
equation, ``noisy-P`` does the same but is wrong (answer + 1) on a fixed share P of the questions,
``echo`` returns the last user message; more are registered by name as plain functions
``(model, messages) -> text``. The scripted teachers tell a solve, an explain (feedback) and a review
request apart by the prompt's words (:func:`purpose`) and read the gold from the prompt's hint.

``latency`` is the time from a request's arrival to its answer. Faults are drawn per admitted
request from a seeded RNG, at the given rates: "500" (HTTP 500), "hang" (no answer until the client
gives up and closes), "malformed" (200 with a body that is not JSON), "empty" (200 with an empty
content string), "drop" (the connection closes mid-response), "length" (200 with half the answer and
finish_reason "length"), "filter" (200 with a scrap of it and finish_reason "content_filter"),
"badusage" (a whole answer whose usage counts are strings). The models ``refuse-400`` (this request
is too long for the model), ``credit-402`` (no credit left) and ``quota-429`` (the quota is spent)
answer every request with that error; ``echo-key-401`` and ``echo-key-500`` do so with a message that
quotes the request's bearer token, as a provider or a proxy may (fair must never store or print it).
A behaviour raises :class:`ErrorReply` to answer with any status and message, or :class:`RawReply` to
send any bytes at all, as a hostile or broken provider would (escapes in headers, a body that is no
JSON, one that drips without end, a connection reset halfway). Beyond ``capacity``
requests in flight the server answers 429 with ``Retry-After: 0.05`` (seconds, a float: the openai
SDK and fair's client read fractions; ``retry-after-ms`` carries the same in milliseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import itertools
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from ssl import SSLContext
from typing import Callable, Iterator, Mapping

from ..task import data_root

try:
    import orjson

    def _dumps(obj) -> bytes:
        return orjson.dumps(obj)

    _loads = orjson.loads
except ImportError:  # orjson is optional: the stdlib is fast enough for a few hundred calls a second

    def _dumps(obj) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()

    _loads = json.loads

Behaviour = Callable[[str, list], str]
FAULTS = ("500", "hang", "malformed", "empty", "drop", "length", "filter", "badusage")
# models that answer every request with an error a provider gives: (status, message, code)
REFUSALS = {
    "refuse-400": (400, "This model's maximum context length is 8192 tokens", "context_length_exceeded"),
    "credit-402": (402, "Insufficient credits: add more to your account", "insufficient_credits"),
    "quota-429": (429, "You exceeded your current quota, please check your plan and billing", "insufficient_quota"),
}
# models that answer every request with an error quoting the key they were sent: status by name
KEY_ECHOES = {"echo-key-401": 401, "echo-key-500": 500}
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


# -- scripted teachers -----------------------------------------------------------------------------


def fingerprint(model: str, messages: list) -> str:
    """What identifies a request in the counters: sha256 of the canonical JSON of model + messages
    (the model without its "openai/" prefix), so a test can compute it for the requests it sent."""
    body = json.dumps(
        {"model": model.removeprefix("openai/"), "messages": messages},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _text(content) -> str:
    if isinstance(content, list):  # OpenAI's content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def last_user(messages: list) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return _text(m.get("content"))
    return ""


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _equation(raw: str) -> str:
    """SVAMP's "( 76.0 - 25.0 )" as a person writes it: "76 - 25"."""
    eq = re.sub(r"(\d+)\.0\b", r"\1", raw).replace("( ", "(").replace(" )", ")").strip()
    depth = 0
    for i, ch in enumerate(eq):  # drop one pair of parentheses that wraps the whole expression
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and i < len(eq) - 1:
            break
    else:
        if eq.startswith("(") and eq.endswith(")"):
            eq = eq[1:-1]
    return eq


@cache
def _svamp(path: str) -> tuple[tuple[str, dict], ...]:
    """(whitespace-normalised question, item) pairs, longest question first."""
    file = Path(path) / "svamp" / "SVAMP.json" if path else None
    items = json.loads(file.read_text()) if file and file.is_file() else []
    pairs = [(" ".join(f"{it['Body']} {it['Question']}".split()), it) for it in items]
    return tuple(sorted(pairs, key=lambda p: -len(p[0])))


def find_svamp(text: str) -> tuple[str, dict] | tuple[None, None]:
    """The SVAMP item whose question appears in ``text`` (read from $FAIR_DATA_DIR), as (question, item)."""
    root = data_root()
    flat = " ".join(text.split())
    for question, item in _svamp(str(root) if root else ""):
        if question in flat:
            return question, item
    return None, None


_NUMBER = r"(-?\d[\d,]*(?:\.\d+)?)"
# The gold answer a review or feedback prompt gives: the paper writes "Hint: The correct answer should
# be 145."; "gold", "reference answer" and "correct answer is" read the same. The last one counts.
_GOLD = re.compile(
    r"\b(?:hint|correct answer|right answer|gold(?:en)?(?: answer)?|reference answer|"
    r"expected answer)\b[^\d\n]{0,40}?" + _NUMBER,
    re.I,
)
# A rationale's own conclusion, as the scripted solvers (and most CoT prompts) phrase it.
_STATED = re.compile(r"\bthe answer is\s*:?\s*\$?\s*" + _NUMBER, re.I)


def _value(literal: str) -> float:
    return float(literal.replace(",", "").rstrip("."))


def _gold(prompt: str, item: dict | None) -> tuple[float | None, tuple[int, int]]:
    """The gold number the prompt states (and where), else the SVAMP answer of its question."""
    found = list(_GOLD.finditer(prompt))
    if found:
        return _value(found[-1].group(1)), found[-1].span()
    return (float(item["Answer"]) if item else None), (0, 0)


def purpose(prompt: str, question: str | None = None) -> str:
    """ "review" when the prompt asks for a score, "explain" when it speaks of mistakes, else "solve".
    The instruction before the question decides (a student's answer quoted after it may well say
    "score"); when it names neither, the whole prompt does. The question's own words never count."""
    flat = " ".join(prompt.split())
    head, _, tail = flat.partition(question) if question else (flat, "", "")
    for text in (head.lower(), f"{head} {tail}".lower()):
        if "score" in text:
            return "review"
        if "mistake" in text:
            return "explain"
    return "solve"


def review(prompt: str, item: dict | None) -> str:
    """ "[5]" when the rationale's stated answer (the last "The answer is N" outside the hint) equals
    the gold of the prompt, else "[2]". A rationale that states no answer gets "[2]"."""
    gold, (start, end) = _gold(prompt, item)
    stated = [m for m in _STATED.finditer(prompt) if not (start <= m.start() < end)]
    if gold is None or not stated:
        return "[2]"
    return "[5]" if abs(_value(stated[-1].group(1)) - gold) < 1e-6 else "[2]"


def feedback(prompt: str, item: dict | None) -> str:
    gold, _ = _gold(prompt, item)
    answer = _num(gold) if gold is not None else "unknown"
    how = f" The question asks for {_equation(item['Equation'])}, which the student did not compute." if item else ""
    return (
        f"The mistake is in the student's calculation: the final answer does not follow from the "
        f"numbers in the question.{how} The correct answer is {answer}. The answer is {answer}."
    )


def _solve(item: dict | None, wrong: bool) -> str:
    if item is None:
        return "I cannot find a way to relate the numbers in this problem, so I will guess. The answer is 0."
    answer = float(item["Answer"]) + (1 if wrong else 0)
    eq = _equation(item["Equation"])
    return (
        f'To answer "{item["Question"].strip()}", we combine the numbers from the problem: '
        f"{eq} = {_num(answer)}. The answer is {_num(answer)}."
    )


def _teacher(error_share: float) -> Behaviour:
    """A scripted SVAMP teacher that solves, explains and reviews; wrong on ``error_share`` of the
    questions when solving (chosen by a hash of the question, so the same ones every run)."""

    def behave(model: str, messages: list) -> str:
        prompt = last_user(messages)
        question, item = find_svamp(prompt)
        kind = purpose(prompt, question)
        if kind == "review":
            return review(prompt, item)
        if kind == "explain":
            return feedback(prompt, item)
        share = int.from_bytes(hashlib.sha256(question.encode()).digest()[:8], "big") / 2**64 if question else 1.0
        return _solve(item, share < error_share)

    return behave


def answer_key(answers: Mapping[str, str]) -> Behaviour:
    """A scripted teacher for any dataset, given its answer key (question -> gold): it solves with
    the key's answer, explains by it, and reviews a rationale [5] when the answer it states ("The
    answer is X.") is the key's, else [2]. The question is the longest key the prompt contains."""
    keys = sorted(answers, key=len, reverse=True)
    stated = re.compile(r"\bthe answer is\s*:?\s*\**([^\n*]+?)\**\s*(?:\.\s|\.?$|\n)", re.I | re.M)

    def normal(text: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())

    def behave(model: str, messages: list) -> str:
        prompt = last_user(messages)
        question = next((q for q in keys if q in prompt), None)
        gold = answers[question] if question is not None else "unknown"
        kind = purpose(prompt, question)
        if kind == "review":
            said = [m[1] for m in stated.finditer(prompt)]
            return "[5]" if said and normal(said[-1]) == normal(gold) else "[2]"
        if kind == "explain":
            return f"The mistake is that the student's answer does not answer the question. The answer is {gold}."
        return f"Reading the question carefully, one step at a time, gives the result. The answer is {gold}."

    return behave


class ErrorReply(Exception):
    """Raised by a behaviour: the server answers with this HTTP status and error message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class RawReply(Exception):
    """Raised by a behaviour: the server sends this response as it is, then closes the connection.
    ``headers`` are written as given (escapes and all; a ``Content-Length`` among them replaces the
    true one); with ``drip``, the body goes a byte every ``drip`` seconds, and with ``endless`` it
    repeats until the client hangs up; with ``reset``, the connection is reset once the body is sent."""

    def __init__(
        self,
        status: int = 200,
        body: bytes | str = b"",
        headers: Mapping[str, str] | None = None,
        *,
        drip: float = 0.0,
        endless: bool = False,
        reset: bool = False,
    ) -> None:
        super().__init__(f"raw HTTP {status}")
        self.status, self.headers = status, dict(headers or {})
        self.body = body.encode() if isinstance(body, str) else body
        self.drip, self.endless, self.reset = drip, endless, reset


def echo(model: str, messages: list) -> str:
    return last_user(messages)


BEHAVIOURS: dict[str, Behaviour] = {"solver": _teacher(0.0), "echo": echo}
_NOISY = re.compile(r"noisy-(0(?:\.\d+)?|1(?:\.0+)?)")


# -- the server -------------------------------------------------------------------------------------


class FakeOpenAI:
    """The server. Counters are plain attributes, safe to read from another thread:
    ``requests`` (chat requests received, 429s included), ``by_model`` (Counter by model name),
    ``received`` and ``answered`` (Counter by :func:`fingerprint`; answered counts only normal 200
    answers, no faulted ones), ``rejected`` (429s), ``faulted`` (Counter by fault kind),
    ``in_flight``, ``peak_in_flight`` and ``connections`` (TCP connections accepted)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        capacity: int | None = None,
        retry_after: float = 0.05,
        faults: Mapping[str, float] | None = None,
        seed: int = 0,
        behaviours: Mapping[str, Behaviour] | None = None,
        api_key: str | None = None,
        hang_seconds: float = 3600.0,
        ssl: SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.ssl = ssl
        self.latency = latency
        self.capacity = capacity
        self.retry_after = retry_after
        self.faults = faults or {}
        self.rng = random.Random(seed)
        self.behaviours = {**BEHAVIOURS, **(behaviours or {})}
        self.api_key = api_key
        self.hang_seconds = hang_seconds
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self._ids = itertools.count(1)
        self.in_flight = 0
        self.reset_counts()

    @property
    def faults(self) -> dict[str, float]:
        return self._faults

    @faults.setter
    def faults(self, rates: Mapping[str, float]) -> None:
        """Replace the fault rates (allowed while serving: tests switch faults on and off)."""
        unknown = set(rates) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault {sorted(unknown)[0]!r}: use one of {', '.join(FAULTS)}")
        if any(r < 0 for r in rates.values()) or sum(rates.values()) > 1:
            raise ValueError("fault rates must be >= 0 and sum to at most 1")
        self._faults = {k: float(v) for k, v in rates.items() if v}

    def reset_counts(self) -> None:
        """Zero the counters; ``in_flight`` is a gauge of requests still being answered, and stays."""
        self.requests = 0
        self.rejected = 0
        self.by_model: Counter[str] = Counter()
        self.received: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.faulted: Counter[str] = Counter()
        self.peak_in_flight = self.in_flight
        self.connections = 0

    def stats(self) -> dict:
        return {
            "requests": self.requests,
            "rejected": self.rejected,
            "by_model": dict(self.by_model),
            "received": dict(self.received),
            "answered": dict(self.answered),
            "faulted": dict(self.faulted),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
            "connections": self.connections,
        }

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}/v1"

    async def start(self) -> FakeOpenAI:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=1 << 22, backlog=1024, ssl=self.ssl
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    def behaviour(self, model: str) -> Behaviour | None:
        name = model.removeprefix("openai/")
        if name in self.behaviours:
            return self.behaviours[name]
        noisy = _NOISY.fullmatch(name)
        return _teacher(float(noisy.group(1))) if noisy else None

    # connection handling ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # a connection is served inside its own task
        self._connections.add(task)
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                if any(
                    "\n" in line or "\r" in line for line in lines
                ):  # a bare line break: refused, as real servers do
                    self._send(writer, 400, _error("a header holds a bare line break"), close=True)
                    return
                method, target, version = (lines[0].split(" ") + ["", "", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = headers.get("content-length") or "0"
                if "chunked" in headers.get("transfer-encoding", "").lower() or not length.isdigit():
                    self._send(writer, 411, _error("send the body with a Content-Length"), close=True)
                    return
                body = await reader.readexactly(int(length))
                close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
                keep = await self._route(method, target.split("?", 1)[0], headers, body, reader, writer, close)
                await writer.drain()
                if close or not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    def _send(
        self, writer, status: int, body: bytes, *, close: bool = False, headers: str = "", length: int | None = None
    ) -> None:
        writer.write(
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) if length is None else length}\r\n{headers}"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n".encode()
            + body
        )

    async def _route(self, method, path, headers, body, reader, writer, close) -> bool:
        """Answer one request; False when the connection must close afterwards."""
        if path.endswith("/chat/completions"):
            if method != "POST":
                self._send(writer, 405, _error("use POST"), close=close)
                return True
            return await self._chat(headers, body, reader, writer, close)
        if method == "GET" and path.endswith("/models"):
            data = [
                {"id": name, "object": "model", "created": 0, "owned_by": "fair-testing"} for name in self.behaviours
            ]
            self._send(writer, 200, _dumps({"object": "list", "data": data}), close=close)
        elif method == "GET" and path == "/_stats":  # counters for a server in another process
            self._send(writer, 200, _dumps(self.stats()), close=close)
        elif method == "POST" and path == "/_reset":
            self.reset_counts()
            self._send(writer, 200, b"{}", close=close)
        else:
            self._send(writer, 404, _error(f"no route {method} {path}", "not_found"), close=close)
        return True

    async def _chat(self, headers, body, reader, writer, close) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.latency
        self.requests += 1
        try:
            payload = _loads(body)
            model, messages = payload["model"], payload["messages"]
            if not isinstance(model, str) or not isinstance(messages, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self._send(
                writer, 400, _error("the body must be JSON with a string model and a list of messages"), close=close
            )
            return True
        name = model.removeprefix("openai/")
        self.by_model[name] += 1
        fp = fingerprint(name, messages)
        self.received[fp] += 1
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            self._send(writer, 401, _error("invalid api key", "invalid_api_key"), close=close)
            return True
        if name in REFUSALS:
            status, message, code = REFUSALS[name]
            self._send(writer, status, _error(message, code), close=close)
            return True
        if name in KEY_ECHOES:
            key = headers.get("authorization", "").removeprefix("Bearer ")
            message = f"Incorrect API key provided: {key}. You can find your API key at https://example.invalid"
            self._send(writer, KEY_ECHOES[name], _error(message, "invalid_api_key"), close=close)
            return True
        behave = self.behaviour(name)
        if behave is None:
            self._send(writer, 404, _error(f"model {name!r} does not exist", "model_not_found"), close=close)
            return True
        if self.capacity is not None and self.in_flight >= self.capacity:
            self.rejected += 1
            self._send(
                writer,
                429,
                _error("too many requests in flight", "rate_limit_exceeded"),
                close=close,
                headers=f"Retry-After: {self.retry_after:g}\r\nretry-after-ms: {self.retry_after * 1000:g}\r\n",
            )
            return True
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            fault = self._draw()
            if fault:
                self.faulted[fault] += 1
            if fault == "hang":
                await self._hang(reader)
                return False
            status, text = 200, ""
            if fault == "500":
                status, error = 500, _error("injected server error", "server_error")
            elif fault != "empty":
                try:
                    text = behave(name, messages)
                except ErrorReply as e:
                    status, error = e.status, _error(e.message, "server_error")
                except RawReply as e:
                    await self._raw(writer, e)
                    return False
                except Exception as e:  # noqa: BLE001 - a broken scripted behaviour shows up as a 500 naming it
                    status, error = 500, _error(f"behaviour {name!r} failed: {e!r}", "server_error")
            wait = deadline - loop.time()  # latency counts from arrival: the work above is part of it
            if wait > 0:
                await asyncio.sleep(wait)
            if status != 200:
                self._send(writer, status, error, close=close)
                return True
            # "tokens" are whitespace-separated words: deterministic, and cheap to count
            prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages if isinstance(m, dict))
            usage: dict[str, int | str] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(text.split()),
                "total_tokens": prompt_tokens + len(text.split()),
            }
            finish = "stop"
            if fault == "length":
                text, finish = " ".join(text.split()[: max(1, len(text.split()) // 2)]), "length"
            elif fault == "filter":
                text, finish = " ".join(text.split()[:2]) or "I", "content_filter"
            elif fault == "badusage":
                usage = {k: str(v) for k, v in usage.items()}
            if payload.get("stream"):
                return await self._stream(writer, model, text, usage, fault, fp, close)
            if fault == "malformed":
                self._send(writer, 200, b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "', close=close)
                return True
            response = _dumps(
                {
                    "id": f"chatcmpl-{next(self._ids)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
                    ],
                    "usage": usage,
                }
            )
            if fault == "drop":  # promise the whole body, send half, hang up
                self._send(writer, 200, response[: len(response) // 2], length=len(response))
                return False
            if fault is None:  # counted before the client can see it, so a test never reads a stale count
                self.answered[fp] += 1
            self._send(writer, 200, response, close=close)
            return True
        finally:
            self.in_flight -= 1

    async def _stream(self, writer, model, text, usage, fault, fp, close) -> bool:
        """Server-sent events over chunked encoding; usage rides on the last chunk, then [DONE]."""
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: " + (b"close" if close else b"keep-alive") + b"\r\n\r\n"
        )
        base = {
            "id": f"chatcmpl-{next(self._ids)}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        words = re.findall(r"\S+\s*", text)
        pieces = ["".join(words[i : i + 4]) for i in range(0, len(words), 4)] or [""]
        events = [
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": piece} if i == 0 else {"content": piece},
                        "finish_reason": None,
                    }
                ],
            }
            for i, piece in enumerate(pieces)
        ]
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage})
        frames = [b"data: " + _dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
        if fault == "malformed":
            frames = [b'data: {"choices": [{"delta": \n\n', b"data: [DONE]\n\n"]
        if fault is None:
            self.answered[fp] += 1
        for i, frame in enumerate(frames):
            if fault == "drop" and i == 1:
                await writer.drain()
                return False
            writer.write(b"%x\r\n%s\r\n" % (len(frame), frame))
        writer.write(b"0\r\n\r\n")
        return True

    async def _raw(self, writer: asyncio.StreamWriter, reply: RawReply) -> None:
        """Send ``reply`` as it says (see :class:`RawReply`); the connection closes after it."""
        headers = {k.lower(): v for k, v in reply.headers.items()}
        if not reply.endless:
            headers.setdefault("content-length", str(len(reply.body)))
        head = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in {**headers, "connection": "close"}.items()
        )
        writer.write(head.encode("utf-8", "surrogateescape") + b"\r\n")
        try:
            async with asyncio.timeout(self.hang_seconds):
                while True:
                    for i in range(0, len(reply.body), 1 if reply.drip else max(1, len(reply.body))):
                        writer.write(reply.body[i : i + 1] if reply.drip else reply.body)
                        await writer.drain()
                        await asyncio.sleep(reply.drip)
                    if not reply.endless or writer.transport.is_closing():  # until the client hangs up
                        break
                    await asyncio.sleep(reply.drip)  # an empty body: nothing, ever
        except TimeoutError:
            pass
        if reply.reset:  # an RST, not a FIN: as a proxy that crashes mid-body
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

    async def _hang(self, reader: asyncio.StreamReader) -> None:
        """Say nothing until the client closes the connection (or hang_seconds pass)."""
        try:
            async with asyncio.timeout(self.hang_seconds):
                while await reader.read(65536):
                    pass
        except TimeoutError:
            pass

    def _draw(self) -> str | None:
        if not self._faults:
            return None
        x = self.rng.random()
        for kind, rate in self._faults.items():
            if x < rate:
                return kind
            x -= rate
        return None


def _error(message: str, code: str = "invalid_request_error") -> bytes:
    return _dumps({"error": {"message": message, "type": code, "code": code}})


# -- running it ------------------------------------------------------------------------------------


@contextmanager
def serve_in_thread(**opts) -> Iterator[FakeOpenAI]:
    """A server on its own event-loop thread, for synchronous tests and for async tests whose own loop
    must not be the server's (a blocked client must never stall the server)."""
    server = FakeOpenAI(**opts)
    loop = asyncio.new_event_loop()
    started: dict = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as e:  # noqa: BLE001 - handed to the caller, which raises it
            started["error"] = e
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="fake-openai", daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in started:
        loop.close()
        raise started["error"]
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _argv(opts: dict) -> list[str]:
    args = []
    for key, value in opts.items():
        if value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if key == "faults":
            args += [a for kind, rate in value.items() for a in ("--fault", f"{kind}={rate}")]
        elif key == "behaviours":  # name -> "module:attribute", importable in the child
            args += [a for name, where in value.items() for a in ("--behaviour", f"{name}={where}")]
        else:
            args += [flag, str(value)]
    return args


@contextmanager
def server_process(**opts) -> Iterator[str]:
    """The server in its own process (as benchmarks need: its CPU is not the client's). Options are
    those of :class:`FakeOpenAI`; ``behaviours`` maps a name to an importable "module:function".
    Yields the base URL; counters are at ``GET <host>/_stats``."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fair_core.testing.server", *_argv({"port": 0, **opts})],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None  # both piped above
    killer = threading.Timer(60, proc.kill)  # never wait forever for READY
    killer.start()
    try:
        line = proc.stdout.readline()
    finally:
        killer.cancel()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"test server did not start: {line.strip()} {proc.stderr.read().strip()[-2000:]}")
    try:
        yield line.split()[1]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _pairs(values: list[str], convert) -> dict:
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep:
            raise ValueError(f"expected NAME=VALUE, got {value!r}")
        out[key] = convert(rest)
    return out


def _load(where: str) -> Behaviour:
    module, _, attr = where.partition(":")
    return getattr(importlib.import_module(module), attr)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m fair_core.testing.server", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--latency", type=float, default=0.0, help="seconds each answer takes")
    p.add_argument("--capacity", type=int, default=None, help="requests in flight before 429")
    p.add_argument("--retry-after", type=float, default=0.05, help="seconds, sent with each 429")
    p.add_argument("--fault", action="append", default=[], metavar="KIND=RATE", help=f"one of {', '.join(FAULTS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--api-key", default=None, help="require this bearer token")
    p.add_argument("--hang-seconds", type=float, default=3600.0)
    p.add_argument("--behaviour", action="append", default=[], metavar="NAME=MODULE:FUNCTION")
    a = p.parse_args(argv)
    try:
        server = FakeOpenAI(
            host=a.host,
            port=a.port,
            latency=a.latency,
            capacity=a.capacity,
            retry_after=a.retry_after,
            faults=_pairs(a.fault, float),
            seed=a.seed,
            behaviours=_pairs(a.behaviour, _load),
            api_key=a.api_key,
            hang_seconds=a.hang_seconds,
        )
    except (ValueError, ImportError, AttributeError) as e:
        p.error(str(e))

    async def serve() -> None:
        await server.start()
        print(f"READY {server.url}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
