"""The gateway's own HTTP transport against the local server: results, typed errors, the pool."""

import asyncio
import shutil
import ssl
import subprocess
import time

import pytest

from fair_core.testing.server import BEHAVIOURS, serve_in_thread
from fair_teachers.http_client import BadResponse, ChatClient, Completion, ConnectionLost, HTTPError, retry_after


def user(text):
    return [{"role": "user", "content": text}]


def run(coro):
    return asyncio.run(coro)


async def call(url, *texts, model="echo", timeout=60.0, **kw):
    async with ChatClient(url, **kw) as client:
        return [await client.complete(model, user(t), {"temperature": 0}, timeout=timeout) for t in texts]


@pytest.mark.needs_data  # the solver reads SVAMP's equations
def test_completion_carries_text_usage_and_the_raw_body(server):
    question = (
        "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack "
        "How much do you have to pay to buy each pack?"
    )
    [c] = run(call(server.url, question, model="solver"))
    assert isinstance(c, Completion)
    assert c.text == BEHAVIOURS["solver"]("solver", user(question)) and c.text.endswith("The answer is 51.")
    assert c.prompt_tokens == len(question.split()) and c.completion_tokens == len(c.text.split())
    assert c.finish_reason == "stop" and c.raw["object"] == "chat.completion"


@pytest.mark.parametrize(
    "fault, error", [("500", HTTPError), ("malformed", BadResponse), ("drop", ConnectionLost), ("hang", TimeoutError)]
)
def test_each_fault_raises_its_error_and_the_pool_stays_sound(server, fault, error):
    async def scenario():
        async with ChatClient(server.url, max_connections=2) as client:
            await client.complete("echo", user("warm"), {}, timeout=60)
            server.faults = {fault: 1.0}
            with pytest.raises(error) as caught:  # only a hang waits out its timeout
                await client.complete("echo", user("hi"), {}, timeout=0.3 if fault == "hang" else 60)
            server.faults = {}
            after = await client.complete("echo", user("after"), {}, timeout=60)
            return caught.value, after, len(client._idle)

    exc, after, idle = run(scenario())
    assert after.text == "after" and idle == 1
    if fault == "500":
        assert exc.status == 500 and exc.retry_after is None and exc.message == "injected server error"
    # a complete response, however wrong, keeps its connection; a half-read or unread one is closed
    assert server.connections == (1 if fault in ("500", "malformed") else 2)
    assert server.answered.total() == 2


def test_empty_content_is_returned_for_the_caller_to_judge(server):
    server.faults = {"empty": 1.0}
    [c] = run(call(server.url, "hi"))
    assert c.text == "" and c.finish_reason == "stop"


def test_429_carries_retry_after(server):
    server.capacity = 0
    with pytest.raises(HTTPError) as caught:
        run(call(server.url, "hi"))
    assert caught.value.status == 429 and caught.value.retry_after == pytest.approx(0.05)


def test_permanent_errors_and_refused_connections():
    with serve_in_thread(api_key="k") as server:
        with pytest.raises(HTTPError) as caught:
            run(call(server.url, "hi"))
        assert caught.value.status == 401 and caught.value.message == "invalid api key"
        with pytest.raises(HTTPError) as caught:
            run(call(server.url, "hi", model="gpt-9", api_key="k"))
        assert caught.value.status == 404 and "gpt-9" in caught.value.message
        assert [c.text for c in run(call(server.url, "ok", api_key="k"))] == ["ok"]
        port = server.port
    with pytest.raises(ConnectionLost):
        run(call(f"http://127.0.0.1:{port}/v1", "hi"))
    with pytest.raises(ValueError):
        ChatClient("ftp://example.com")


def test_sequential_calls_reuse_one_connection(server):
    texts = [str(i) for i in range(30)]
    assert [c.text for c in run(call(server.url, *texts))] == texts
    assert server.connections == 1


def test_100_concurrent_calls_stay_within_max_connections(server):
    server.latency = 0.05

    async def burst():
        async with ChatClient(server.url, max_connections=8) as client:
            return await asyncio.gather(*[client.complete("echo", user(str(i)), {}, timeout=60) for i in range(100)])

    results = run(burst())
    assert [c.text for c in results] == [str(i) for i in range(100)]
    # eight at a time, though a busy machine may not have all eight in the server at one instant
    assert server.connections == 8 and 1 < server.peak_in_flight <= 8


def test_cancelled_call_closes_its_connection(server):
    server.latency = 0.4

    async def scenario():
        async with ChatClient(server.url) as client:
            task = asyncio.create_task(client.complete("echo", user("slow"), {}, timeout=60))
            while not server.in_flight:  # cancelled once the server has it, before its answer
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return len(client._idle)

    assert run(scenario()) == 0
    deadline = time.time() + 600  # only a hung request waits this long
    while server.in_flight and time.time() < deadline:
        time.sleep(0.02)
    assert server.in_flight == 0


async def _one_shot_server(responses):
    """A raw server that answers each connection's first request with the next canned response, then
    hangs up: a keep-alive connection the server closes while it sits in the client's pool."""
    queue = list(responses)

    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(queue.pop(0))
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _chunked(body: bytes) -> bytes:
    half = len(body) // 2
    return (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n%x;ext=1\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n"
        % (half, body[:half], len(body) - half, body[half:])
    )


def test_stale_pooled_connection_is_replaced_and_chunked_bodies_read():
    body = b'{"choices":[{"message":{"content":"%s"},"finish_reason":"stop"}]}'

    async def scenario():
        server = await _one_shot_server([_chunked(body % b"one"), _chunked(body % b"two")])
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        try:
            async with ChatClient(url) as client:
                first = await client.complete("m", user("a"), {}, timeout=60)
                while not client._idle[0].reader.at_eof():  # the server has closed the pooled connection
                    await asyncio.sleep(0.01)
                second = await client.complete("m", user("b"), {}, timeout=60)
        finally:
            server.close()
            await server.wait_closed()
        return first, second

    first, second = run(scenario())
    assert (first.text, second.text) == ("one", "two")
    assert first.prompt_tokens == 0  # no usage reported


def test_a_fresh_connection_closed_without_an_answer_is_lost():
    async def scenario():
        server = await _one_shot_server([b""])
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        try:
            await call(url, "a")
        finally:
            server.close()
            await server.wait_closed()

    with pytest.raises(ConnectionLost):
        run(scenario())


def test_retry_after_forms():
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_https(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    with serve_in_thread(ssl=server_ctx) as server:
        assert server.url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(cert))
        assert [c.text for c in run(call(server.url, "a", "b", ssl_context=trust))] == ["a", "b"]
        assert server.connections == 1
        with pytest.raises(ConnectionLost):  # the system does not trust a self-signed certificate
            run(call(server.url, "a"))
