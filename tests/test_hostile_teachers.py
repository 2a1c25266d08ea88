"""Hostile teachers: a provider, or a proxy before it, that answers with what no API promises (usage
counts that are negative, NaN or past any integer, content in parts, no choices, a body without
end), or echoes the key it was sent in another form than the plain value. Against the real local
server's raw replies, through the gateway and a real store: no answer lost or paid for twice, a
cost that is never negative, NaN or past the store's integers, a budget that holds, no key kept."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import urllib.parse

import pytest
from committee_setup import committee_config, paper_mistakes
from helpers import fair
from test_gateway import ask, request, run, teacher

from fair_core.gateway.backend import MAX_TOKENS, Backend, Completion, Request
from fair_core.gateway.gateway import CallFailure
from fair_core.inert import inert
from fair_core.redact import REDACTED
from fair_core.runs.events import CallRetried
from fair_core.runs.store import Store
from fair_core.testing.server import BEHAVIOURS, RawReply, serve_in_thread

PRICE = {"input": 1.0, "output": 2.0}  # USD per million tokens
# a key with regex metacharacters, a JSON escape (\) and characters URL-encoding changes
KEY = "k3y.with+regex/meta=chars$^(x)[y]|z?*\\{1}-0123456789"


def answer(content, usage: dict | None = None) -> str:
    """An OpenAI chat completion body with this content and usage."""
    message = {"role": "assistant", "content": content}
    return json.dumps({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage or {}})


def raw(*args, **kwargs):
    """A server behaviour that answers every request with this raw reply."""

    def behave(model: str, messages: list) -> str:
        raise RawReply(*args, **kwargs)

    return behave


def stored(tmp_path) -> list[tuple]:
    db = sqlite3.connect(tmp_path / "run.sqlite")
    return list(db.execute("SELECT response, error, prompt_tokens, completion_tokens, cost_usd, attempts FROM calls"))


# -- usage and cost -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "usage, tokens",
    [
        ({"prompt_tokens": 10**30, "completion_tokens": 10**19}, (MAX_TOKENS, MAX_TOKENS)),  # past SQLite's int64
        ({"prompt_tokens": 10**400, "completion_tokens": "1e400"}, (MAX_TOKENS, MAX_TOKENS)),  # past a float
        ({"prompt_tokens": -1_000_000, "completion_tokens": "-5"}, (0, 0)),
        ({"prompt_tokens": "NaN", "completion_tokens": [7]}, (0, 0)),
    ],
    ids=["past-int64", "past-float", "negative", "nan-and-list"],
)
def test_hostile_usage_counts_are_stored_as_counts_and_the_answer_is_kept(tmp_path, usage, tokens):
    with serve_in_thread(behaviours={"h": raw(200, answer("The answer is 4.", usage))}) as server:
        backends = {"t": teacher(server.url, "h", price=PRICE)}
        result, _ = run(tmp_path, backends, lambda gateway: gateway.call(request("two plus two")))
        asked = server.requests
    assert result.text == "The answer is 4." and asked == 1  # answered once, kept: never asked again
    ((response, error, prompt, completion, cost, attempts),) = stored(tmp_path)
    assert (response, error, attempts) == ("The answer is 4.", None, 1)
    assert (prompt, completion) == tokens
    assert cost == pytest.approx((tokens[0] * 1.0 + tokens[1] * 2.0) / 1e6) and math.isfinite(cost) and cost >= 0


def test_a_usage_past_any_budget_stops_the_next_call_not_the_run(tmp_path):
    huge = {"prompt_tokens": 10**30, "completion_tokens": 10**30}
    with serve_in_thread(behaviours={"h": raw(200, answer("The answer is 4.", huge))}) as server:
        backends = {"t": teacher(server.url, "h", price=PRICE)}

        async def work(gateway):
            first = await gateway.call(request("one"))
            try:
                await gateway.call(request("two", item="1"))
            except CallFailure as e:
                return first, str(e)

        (first, second), _ = run(tmp_path, backends, work, budget=1.0)
    assert first.text == "The answer is 4." and second == "budget of $1 reached"


class NaNPriced(Backend):
    """A teacher plugin whose price is NaN (or negative) and whose usage is garbage."""

    def __init__(self, config, price: float) -> None:
        super().__init__(config)
        self.price = price

    async def complete(self, request: Request) -> Completion:
        return Completion("The answer is 4.", -3, 10**30)  # type: ignore[arg-type]

    def cost(self, completion: Completion) -> float | None:
        return self.price


@pytest.mark.parametrize("price", [math.nan, -1.0, math.inf])
def test_a_plugin_price_that_is_no_sum_counts_as_unknown_and_the_budget_holds(tmp_path, price):
    """A NaN spent or reserved made every budget test false: the first call waited for ever."""
    config = teacher("http://127.0.0.1:9/v1", "h").config

    async def work(gateway):
        return await asyncio.wait_for(gateway.call(request("one")), 60)

    result, _ = run(tmp_path, {"t": NaNPriced(config, price)}, work, budget=1.0)
    assert result.text == "The answer is 4."
    ((_, _, prompt, completion, cost, _),) = stored(tmp_path)
    assert (prompt, completion, cost) == (0, MAX_TOKENS, None)


# -- the shape of the answer --------------------------------------------------------------------------


def test_content_in_parts_is_the_answer_of_its_text_parts(tmp_path):
    parts = [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "The answer"}, {"text": " is 4."}]
    with serve_in_thread(behaviours={"h": raw(200, answer(parts, {"prompt_tokens": 3, "completion_tokens": 4}))}) as s:
        result, _ = run(tmp_path, {"t": teacher(s.url, "h")}, lambda gateway: gateway.call(request("two plus two")))
        asked = s.requests
    assert result.text == "The answer is 4." and asked == 1  # not thrown away and paid for again


@pytest.mark.parametrize("transport", ["http", "litellm"])
def test_no_choices_is_retried_as_a_bad_answer(tmp_path, transport):
    with serve_in_thread(behaviours={"h": raw(200, '{"choices": []}')}) as server:
        backend = teacher(server.url, "h", max_retries=1, options={"transport": transport})
        backend.check()
        (outcome,), _ = run(
            tmp_path, {"t": backend}, lambda gateway: asyncio.gather(gateway.call(request("x")), return_exceptions=True)
        )
        asked = server.requests
    assert isinstance(outcome, CallFailure) and "choices" in str(outcome) and "gave up after 2 tries" in str(outcome)
    assert asked == 2


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("status", [200, 500])
@pytest.mark.parametrize(
    "body",
    ["[1, 2]", '"an answer"', "<html>\xff</html>", DEEP, '{"choices": {"0": 1}}'],
    ids=["list", "str", "html", "deep", "dict"],
)
def test_a_body_that_is_no_answer_is_retried(tmp_path, status, body):
    with serve_in_thread(behaviours={"h": raw(status, body)}) as server:
        backends = {"t": teacher(server.url, "h", max_retries=1)}
        (outcome,), _ = run(
            tmp_path, backends, lambda gateway: asyncio.gather(gateway.call(request("x")), return_exceptions=True)
        )
        asked = server.requests
    assert isinstance(outcome, CallFailure) and "gave up after 2 tries" in str(outcome) and asked == 2, outcome
    assert str(outcome).startswith("BadResponse: " if status == 200 else "HTTP 500: "), outcome


def test_a_body_without_end_is_refused_before_it_fills_the_memory(tmp_path):
    endless = raw(200, b"x" * (1 << 20), endless=True)  # no Content-Length: the body runs until the connection ends
    with serve_in_thread(behaviours={"h": endless}) as server:
        backends = {"t": teacher(server.url, "h", max_retries=0, timeout_s=600)}
        (outcome,), _ = run(
            tmp_path, backends, lambda gateway: asyncio.gather(gateway.call(request("x")), return_exceptions=True)
        )
    assert isinstance(outcome, CallFailure) and "response body over 32 MiB" in str(outcome), outcome


def test_a_body_that_drips_or_never_comes_is_timed_out(tmp_path):
    drip = raw(200, b"{" + b" " * 100, drip=0.1, endless=True)  # a byte every 0.1 s, for ever
    silent = raw(200, b"", {"Content-Length": "100"}, drip=3600, endless=True)  # headers, then nothing
    with serve_in_thread(behaviours={"drip": drip, "silent": silent}) as server:
        backends = {
            name: teacher(server.url, name, name=name, max_retries=0, timeout_s=2) for name in ("drip", "silent")
        }

        async def work(gateway):
            calls = [gateway.call(request("x", teacher=name)) for name in backends]
            return await asyncio.gather(*calls, return_exceptions=True)

        outcomes, _ = run(tmp_path, backends, work)
    assert [str(o) for o in outcomes] == ["timeout after 2 s (gave up after 1 tries)"] * 2


# -- echoed keys --------------------------------------------------------------------------------------


ECHOES = {
    "json-escaped": lambda key: json.dumps({"detail": f"bad key {key}"}),  # not OpenAI's shape: shown raw
    "unicode-escaped": lambda key: json.dumps({"detail": f"bad key {key}"}).replace("k", "\\u006b"),
    "url-encoded": lambda key: f"redirected to /login?key={urllib.parse.quote(key, safe='')}",
    "url-plus": lambda key: f"redirected to /login?key={urllib.parse.quote_plus(key)}",
    "line-break": lambda key: f"bad key {key[:12]}\n{key[12:]}",
    "escape-sequence": lambda key: json.dumps({"error": {"message": f"bad key {key[:12]}\x1b[0m{key[12:]}"}}),
    "zero-width": lambda key: json.dumps({"error": {"message": f"bad key {key[:12]}\u200b{key[12:]}"}}),
}


@pytest.mark.parametrize("form", ECHOES)
def test_a_key_echoed_in_another_form_is_redacted(tmp_path, monkeypatch, form):
    monkeypatch.setenv("FAIR_HOSTILE_KEY", KEY)
    with serve_in_thread(behaviours={"h": raw(401, ECHOES[form](KEY))}) as server:
        backends = {"t": teacher(server.url, "h", api_key_env="FAIR_HOSTILE_KEY")}
        (outcome,), events = run(
            tmp_path, backends, lambda gateway: asyncio.gather(gateway.call(request("x")), return_exceptions=True)
        )
    said = [str(outcome), *(str(v) for e in events for v in e.to_dict().values()), *map(str, stored(tmp_path)[0])]
    said.append((tmp_path / "run.sqlite").read_bytes().decode("utf-8", "replace"))
    assert REDACTED in str(outcome), outcome
    for text in said:  # as a terminal would show it, too: with the cut taken out
        assert KEY not in inert(text) and KEY[12:30] not in inert(text), text[:300]
        assert urllib.parse.quote(KEY, safe="")[12:40] not in text and json.dumps(KEY)[12:40] not in text


def test_calls_never_sent_count_no_retries(tmp_path):
    """A teacher down fails its other calls without sending them (0 tries): the report's retry
    column read -1 for each."""
    with serve_in_thread(behaviours={"h": raw(401, '{"error": {"message": "no"}}')}) as server:
        run(tmp_path, {"t": teacher(server.url, "h")}, lambda gateway: ask(gateway, "a", "b", "c"))
    store = Store(tmp_path / "run.sqlite")
    try:
        assert sorted(row[-1] for row in stored(tmp_path)) == [0, 0, 1]
        assert store.call_totals()["t"][:2] == (3, 0)
    finally:
        store.close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_stops_the_teacher_at_once_and_names_the_api_base_to_set(tmp_path, monkeypatch, status):
    """A chat endpoint that redirects means api_base is wrong (http for https, no /v1, a moved host):
    it was retried as a temporary error until the retries ran out, then read "HTTP 302: (empty body)".
    The Location is provider text: redacted (the key in its query) and inert (an escape in it)."""
    monkeypatch.setenv("FAIR_HOSTILE_KEY", KEY)
    moved = f"https://moved.example/v1/chat/completions?key={KEY}&\x1b]0;owned\x07"
    with serve_in_thread(behaviours={"h": raw(status, "", {"Location": moved})}) as server:
        backends = {"t": teacher(server.url, "h", api_key_env="FAIR_HOSTILE_KEY")}
        outcomes, events = run(tmp_path, backends, lambda gateway: ask(gateway, "a", "b", "c"))
        asked = server.requests
    first, *rest = sorted(map(str, outcomes))
    assert asked == 1 and not [e for e in events if isinstance(e, CallRetried)]  # no retry paid for it
    assert first.startswith(f"HTTP {status}: api_base {server.url} redirects to https://moved.example/v1/"), first
    assert first.endswith(": set api_base to https://moved.example/v1"), first
    assert REDACTED in first and KEY not in first and "\x1b" not in first and "\x07" not in first
    assert rest == [f"teacher t stopped: {first}"] * 2


@pytest.mark.parametrize("transport", ["http", "litellm"])
@pytest.mark.parametrize("wait", ["nan", "-5", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_a_retry_after_that_is_no_wait_leaves_the_backoff(tmp_path, transport, wait):
    """NaN won every max() against the backoff: the retry went at once, with a delay of NaN."""
    left = [RawReply(429, "{}", {"Retry-After": wait})]

    def behave(model: str, messages: list) -> str:
        if left:
            raise left.pop()
        return "The answer is 4."

    with serve_in_thread(behaviours={"h": behave}) as server:
        backend = teacher(server.url, "h", retry_base_s=0.01, options={"transport": transport})
        backend.check()
        result, events = run(tmp_path, {"t": backend}, lambda gateway: gateway.call(request("x")))
    (retried,) = [e for e in events if isinstance(e, CallRetried)]
    assert result.text == "The answer is 4." and 0.005 <= retried.delay_s <= 0.015, retried


@pytest.mark.slow
@pytest.mark.needs_data
def test_litellms_complaints_about_a_hostile_answer_print_no_key_and_no_traceback(tmp_path, paper_dir):
    """litellm's response models warned on stderr quoting the provider's value cut in the middle
    (the key's tail with it), and its message carried "Traceback (most recent call last)"."""
    key = "planted-" + "0123456789abcdef" * 2

    def parts(model: str, messages: list) -> str:
        content = [{"type": "text", "text": f"{BEHAVIOURS['solver'](model, messages)} {key}"}]
        raise RawReply(200, answer(content, {"prompt_tokens": "NaN", "completion_tokens": 3}))

    mistakes = paper_mistakes(paper_dir, tmp_path, 2)
    with serve_in_thread(behaviours={"parts": parts}) as server:
        teacher_settings = {"api_key_env": "FAIR_HOSTILE_KEY", "max_retries": 0, "options": {"transport": "litellm"}}
        config = committee_config(tmp_path, server.url, mistakes, models=("solver", "parts"), teacher=teacher_settings)
        out = fair("run", config, "--run-dir", tmp_path / "run", "--stages", "explain", env={"FAIR_HOSTILE_KEY": key})
        assert server.by_model["parts"]  # asked, and answered so
    assert out.returncode == 3, out.stderr[-2000:]
    said = " ".join(out.stderr.split())  # the console wraps its lines
    assert "call failed t1 explain" in said and "Invalid response object (gave up" in said, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "Pydantic" not in out.stderr, out.stderr[-2000:]
    assert key[-12:] not in out.stderr


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_a_blank_key_is_refused_before_any_call(monkeypatch, value):
    from fair_core.errors import FairError

    monkeypatch.setenv("FAIR_HOSTILE_KEY", value)
    with pytest.raises(FairError, match="environment variable FAIR_HOSTILE_KEY is not set"):
        teacher("http://127.0.0.1:9/v1", api_key_env="FAIR_HOSTILE_KEY").check()


def test_a_key_read_from_a_file_with_its_line_break_is_sent_without_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIR_HOSTILE_KEY", KEY + "\n")  # as `export KEY=$(cat key.txt)` keeps it
    with serve_in_thread(api_key=KEY) as server:
        backends = {"t": teacher(server.url, api_key_env="FAIR_HOSTILE_KEY")}
        result, _ = run(tmp_path, backends, lambda gateway: gateway.call(request("two plus two")))
    assert result.text == "two plus two"
