"""benchmarks/tui.py's measuring, on a few events: it must time every event it sends, so that it
cannot report a latency of nothing again (as it did when the UI stopped listening to the bus it
published on), and its log check must find every line."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

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
