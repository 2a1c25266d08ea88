"""How fast the terminal UI paints, and how far it lags an engine that publishes 500 events a second.

first paint: a fresh ``python`` process opens a run directory in the UI (headless, 100x30); the
time from just before the process is spawned to the first frame of the pipeline screen, with the
run's state drawn. Interpreter start, imports and plugin loading are included. Median of 3.

latency: the UI on that run while a thread publishes synthetic engine events through the run's
own bus (so the JSONL log and the store take them too, as in a real run) at 500 a second, as calls
of three teachers: CallStarted, CallDone, StageProgress, with a retry and a failure now and then.
For every event, the time from its publish to the end of the first screen refresh after the UI
drained it; also the lag of a 10 ms UI timer (how late the event loop runs it).

    python benchmarks/tui.py                  # 5 s at 500 events/s
    python benchmarks/tui.py --rate 2000 --seconds 3

The last line is ``RESULT first_paint_s=<s> p95_latency_ms=<ms>``.
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
from pathlib import Path

from textual.content import Content

from fair_core import config as cfg
from fair_core.events import CallDone, CallFailed, CallRetried, CallStarted, StageProgress, StageStarted
from fair_core.rundir import Run

SIZE = (100, 30)
TEACHERS = ("gpt", "gemini", "mistral")


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
    from fair_tui.app import FairApp

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


def feed(publish, rate: float, seconds: float) -> int:
    """Publish engine-like events at ``rate`` per second; returns how many were published."""
    sent = 0

    def pub(event) -> None:
        nonlocal sent
        publish(event)
        sent += 1

    total = int(rate * seconds / 3)
    pub(StageStarted("explain", 0, total))
    start = time.perf_counter()
    for call in range(total):
        due = start + sent / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        teacher, item = TEACHERS[call % 3], str(call // 3)
        pub(CallStarted(teacher, "explain", item))
        if call % 97 == 5:
            pub(CallRetried(teacher, "explain", item, 1, "HTTP 429: slow down", 0.5))
        elif call % 211 == 7:
            pub(CallFailed(teacher, "explain", item, "HTTP 400: bad request"))
        else:
            pub(CallDone(teacher, "explain", item, 120, 80, 0.0004, 1.2))
        pub(StageProgress("explain", 0, call + 1, total))
    return sent


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) >= 20 else max(xs)


async def latency(run_dir: Path, rate: float, seconds: float) -> dict:
    from fair_tui.app import FairApp

    app = FairApp(str(run_dir))
    delays: list[float] = []
    lags: list[float] = []

    def timed_drain() -> list:
        events = FairApp.drain(app)
        if events:
            stamps = [e.ts for e in events]
            app.call_after_refresh(lambda: delays.extend(time.time() - t for t in stamps))
        return events

    app.drain = timed_drain  # the EventsArrived handler drains through this attribute
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        last = [time.perf_counter()]

        def tick() -> None:
            now = time.perf_counter()
            lags.append(max(0.0, now - last[0] - 0.01))
            last[0] = now

        app.set_interval(0.01, tick)
        published = [0]
        feeder = threading.Thread(
            target=lambda: published.__setitem__(0, feed(app.session.run.publish, rate, seconds)), daemon=True
        )
        feeder.start()
        while feeder.is_alive():
            await pilot.pause(0.1)
        await pilot.pause(0.3)
        counters = Content.from_markup(app.screen.query_one("#counters").content).plain
    return {"events": published[0], "delays": delays, "lags": lags, "counters": counters}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--first-paint-child":
        first_paint_child(sys.argv[2])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=500.0, help="events per second")
    p.add_argument("--seconds", type=float, default=5.0)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = make_run(Path(tmp))
        paint = first_paint(run_dir)
        print(f"first paint (new process, pipeline screen of a run, {SIZE[0]}x{SIZE[1]}): {paint:.3f} s")
        r = asyncio.run(latency(run_dir, a.rate, a.seconds))
    d, lags = r["delays"], r["lags"]
    print(
        f"published {r['events']} events in {a.seconds:g} s ({r['events'] / a.seconds:.0f}/s); "
        f"{len(d)} of them timed on screen"
    )
    print(
        f"publish -> on screen: median {statistics.median(d) * 1e3:.1f} ms, p95 {p95(d) * 1e3:.1f} ms, "
        f"max {max(d) * 1e3:.1f} ms"
    )
    print(
        f"UI timer lag (10 ms timer): median {statistics.median(lags) * 1e3:.1f} ms, "
        f"p95 {p95(lags) * 1e3:.1f} ms, max {max(lags) * 1e3:.1f} ms"
    )
    print(f"counters on screen at the end: {r['counters']}")
    print(f"RESULT first_paint_s={paint:.3f} p95_latency_ms={p95(d) * 1e3:.1f}")


if __name__ == "__main__":
    main()
