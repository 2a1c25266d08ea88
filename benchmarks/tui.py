"""How fast the terminal UI paints, how far it lags an engine that sends 500 events a second, and
whether its event log loses a line while the pipeline screen is hidden.

first paint: a fresh ``python`` process opens a run directory in the UI (headless, 100x30); the
time from just before the process is spawned to the first frame of the pipeline screen, with the
run's state drawn. Interpreter start, imports and plugin loading are included. Median of 3.

latency: the UI on that run while a thread sends synthetic engine events the way a real run does:
published on the run directory's own bus (so the JSONL log and the store take them too), which
hands each to the session's ``receive``, as ``api.run``'s ``on_event`` does. They are calls of
three teachers: CallStarted, CallDone, StageProgress, with a retry and a failure now and then.
Every event is timed from its arrival (``receive``, on the engine's thread) to the end of the first
refresh of the pipeline screen after the UI drained it: lone events (the floor: one drain and one
refresh), 500 a second for 5 s, and a burst of 5,000 sent as fast as the thread can. Also the
lag of a 10 ms UI timer at 500 a second (how late the event loop runs it).

lost: then the runs screen is shown, events arrive while it is, and the pipeline screen is shown
again; its log must hold a line for every event that calls for one, from all the phases.

    python benchmarks/tui.py                  # 5 s at 500 events/s, a burst of 5,000
    python benchmarks/tui.py --rate 2000 --seconds 3 --burst 20000

The last line is ``RESULT first_paint_s=<s> p95_latency_ms=<ms at the rate> lost=<lines>``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from textual.content import Content
from textual.widgets import RichLog, Static

from fair_core import config as cfg
from fair_core.runs.events import (
    CallDone,
    CallFailed,
    CallRetried,
    CallStarted,
    Event,
    StageFinished,
    StageProgress,
    StageStarted,
)
from fair_core.runs.rundir import Run
from fair_tui.app import FairApp
from fair_tui.session import Session, describe

SIZE = (100, 30)
TEACHERS = ("gpt", "gemini", "mistral")
TARGET_MS = 100.0
STALL_S = 20.0  # waiting for events to be timed, or log lines shown, we give up when none came for this long

Publish = Callable[[Event], None]


def make_run(root: Path) -> Path:
    config = cfg.validate(
        {
            "stages": ["explain", "solve", "review"],
            "teachers": [{"name": t, "backend": "replay", "model": t} for t in TEACHERS],
        }
    )
    path = root / "bench"
    Run(path, config).close()
    return path


def first_paint_child(run_dir: str) -> None:
    """Runs in the child: open the run, report seconds since FAIR_BENCH_T0 at the first frame."""
    from fair_core.host import get_host

    get_host()  # `fair tui` loads the plugins before the app starts

    class Timed(FairApp):
        def on_ready(self) -> None:
            self.set_interval(0.002, self._check)

        def _check(self) -> None:
            if getattr(self.screen, "NAME", "") == "pipeline" and self.screen.ready:
                self.call_after_refresh(lambda: self.exit(time.time() - float(os.environ["FAIR_BENCH_T0"])))

    print(f"{Timed(run_dir).run(headless=True, size=SIZE):.4f}")


def first_paint(run_dir: Path, tries: int = 3) -> float:
    times = []
    for _ in range(tries):
        env = {**os.environ, "FAIR_BENCH_T0": repr(time.time())}
        out = subprocess.run(
            [sys.executable, __file__, "--first-paint-child", str(run_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise SystemExit(f"first-paint child failed: {out.stderr.strip()[-2000:]}")
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


# the UI, timed ------------------------------------------------------------------------------------
class TimedSession(Session):
    """The UI's session, stamping each event as it arrives; a drain leaves the stamps of the events
    it took in :attr:`drained`."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.arrived: deque[float] = deque()
        self.drained: list[float] = []

    def receive(self, event: Event) -> None:
        self.arrived.append(time.perf_counter())  # before the event is buffered: its drain finds the stamp
        super().receive(event)

    def drain(self) -> list[Event]:
        events = super().drain()
        self.drained = [self.arrived.popleft() for _ in events]
        return events


class TimedApp(FairApp):
    """The app on a :class:`TimedSession`: each event drained while the pipeline screen is on show
    is timed to the end of the screen's next refresh, which draws it."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.delays: list[float] = []
        self.waits: list[float] = []  # of each delay, the time the event waited in the buffer for its drain
        self.untimed = 0  # events drained while another screen was on show

    def open_run(self, path: Path, session: Session | None = None) -> bool:
        return super().open_run(path, session or TimedSession(path))

    def drain(self) -> list:
        start = time.perf_counter()
        events = super().drain()
        if events:
            assert isinstance(self.session, TimedSession)
            stamps = self.session.drained
            if getattr(self.screen, "NAME", "") == "pipeline":
                self.waits.extend(start - t for t in stamps)
                self.call_after_refresh(lambda: self.delays.extend(time.perf_counter() - t for t in stamps))
            else:
                self.untimed += len(events)
        return events


# the engine's side --------------------------------------------------------------------------------
@dataclass
class Phase:
    sent: int = 0  # events the engine thread sent
    lines: int = 0  # of them, those the event log writes a line for
    delays: list[float] = field(default_factory=list)  # seconds from arrival to on screen, one per timed event
    waits: list[float] = field(default_factory=list)  # of each delay, the time until its drain began
    untimed: int = 0  # drained while the pipeline screen was hidden
    seconds: float = 0.0  # how long the engine thread took to send them

    def count(self, event: Event) -> None:
        self.sent += 1
        self.lines += describe(event) is not None


def calls(publish: Publish, phase: Phase, stage: str, n: int, rate: float | None) -> None:
    """Send the events of ``n`` teacher calls of ``stage`` at ``rate`` events a second (None: as
    fast as the thread can), between the stage's start and finish."""

    def send(event: Event) -> None:
        publish(event)
        phase.count(event)

    send(StageStarted(stage, 0, n))
    start = time.perf_counter()
    for call in range(n):
        if rate is not None:
            due = start + phase.sent / rate
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
        teacher, item = TEACHERS[call % 3], str(call // 3)
        send(CallStarted(teacher, stage, item))
        if call % 97 == 5:
            send(CallRetried(teacher, stage, item, 1, "HTTP 429: slow down", 0.5))
        elif call % 211 == 7:
            send(CallFailed(teacher, stage, item, "HTTP 400: bad request"))
        else:
            send(CallDone(teacher, stage, item, 120, 80, 0.0004, 1.2))
        send(StageProgress(stage, 0, call + 1, n))
    send(StageFinished(stage, 0, {"calls": n}))


def lone(publish: Publish, phase: Phase, n: int, gap_s: float = 0.1) -> None:
    """``n`` events one at a time, each after the UI has long drawn the one before."""
    for i in range(n):
        time.sleep(gap_s)
        event = StageProgress("explain", 0, i, n)
        publish(event)
        phase.count(event)


async def reach(pilot, count: Callable[[], int], target: int) -> None:
    """Wait until ``count()`` reaches ``target``, or has not moved for STALL_S (the rest never come)."""
    seen, since = -1, time.monotonic()
    while (now := count()) < target:
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since > STALL_S:
            return
        await pilot.pause(0.02)


async def run_phase(pilot, app: TimedApp, engine: Run, work: Callable[[Publish, Phase], None]) -> Phase:
    """Run ``work`` on a thread of its own, publishing on ``engine``'s bus, and wait until every
    event it sent has been drained and, where the pipeline was on show, timed on screen."""
    phase = Phase()
    timed, waited, untimed = len(app.delays), len(app.waits), app.untimed
    start = time.perf_counter()

    def body() -> None:
        work(engine.publish, phase)
        phase.seconds = time.perf_counter() - start

    thread = threading.Thread(target=body, name="engine", daemon=True)
    thread.start()
    while thread.is_alive():
        await pilot.pause(0.1)
    await reach(pilot, lambda: len(app.delays) - timed + app.untimed - untimed, phase.sent)
    phase.delays, phase.waits, phase.untimed = app.delays[timed:], app.waits[waited:], app.untimed - untimed
    return phase


async def measure(run_dir: Path, rate: float, seconds: float, burst: int, hidden: int = 1500, alone: int = 10) -> dict:
    """The phases, in one UI on ``run_dir``: ``alone`` lone events, ``rate`` events a second for
    ``seconds``, a burst of ``burst`` events, then ``hidden`` events sent while the runs
    screen is on show; and what the pipeline screen shows after it is shown again."""
    app = TimedApp(str(run_dir))
    lags: list[float] = []
    async with app.run_test(size=SIZE) as pilot:
        while not (getattr(app.screen, "NAME", "") == "pipeline" and app.screen.ready):
            await pilot.pause(0.05)
        await pilot.pause(0.3)
        log = app.screen.query_one("#log", RichLog)
        before = len(log.lines)  # what the store says was done before: none in a fresh run
        engine = Run(run_dir)  # as api.run opens it: its JSONL log and store take every event
        assert app.session is not None
        engine.bus.subscribe(app.session.receive)  # api.run's on_event
        try:
            floor = await run_phase(pilot, app, engine, partial(lone, n=alone))

            last = [time.perf_counter()]

            def tick() -> None:
                now = time.perf_counter()
                lags.append(max(0.0, now - last[0] - 0.01))
                last[0] = now

            timer = app.set_interval(0.01, tick)
            steady = await run_phase(
                pilot, app, engine, partial(calls, stage="explain", n=int(rate * seconds / 3), rate=rate)
            )
            timer.stop()
            flood = await run_phase(pilot, app, engine, partial(calls, stage="solve", n=burst // 3, rate=None))
            await pilot.press("1")
            away = await run_phase(pilot, app, engine, partial(calls, stage="review", n=hidden // 3, rate=None))
            await pilot.press("3")
            expected = before + sum(p.lines for p in (floor, steady, flood, away))
            await reach(pilot, lambda: len(log.lines) if app.screen is log.screen else 0, expected)
        finally:
            engine.close()
        shown = len(log.lines)
        counters = Content.from_markup(log.screen.query_one("#counters", Static).content).plain
    return {
        "floor": floor,
        "steady": steady,
        "burst": flood,
        "hidden": away,
        "lags": lags,
        "log_lines": shown,
        "log_expected": expected,
        "lost": expected - shown,
        "counters": counters,
    }


# the report -------------------------------------------------------------------------------------
def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) >= 20 else max(xs)


def spread(xs: list[float]) -> str:
    """Median / p95 / max, in ms."""
    return f"{statistics.median(xs) * 1e3:.1f} / {p95(xs) * 1e3:.1f} / {max(xs) * 1e3:.1f} ms"


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--first-paint-child":
        first_paint_child(sys.argv[2])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=500.0, help="events per second")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--burst", type=int, default=5000, help="events sent at once")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = make_run(Path(tmp))
        paint = first_paint(run_dir)
        print(
            f"first paint (new process, pipeline screen of a run, {SIZE[0]}x{SIZE[1]}): {paint:.3f} s (target < 1.5 s)"
        )
        r = asyncio.run(measure(run_dir, a.rate, a.seconds, a.burst))
    for name, what in (
        ("floor", "lone events, 0.1 s apart"),
        ("steady", f"{a.rate:g} events/s for {a.seconds:g} s"),
        ("burst", f"a burst of {a.burst}"),
    ):
        ph = r[name]
        print(
            f"{what}: {ph.sent} events sent in {ph.seconds:.2f} s from the engine's thread, "
            f"{len(ph.delays)} timed on screen"
        )
        if len(ph.delays) < ph.sent:
            raise SystemExit(f"{ph.sent - len(ph.delays)} of {ph.sent} events never reached the pipeline screen")
        print(f"  arrival -> on screen: median / p95 / max {spread(ph.delays)}")
        print(f"  of which in the buffer until the UI drains it: {spread(ph.waits)}")
    steady, floor = r["steady"], r["floor"]
    print(
        f"p95 at {a.rate:g} events/s: {p95(steady.delays) * 1e3:.1f} ms against the target {TARGET_MS:g} ms "
        f"(lone events: {p95(floor.delays) * 1e3:.1f} ms)"
    )
    print(f"UI timer lag (10 ms timer) at {a.rate:g} events/s: median / p95 / max {spread(r['lags'])}")
    print(
        f"event log after {r['hidden'].sent} events with the runs screen on show, then the pipeline again: "
        f"{r['log_lines']} lines of {r['log_expected']}"
    )
    print(f"counters on screen at the end: {r['counters']}")
    print(f"RESULT first_paint_s={paint:.3f} p95_latency_ms={p95(steady.delays) * 1e3:.1f} lost={r['lost']}")


if __name__ == "__main__":
    main()
