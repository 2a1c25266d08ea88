"""A lean async client for OpenAI-compatible chat completions: the litellm teacher's fast path
(``options.transport``, see litellm_backend.py).

litellm and the openai SDK spend milliseconds of CPU per call, which caps a small machine at about a
hundred calls a second; this speaks just enough HTTP/1.1 over asyncio streams (http, or https through
an SSL context), keeps a keep-alive pool per client, and turns every failure into one typed error,
which the teacher maps onto the gateway's retry policy:

- ``HTTPError``: any non-2xx status, with ``retry_after`` (seconds) from ``retry-after-ms`` or ``Retry-After``,
  and a redirect's ``location`` (never followed: a chat endpoint that redirects is a wrong base URL);
- ``ConnectionLost``: the connection closed before the whole response arrived (``CannotConnect``: it
  could not be made at all);
- ``BadResponse``: a 2xx body that is not JSON or has no ``choices[0].message.content``, or a body
  over ``_BODY_LIMIT`` (a hostile or broken server must not fill the memory before the timeout);
- ``TimeoutError``: nothing complete within ``timeout`` seconds.

A connection goes back to the pool only after its response was read to the end; any other outcome
(an error, a timeout, a cancellation) closes it, so the pool never hands out a half-read stream.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from fair_core.gateway.backend import token_count
from fair_core.redact import redact

_HEAD_LIMIT = 1 << 20
_BODY_LIMIT = 32 << 20  # thousands of times a long answer


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    prompt_tokens: int = 0  # 0 when the server reports no usage
    completion_tokens: int = 0
    finish_reason: str | None = None
    raw: dict | None = field(default=None, repr=False, compare=False)


class TransportError(Exception):
    """Base of the errors below."""


class HTTPError(TransportError):
    def __init__(self, status: int, retry_after: float | None, message: str, location: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.retry_after = retry_after
        self.message = message
        self.location = location


class ConnectionLost(TransportError):
    pass


class BadResponse(TransportError):
    pass


class CannotConnect(ConnectionLost):
    """No connection could be opened: refused, no such host, no route."""


class _Stale(Exception):
    """A pooled connection the server had already closed: nothing was sent back, so resending is safe."""


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def usable(self) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing())

    def close(self) -> None:
        self.writer.transport.abort()  # no graceful TLS shutdown to wait for: the stream is done with


class ChatClient:
    """``POST {base_url}/chat/completions`` over at most ``max_connections`` keep-alive connections.
    One client serves one event loop; ``ssl_context`` replaces the system's trust for https."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        max_connections: int = 32,
        headers: dict[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"base_url must be an http:// or https:// URL, got {base_url!r}")
        self.base_url = base_url
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if url.scheme == "https" else None
        default_port = self._port == (443 if url.scheme == "https" else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        lines = [
            f"POST {url.path.rstrip('/')}/chat/completions HTTP/1.1",
            f"Host: {host if default_port else f'{host}:{self._port}'}",
            "User-Agent: fair-core",
            "Accept: application/json",
            "Accept-Encoding: identity",
            "Content-Type: application/json",
        ]
        if api_key:
            lines.append(f"Authorization: Bearer {api_key}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self._head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Conn] = []
        self._closed = False

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def complete(
        self, model: str, messages: list, params: dict | None = None, timeout: float | None = 60.0
    ) -> Completion:
        """One chat completion. ``params`` (temperature, max_tokens, ...) go into the body as they are;
        ``timeout`` bounds the exchange once a connection slot is free (None: no bound)."""
        if self._closed:
            raise RuntimeError("ChatClient is closed")
        payload = {**(params or {}), "model": model, "messages": messages}
        if payload.get("stream"):
            raise ValueError("ChatClient does not stream: leave out stream=True")
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        request = self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        async with self._slots:
            async with asyncio.timeout(timeout):
                status, headers, data = await self._exchange(request)
        return _parse(status, headers, data)

    async def aclose(self) -> None:
        """Close idle connections now; those in use close when their response is done."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    # one request/response on a pooled connection ---------------------------------------------------
    async def _exchange(self, request: bytes) -> tuple[int, dict, bytes]:
        while True:
            conn, reused = await self._checkout()
            try:
                conn.writer.write(request)
                await conn.writer.drain()
                status, headers, data, keep = await _read_response(conn.reader)
            except _Stale:
                conn.close()
                if reused:
                    continue
                raise ConnectionLost(f"{self._host}:{self._port} closed the connection without answering") from None
            except (ConnectionError, asyncio.IncompleteReadError, OSError) as e:
                conn.close()
                raise ConnectionLost(f"connection to {self._host}:{self._port} lost: {e!r}") from None
            except asyncio.LimitOverrunError:
                conn.close()
                raise BadResponse("response headers too long") from None
            except BaseException:  # timeout, cancellation, a garbled status line: never pool a half-read stream
                conn.close()
                raise
            if keep and not self._closed:
                self._idle.append(conn)
            else:
                conn.close()
            return status, headers, data

    async def _checkout(self) -> tuple[_Conn, bool]:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn, True
            conn.close()
        try:
            reader, writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._host if self._ssl else None,
                limit=_HEAD_LIMIT,
            )
        except OSError as e:
            raise CannotConnect(f"cannot connect to {self._host}:{self._port}: {e}") from None
        return _Conn(reader, writer), False


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict, bytes, bool]:
    """(status, lower-cased headers, body, keep-alive) of one response; 1xx interim answers skipped."""
    first = True
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionResetError) as e:
            if first and not getattr(e, "partial", b""):
                raise _Stale from None
            raise
        first = False
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise BadResponse(f"not an HTTP response: {lines[0][:80]!r}")
        status = int(parts[1])
        if not 100 <= status < 200:
            break
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep = connection == "keep-alive" if parts[0] == "HTTP/1.0" else connection != "close"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        data = await _read_chunked(reader)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
            if length < 0:
                raise ValueError
        except ValueError:
            raise BadResponse(f"bad Content-Length {headers['content-length']!r}") from None
        data = await reader.readexactly(_within_limit(length))
    else:  # the body runs to the end of the connection
        body, keep = bytearray(), False
        while chunk := await reader.read(1 << 16):
            _within_limit(len(body) + len(chunk))
            body += chunk
        data = bytes(body)
    return status, headers, data, keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    data = bytearray()
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0], 16)
        except ValueError:
            raise BadResponse(f"bad chunk size {line[:40]!r}") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return bytes(data)
        _within_limit(len(data) + size)
        data += await reader.readexactly(size)
        await reader.readexactly(2)


def _within_limit(size: int) -> int:
    """``size``, a body's length, once it is known to be one that fair reads."""
    if size > _BODY_LIMIT:
        raise BadResponse(f"response body over {_BODY_LIMIT >> 20} MiB")
    return size


def _parse(status: int, headers: dict, data: bytes) -> Completion:
    if not 200 <= status < 300:
        raise HTTPError(status, retry_after(headers), _message(data), headers.get("location"))
    try:
        obj = json.loads(data)
        choice = obj["choices"][0]
        text = choice["message"]["content"]
    except (ValueError, RecursionError):  # RecursionError: JSON nested past the stack
        raise BadResponse(f"response is not JSON: {_text(data, 120)!r}") from None
    except (KeyError, IndexError, TypeError):
        raise BadResponse(f"response has no choices[0].message.content: {_text(data, 200)!r}") from None
    if text is None:  # a refusal or a tool call: no text, as with an empty answer
        text = ""
    elif isinstance(text, list):  # content parts, as some servers send them: the text parts are the answer
        text = "".join(
            p["text"]
            for p in text
            if isinstance(p, dict) and p.get("type", "text") == "text" and isinstance(p.get("text"), str)
        )
    if not isinstance(text, str):
        raise BadResponse(f"message content is not a string: {_text(data, 200)!r}")
    usage = obj.get("usage") if isinstance(obj.get("usage"), dict) else {}
    reason = choice.get("finish_reason")
    return Completion(
        text,
        token_count(usage.get("prompt_tokens")),
        token_count(usage.get("completion_tokens")),
        reason if isinstance(reason, str) else None,
        obj,
    )


def retry_after(headers: dict) -> float | None:
    """Seconds to wait, from OpenAI's ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (ValueError, TypeError, OverflowError):
        return None


def _message(data: bytes) -> str:
    """The provider's error message (OpenAI's {"error": {"message": ...}}), else the body's start."""
    try:
        error = json.loads(data).get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if message:
            return str(message)
    except (ValueError, RecursionError, AttributeError):
        pass
    return _text(data, 300).strip() or "(empty body)"


def _text(data: bytes, n: int) -> str:
    """The first ``n`` characters of a body, redacted before the cut: a body may echo the key, and a
    cut through it would leave a part that no rule then knows."""
    return redact(data[: 1 << 16].decode("utf-8", "replace"))[:n]
