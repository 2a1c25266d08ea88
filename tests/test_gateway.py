"""The gateway's retries, budget, circuit breaker, health and rate limits, against the real local
HTTP server with its data-free teachers (``echo`` and scripted errors): no data, each test quick.
test_committee.py drives the same logic through whole committee runs on the paper's data."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fair_core import config as cfg
from fair_core.gateway.backend import Backend, Request
from fair_core.gateway.gateway import GIVE_UP_AFTER, PROBE_AFTER, REFUSED_IN_A_ROW, CallFailure, Gateway
from fair_core.gateway.limits import Limits
from fair_core.host import get_host
from fair_core.runs.events import BudgetReached, CallDone, CallFailed, CallRetried, CallStarted, Message
from fair_core.runs.store import Store
from fair_core.testing.server import ErrorReply, echo, fingerprint, serve_in_thread


def teacher(url: str, model: str = "echo", name: str = "t", **settings) -> Backend:
    """The litellm teacher (its lean HTTP transport) on ``url``, retrying after a millisecond."""
    data = {
        "name": name,
        "model": f"openai/{model}",
        "api_base": url,
        "timeout_s": 30,
        "max_retries": 3,
        "retry_base_s": 0.001,
        "concurrency": 1,
        **settings,
    }
    return get_host().get("teachers", "litellm")(cfg.validate({"teachers": [data]}).teachers[0])


def request(text: str, teacher: str = "t", item: str = "0") -> Request:
    return Request(teacher, "solve", item, ({"role": "user", "content": text},))


def run(tmp_path, backends: dict[str, Backend], work, budget: float | None = None, watch=None):
    """``work(gateway)`` on a gateway over a fresh store; returns its result and the events published
    (``watch(gateway, event)`` sees each event as it is published)."""
    events: list = []

    async def main():
        gateway: Gateway | None = None

        def publish(event) -> None:
            events.append(event)
            if watch is not None and gateway is not None:
                watch(gateway, event)

        gateway = Gateway(Store(tmp_path / "run.sqlite"), publish, backends, budget)
        try:
            return await work(gateway)
        finally:
            await gateway.aclose()

    return asyncio.run(main()), events


async def ask(gateway: Gateway, *texts: str, teacher: str = "t") -> list:
    """Each text asked at once, as its own item: the answer's text, or the exception it ended with."""
    calls = [gateway.call(request(text, teacher, str(i))) for i, text in enumerate(texts)]
    return [getattr(a, "text", a) for a in await asyncio.gather(*calls, return_exceptions=True)]


def scripted(*statuses: int):
    """A server behaviour that answers its requests in turn with these HTTP statuses, then echoes."""
    left = list(statuses)

    def behave(model: str, messages: list) -> str:
        status = left.pop(0) if left else 200
        if status != 200:
            raise ErrorReply(status, f"scripted {status}")
        return echo(model, messages)

    return behave


def calls(tmp_path) -> list[tuple]:
    db = sqlite3.connect(tmp_path / "run.sqlite")
    return list(db.execute("SELECT item_id, response, attempts, error, cost_usd FROM calls ORDER BY item_id"))


def test_a_500_then_a_429_then_an_answer(tmp_path):
    """Each try that fails for a reason worth retrying is retried after a backoff, and the answer is
    stored once with the tries it took; asked again, it comes from the store, not the server."""
    with serve_in_thread(behaviours={"flaky": scripted(500, 429)}) as server:
        backends = {"t": teacher(server.url, "flaky")}

        async def work(gateway):
            return await gateway.call(request("two plus two")), await gateway.call(request("two plus two"))

        (answer, cached), events = run(tmp_path, backends, work)
        first, again = answer.text, cached.text
        received = server.received[fingerprint("flaky", [{"role": "user", "content": "two plus two"}])]
    assert first == again == "two plus two"
    assert received == 3  # the 500, the 429 and the answer: the second ask never reached the server
    retried = [e for e in events if isinstance(e, CallRetried)]
    assert [e.attempt for e in retried] == [1, 2]
    assert "HTTP 500" in retried[0].reason and "HTTP 429" in retried[1].reason
    done = [e for e in events if isinstance(e, CallDone)]
    assert [e.cached for e in done] == [False, True]
    assert calls(tmp_path) == [("0", "two plus two", 3, None, None)]
    # the answer carries the key its records are stored under, and what it used; the cached one used nothing
    assert answer.key == cached.key and not answer.cached and cached.cached
    assert answer.completion_tokens and cached.completion_tokens is None


def test_retries_back_off_and_stop_at_max_retries_and_the_failure_is_stored(tmp_path):
    with serve_in_thread(faults={"500": 1.0}) as server:
        backends = {"t": teacher(server.url, max_retries=3)}
        (outcome,), events = run(tmp_path, backends, lambda gateway: ask(gateway, "hello"))
        sent = server.requests
    assert isinstance(outcome, CallFailure)
    assert str(outcome) == "HTTP 500: injected server error (gave up after 4 tries)"
    assert sent == 4  # the first try and max_retries more, no further
    delays = [e.delay_s for e in events if isinstance(e, CallRetried)]
    # retry_base_s (1 ms) doubled at each retry, jittered by x0.5 to x1.5
    assert len(delays) == 3 and all(0.5 * 2**n <= d * 1000 <= 1.5 * 2**n for n, d in enumerate(delays))
    assert [e.reason for e in events if isinstance(e, CallFailed)] == [str(outcome)]
    assert calls(tmp_path) == [("0", None, 4, str(outcome), None)]


def test_retry_after_is_waited_and_a_long_one_fails_at_once(tmp_path):
    """A 429's Retry-After is waited at least, however short the backoff; one of an hour fails the
    call at once, saying to rerun later, instead of holding the run."""
    with serve_in_thread(capacity=0, retry_after=0.05) as server:
        backends = {"t": teacher(server.url, max_retries=2)}
        (tmp_path / "short").mkdir()
        (outcome,), events = run(tmp_path / "short", backends, lambda gateway: ask(gateway, "hello"))
        sent = server.rejected
    assert isinstance(outcome, CallFailure) and "gave up after 3 tries" in str(outcome) and sent == 3
    assert [e.delay_s >= 0.05 for e in events if isinstance(e, CallRetried)] == [True, True]

    with serve_in_thread(capacity=0, retry_after=3600) as server:
        backends = {"t": teacher(server.url, max_retries=5)}
        (tmp_path / "long").mkdir()
        (outcome,), events = run(tmp_path / "long", backends, lambda gateway: ask(gateway, "hello"))
        sent = server.rejected
    assert sent == 1 and not [e for e in events if isinstance(e, CallRetried)]
    assert isinstance(outcome, CallFailure) and "asks to wait 3600 s: rerun later" in str(outcome)


def test_a_hung_answer_times_out_and_is_retried(tmp_path):
    with serve_in_thread(faults={"hang": 1.0}) as server:
        backends = {"t": teacher(server.url, timeout_s=0.2, max_retries=1)}
        (outcome,), events = run(tmp_path, backends, lambda gateway: ask(gateway, "hello"))
        hung = server.faulted["hang"]
    assert isinstance(outcome, CallFailure) and str(outcome) == "timeout after 0.2 s (gave up after 2 tries)"
    assert hung == 2


def test_identical_requests_in_flight_are_sent_once(tmp_path):
    with serve_in_thread(latency=0.05) as server:
        backends = {"t": teacher(server.url, concurrency=4)}
        answers, events = run(tmp_path, backends, lambda gateway: ask(gateway, "same", "same", "same"))
        sent = server.requests
    assert answers == ["same"] * 3 and sent == 1
    assert sorted(e.cached for e in events if isinstance(e, CallDone)) == [False, True, True]


def test_the_budget_stops_new_calls_and_is_never_overspent_with_calls_in_flight(tmp_path):
    """$1 per million tokens: a call's worst case (its 29 characters as 9 + 16 tokens, and all 20 of
    max_tokens) is 45 tokens and it costs 20 (echo: ten words in, ten out). With a budget of 200
    tokens' worth and four calls at a time, what is spent and what the calls in flight reserve
    never pass the budget; calls stop only when the next worst case no longer fits, and no call is
    sent that is then not paid for."""
    price = {"input": 1.0, "output": 1.0}
    budget, worst = 200e-6, (29 // 3 + 16 + 20) * 1e-6
    words = [" ".join([chr(ord("a") + i) * 2] * 10) for i in range(20)]  # 10 words, 29 characters each
    held: list[float] = []

    def watch(gateway: Gateway, event) -> None:
        if isinstance(event, CallStarted):
            held.append(gateway.spent + gateway.reserved)

    with serve_in_thread(latency=0.02) as server:
        backends = {"t": teacher(server.url, concurrency=4, price=price, params={"max_tokens": 20})}
        outcomes, events = run(tmp_path, backends, lambda gateway: ask(gateway, *words), budget=budget, watch=watch)
        sent = server.requests
    answered = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if isinstance(o, CallFailure)]
    assert len(answered) + len(refused) == 20 and answered and refused
    assert {str(o) for o in refused} == {"budget of $0.0002 reached"}
    assert max(held) <= budget  # spent and reserved, at every call's start
    assert max(held) > 1.5 * worst  # more than one call was in flight at once
    spent = sum(cost for *_, cost in calls(tmp_path) if cost)
    assert spent == pytest.approx(20e-6 * len(answered))
    assert spent <= budget < spent + worst  # stopped when the next worst case did not fit, not before
    assert sent == len(answered)  # no request sent that the budget then refused
    assert len([e for e in events if isinstance(e, BudgetReached)]) == 1


def test_an_unreachable_teacher_is_probed_then_given_up_with_one_line(tmp_path):
    """Connection refused: after PROBE_AFTER in a row its calls go one at a time, after GIVE_UP_AFTER
    the teacher is stopped; every call fails with one line that says so, and the tries stay few."""
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backends = {"bad": teacher(f"http://127.0.0.1:{port}/v1", name="bad", concurrency=4, max_retries=20)}
    probes: list[bool] = []  # for each try started after PROBE_AFTER in a row: whether it held the probe

    def watch(gateway: Gateway, event) -> None:
        health = gateway.health["bad"]
        if isinstance(event, CallStarted) and health.unreachable >= PROBE_AFTER:
            probes.append(health.probe.locked())

    outcomes, events = run(
        tmp_path, backends, lambda gateway: ask(gateway, *map(str, range(10)), teacher="bad"), watch=watch
    )
    assert all(isinstance(o, CallFailure) for o in outcomes)
    reasons = {str(o) for o in outcomes}
    assert len(reasons) == 1
    (reason,) = reasons
    assert reason.startswith("teacher bad stopped: cannot connect") and "\n" not in reason
    assert reason.endswith(f"({GIVE_UP_AFTER} tries in a row)")
    tries = sum(isinstance(e, CallStarted) for e in events)
    assert GIVE_UP_AFTER <= tries <= GIVE_UP_AFTER + 4  # at most a wave of 4 beyond the limit, not 10 x 21
    assert probes and all(probes)  # one at a time once probing
    warnings = [e.text for e in events if isinstance(e, Message) and e.level == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith(reason) and "fix it and rerun" in warnings[0]


def test_a_teacher_that_cannot_answer_is_stopped_at_its_first_answer(tmp_path):
    """A wrong key (401): the teacher is down after one request; its other calls are never sent,
    and another teacher goes on."""
    with serve_in_thread(api_key="right") as server:
        backends = {
            "bad": teacher(server.url, name="bad", api_key_env="FAIR_TEST_BAD_KEY"),
            "good": teacher(server.url, name="good", api_key_env="FAIR_TEST_GOOD_KEY"),
        }

        async def work(gateway):
            return await ask(gateway, "a", "b", "c", teacher="bad"), await ask(gateway, "a", "b", teacher="good")

        with pytest.MonkeyPatch.context() as env:
            env.setenv("FAIR_TEST_BAD_KEY", "wrong")
            env.setenv("FAIR_TEST_GOOD_KEY", "right")
            (bad, good), events = run(tmp_path, backends, work)
        rejected = server.requests - len(good)
    assert good == ["a", "b"] and rejected == 1
    first, *rest = sorted(map(str, bad))  # the request sent, then those that were not
    assert first.startswith("HTTP 401: invalid api key") and "check the API key in $FAIR_TEST_BAD_KEY" in first
    assert rest == [f"teacher bad stopped: {first}"] * 2


def test_refusals_in_a_row_stop_a_teacher_and_an_answer_between_resets_them(tmp_path):
    """A refused request (HTTP 400) fails its call at once; REFUSED_IN_A_ROW of them with no answer
    between stop the teacher, while refusals broken up by answers never do."""
    broken_up = [400] * (REFUSED_IN_A_ROW - 1) + [200] + [400] * (REFUSED_IN_A_ROW - 1) + [200]
    with serve_in_thread(behaviours={"mixed": scripted(*broken_up), "refuse": scripted(*[400] * 10)}) as server:
        backends = {"mixed": teacher(server.url, "mixed", "mixed"), "refuse": teacher(server.url, "refuse", "refuse")}

        async def work(gateway):
            mixed = [await ask(gateway, f"m{i}", teacher="mixed") for i in range(len(broken_up))]
            refused = [await ask(gateway, f"r{i}", teacher="refuse") for i in range(REFUSED_IN_A_ROW + 2)]
            return [o for (o,) in mixed], [o for (o,) in refused], gateway.stopped()

        (mixed, refused, stopped), _ = run(tmp_path, backends, work)
        by_model = dict(server.by_model)
    assert [isinstance(o, str) for o in mixed] == [status == 200 for status in broken_up]
    assert all(str(o).startswith("HTTP 400: scripted 400") for o in mixed if not isinstance(o, str))
    assert by_model == {"mixed": len(broken_up), "refuse": REFUSED_IN_A_ROW}  # none retried, none sent once stopped
    assert len(stopped) == 1 and stopped[0].startswith("teacher refuse stopped: HTTP 400")
    assert all(str(o) == stopped[0] for o in refused[REFUSED_IN_A_ROW:])


def test_concurrency_caps_the_calls_in_flight(tmp_path):
    with serve_in_thread(latency=0.02) as server:
        backends = {"t": teacher(server.url, concurrency=2)}
        answers, _ = run(tmp_path, backends, lambda gateway: ask(gateway, *map(str, range(8))))
        peak = server.peak_in_flight
    assert answers == list(map(str, range(8))) and 1 <= peak <= 2


def test_a_token_bucket_holds_back_what_it_cannot_afford():
    """tpm = 6000 is 100 tokens a second: a full bucket admits at once, an empty one makes the next
    10 tokens wait a tenth of a second at least; a request above the bucket's size is clamped to it
    rather than waiting forever."""

    async def work() -> float:
        limits = Limits(1, rpm=None, tpm=6000)
        start = time.monotonic()
        await limits.admit(10**9)  # more than the bucket holds: clamped, and it is full
        await limits.admit(10)
        return time.monotonic() - start

    assert asyncio.run(work()) >= 0.099  # a floor only: a busy machine waits longer, never less


def test_a_backend_that_cannot_prepare_is_stopped_and_the_others_go_on(tmp_path):
    class Unprepared(Backend):
        def prepare(self) -> None:
            raise ImportError("no module named 'sdk'")

        async def complete(self, request: Request):
            raise AssertionError("never called")

    with serve_in_thread() as server:
        good = teacher(server.url, name="good")
        backends = {"bad": Unprepared(good.config.model_copy(update={"name": "bad"})), "good": good}

        async def work(gateway):
            return await ask(gateway, "a", teacher="bad"), await ask(gateway, "a", teacher="good")

        (bad, good_answers), events = run(tmp_path, backends, work)
    reason = "teacher bad stopped: ImportError: no module named 'sdk'"
    assert good_answers == ["a"] and [str(o) for o in bad] == [reason]
    assert [e.text for e in events if isinstance(e, Message)][0].startswith(reason)


# litellm's first import in a fresh interpreter, noting whether a call's timer was armed then
# (the watchdog's SIGALRM handler installed), and a call through a gateway built from Python
LITELLM_IMPORT = """
import signal, sys, tempfile
from pathlib import Path
from fair_core.gateway import watchdog
from test_gateway import request, run, teacher
from fair_core.testing.server import serve_in_thread

timed = []
def audit(event, args):
    if event == "import" and args[0] == "litellm":
        timed.append(signal.getsignal(signal.SIGALRM) == watchdog._watch._on_alarm)
sys.addaudithook(audit)
with serve_in_thread() as server, tempfile.TemporaryDirectory() as folder:
    backend = teacher(server.url, options={"transport": "litellm"}, max_retries=0)
    answer, _ = run(Path(folder), {"t": backend}, lambda gateway: gateway.call(request("two plus two")))
print(timed, answer.text)
"""


@pytest.mark.slow  # a fresh interpreter imports litellm: seconds
def test_litellm_is_imported_when_the_gateway_starts_not_under_a_calls_timeout():
    """A gateway driven from Python, without the check() `fair run` makes first, imported litellm
    (seconds) inside its first call, under that call's timeout: a short timeout_s cut the import in
    the middle and left litellm half-imported for every later call. It is imported before any call
    is timed now, so no timeout can cut it."""
    tests = Path(__file__).parent
    out = subprocess.run([sys.executable, "-c", LITELLM_IMPORT], capture_output=True, text=True, cwd=tests)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["[False]", "two", "plus", "two"], out.stdout
