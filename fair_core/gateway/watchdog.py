"""A teacher backend's call under a deadline that a blocked event loop cannot dodge.

``asyncio.wait_for`` times a call out from the event loop, so a backend whose ``async def
complete`` makes a synchronous call (a blocking SDK, ``time.sleep``) holds the loop and its own
timeout never fires, nor does Ctrl-C, which asyncio only turns into a cancellation for the loop to
carry out. :func:`watched` runs the backend's coroutine one step at a time with the kernel's
interval timer armed at the call's deadline: a step still running then is interrupted by SIGALRM
and the call fails as blocked (:class:`Blocked`). While such a step runs, Ctrl-C and SIGTERM
stop it at once too: the interrupt is raised again from the loop, where asyncio.run ends the run
as it ends any interrupted one (the stage reads "interrupted", exit 130 or 143).

Signals reach only the main thread, so the watch is kept where the loop runs there (``fair run``);
in a worker thread (the UI runs the engine in one) the call is awaited as it is.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Any, Awaitable, Coroutine, Generator


class Blocked(Exception):
    """The backend held the event loop past its call's deadline."""


class _Expired(BaseException):
    """Raised by the SIGALRM handler inside the blocking step: a BaseException, so that a backend's
    own ``except Exception`` does not swallow it and go on blocking."""


class _Watch:
    """The signal handlers, installed while calls are watched, and the step now running."""

    def __init__(self) -> None:
        self.deadline: float | None = None  # of the step running now (monotonic), None between steps
        self.previous: dict[int, Any] = {}
        self.interrupted = False  # a step was stopped by Ctrl-C or SIGTERM: no other step runs

    def install(self) -> bool:
        if self.previous:
            return True
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
            return False
        self.previous = {
            signal.SIGALRM: signal.signal(signal.SIGALRM, self._on_alarm),
            signal.SIGINT: signal.signal(signal.SIGINT, self._on_interrupt),
        }
        return True

    def release(self) -> None:
        if self.previous and threading.current_thread() is threading.main_thread():
            signal.setitimer(signal.ITIMER_REAL, 0)
            for signum, handler in self.previous.items():
                signal.signal(signum, handler)
            self.previous, self.interrupted = {}, False

    def _on_alarm(self, signum, frame) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.deadline = None
            raise _Expired

    def _on_interrupt(self, signum, frame) -> None:
        if self.deadline is not None:  # a backend's synchronous code holds the loop: stop it here
            raise KeyboardInterrupt
        previous = self.previous.get(signal.SIGINT)
        if callable(previous):  # asyncio.run's: cancel the run for the loop to carry out
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    def step(self, coro: Coroutine, deadline: float, value: Any, error: BaseException | None) -> Any:
        """One step of ``coro`` with the timer armed at ``deadline`` (at least 50 ms on)."""
        self.deadline = deadline
        signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 0.05))
        try:
            return coro.send(value) if error is None else coro.throw(error)
        finally:
            self.deadline = None
            signal.setitimer(signal.ITIMER_REAL, 0)


_watch = _Watch()


def watched(coro: Coroutine, timeout_s: float) -> Awaitable:
    """``coro`` (a backend's ``complete(...)``) under a deadline ``timeout_s`` from now that holds
    even when it blocks the loop; as it is where signals cannot be used."""
    if not _watch.install():
        return coro
    return _Watched(coro, time.monotonic() + timeout_s, timeout_s)


def release() -> None:
    """Give the signal handlers back (the gateway closes)."""
    _watch.release()


class _Watched:
    def __init__(self, coro: Coroutine, deadline: float, timeout_s: float) -> None:
        self.coro, self.deadline, self.timeout_s = coro, deadline, timeout_s

    def __await__(self) -> Generator[Any, Any, Any]:
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                if _watch.interrupted:  # the run is stopping: no backend code runs before it has
                    raise asyncio.CancelledError
                try:
                    yielded = _watch.step(self.coro, self.deadline, value, error)
                except StopIteration as done:
                    return done.value
                except _Expired:
                    raise Blocked(
                        f"timeout after {self.timeout_s:g} s: the backend held the event loop (a synchronous "
                        f"call inside its async def complete?)"
                    ) from None
                except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM in the blocking step: stop this call,
                    _watch.interrupted = True
                    asyncio.get_running_loop().call_soon(_raise, e)  # and the run, as from the loop itself
                    raise asyncio.CancelledError from None
                try:
                    value, error = (yield yielded), None
                except GeneratorExit:
                    raise
                except BaseException as e:  # noqa: BLE001 - thrown into this call (a cancellation): the backend handles it
                    value, error = None, e
        finally:
            self.coro.close()


def _raise(error: BaseException) -> None:
    raise error
