"""benchmarks/tui.py's measuring, on a few events: it must time every event it sends, so that it
cannot report a latency of nothing again (as it did when the UI stopped listening to the bus it
published on), and its log check must find every line."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
from pathlib import Path

from textual.content import Content
from textual.widget import Widget

from fair_core.runs.events import CallDone, CallStarted, StageProgress, StageStarted
from fair_tui.app import FairApp

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "tui.py"


def load_bench(monkeypatch):
    """The script as a module (benchmarks/ is no package); registered, as its dataclasses need."""
    spec = importlib.util.spec_from_file_location("bench_tui", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_tui_benchmark_times_every_event_it_sends_and_finds_every_log_line(tmp_path, monkeypatch):
    bench = load_bench(monkeypatch)
    run_dir = bench.make_run(tmp_path)
    r = asyncio.run(bench.measure(run_dir, rate=500, seconds=0.3, burst=300, hidden=150, alone=3))
    for name in ("floor", "steady", "burst"):
        phase = r[name]
        assert phase.sent > 0, name
        assert len(phase.delays) == phase.sent and phase.untimed == 0, name  # every event timed on the pipeline
        assert all(d >= 0 for d in phase.delays), name
    hidden = r["hidden"]
    assert hidden.sent > 0 and hidden.untimed == hidden.sent and hidden.delays == []  # drained off screen
    assert hidden.lines > 0  # the events sent while hidden call for lines in the log
    assert r["log_expected"] == sum(r[n].lines for n in ("floor", "steady", "burst", "hidden")) > 0
    assert r["lost"] == 0 and r["log_lines"] == r["log_expected"]


def call_events(i: int) -> list:
    """One teacher call's events, as the engine sends them: started, done, the stage's progress."""
    teacher, item = ("gpt", "gemini", "mistral")[i % 3], str(i // 3)
    return [
        CallStarted(teacher, "explain", item),
        CallDone(teacher, "explain", item, 120, 80, 0.0004, 1.2),
        StageProgress("explain", 0, i + 1, 30),
    ]


def test_call_events_redraw_the_pipeline_without_a_layout_pass(tmp_path, monkeypatch):
    """Events that change only counters and progress redraw the pipeline screen in place, with no
    layout pass: one on every drain (the nav bar's run label set to the same text each time) was
    the UI's largest cost at 500 events a second. The spy records the layout requests made while
    the app drains (and so redraws the screen), whether or not the frame is drawn yet."""
    bench = load_bench(monkeypatch)
    run_dir = bench.make_run(tmp_path)
    laid_out: list[str] = []
    spying = False
    refresh = Widget.refresh

    def spy(self, *regions, **kwargs):
        if spying and kwargs.get("layout"):
            laid_out.append(f"{type(self).__name__}#{self.id}")
        return refresh(self, *regions, **kwargs)

    class Spied(FairApp):
        armed = False  # from the call events on

        def drain(self) -> list:
            nonlocal spying
            spying = self.armed
            try:
                return super().drain()
            finally:
                spying = False

    def engine(session, events) -> None:
        thread = threading.Thread(target=lambda: [session.receive(e) for e in events])  # as api.run's on_event
        thread.start()
        thread.join()

    monkeypatch.setattr(Widget, "refresh", spy)

    async def scenario():
        app = Spied(str(run_dir))
        async with app.run_test(size=bench.SIZE) as pilot:
            while not (getattr(app.screen, "NAME", "") == "pipeline" and app.screen.ready):
                await pilot.pause(0.05)
            s = app.session
            engine(s, [StageStarted("explain", 0, 30)])  # the stage's state changes: the footer's keys may too
            while s.buffer or s.live.stage(0, "explain").total != 30:
                await pilot.pause(0.05)
            app.armed = True
            for batch in range(3):
                engine(s, [e for i in range(10 * batch, 10 * batch + 10) for e in call_events(i)])
                while s.buffer or s.live.done != 10 * batch + 10:
                    await pilot.pause(0.05)
            assert "done 30" in Content.from_markup(app.screen.query_one("#counters").content).plain

    asyncio.run(scenario())
    assert laid_out == []
