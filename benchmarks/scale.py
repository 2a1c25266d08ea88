"""The committee at scale: 1k, 4k and 16k mistakes, per-call time, memory, report and UI.

Mistakes are GSM8K train items (cycled, each repeat a distinct question), three scripted teachers
behind the local OpenAI-compatible server in its own process at no latency, the paper's review
assignment: 12 calls per mistake. Each size runs in a fresh process, which reports its wall time
per call and its peak RSS; then ``fair report``'s build and the UI's committee screen are timed
on the finished run, each in a fresh process too.

    python benchmarks/scale.py                     # 1k, 4k, 16k
    python benchmarks/scale.py --sizes 100 400     # a quick look

Last line: ``RESULT per_call_growth=<per-call time at the largest / at the smallest>
rss_growth_mb=<peak RSS at the largest - at the smallest> report_s=<at the largest>
tui_open_s=<at the largest>``. Targets: growth <= 1.3, memory growth <= 300 MB, report <= 2 s,
UI <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
HERE = Path(__file__).resolve().parent
MODELS = ("teacher-a", "teacher-b", "teacher-c")


def scripted(model: str, messages: list) -> str:
    """Short answers, signed by the model so no two teachers share a request: a review score for
    a review, a one-line answer otherwise."""
    from fair_core.testing.server import last_user

    prompt = last_user(messages)
    if "score" in prompt.lower() and "rationale" in prompt.lower():
        return f"[{4 + len(prompt) % 2}]"
    return f"Step one, then step two. The answer is {len(prompt) % 97}. ({model})"


def write_mistakes(n: int, path: Path) -> Path:
    from fair_core.task import data_root

    rows = [json.loads(line) for line in (data_root() / "gsm8k" / "train.jsonl").read_text().splitlines()]
    items = []
    for i in range(n):
        x, copy = rows[i % len(rows)], i // len(rows)
        question = x["question"] + (f" (variant {copy})" if copy else "")
        items.append(
            {
                "id": i,
                "question": question,
                "gold_answer": x["answer"],
                "student_wrong_pred": "I think the answer is 3.",
                "student_wrong_final_answer": "3",
            }
        )
    path.write_text(json.dumps(items))
    return path


def child_run(size: int, url: str, workdir: str) -> None:
    """In a fresh process: the committee on ``size`` mistakes; prints one JSON line."""
    from fair_core import config as cfg
    from fair_core.host import get_host
    from fair_core.runner import Runner
    from fair_core.runs.rundir import Run

    work = Path(workdir)
    mistakes = write_mistakes(size, work / "gsm8k_false_round0.json")
    config = cfg.validate(
        {
            "stages": ["explain", "solve", "review"],
            "task": {"name": "gsm8k", "mistakes_file": str(mistakes)},
            "teachers": [
                {
                    "name": f"t{i}",
                    "model": f"openai/{m}",
                    "api_base": url,
                    "concurrency": 16,
                    "params": {"temperature": 0, "max_tokens": 64},
                }
                for i, m in enumerate(MODELS)
            ],
        }
    )
    run = Run(work / "run", config)
    start = time.perf_counter()
    Runner(run, get_host()).run()
    wall = time.perf_counter() - start
    calls = run.store.query("SELECT COUNT(*) FROM calls WHERE response IS NOT NULL")[0][0]
    run.close()
    print(
        json.dumps(
            {
                "size": size,
                "calls": calls,
                "wall_s": wall,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def child_report(run_dir: str) -> None:
    from fair_core.results.report import build

    start = time.perf_counter()
    build(Path(run_dir))
    print(json.dumps({"report_s": time.perf_counter() - start}))


def child_tui(run_dir: str) -> None:
    """Open the run in the UI (headless), then time the committee screen from key to its list."""
    from fair_core.host import get_host
    from fair_tui.app import FairApp

    get_host()

    async def scenario() -> float:
        app = FairApp(run_dir)
        async with app.run_test(size=(120, 36)) as pilot:
            while getattr(app.screen, "NAME", None) != "pipeline":
                await pilot.pause(0.01)
            start = time.perf_counter()
            await pilot.press("4")
            while not (getattr(app.screen, "NAME", None) == "committee" and app.screen.shown_items):
                await pilot.pause(0.005)
            took = time.perf_counter() - start
            await pilot.press("q")
        return took

    print(json.dumps({"tui_open_s": asyncio.run(scenario())}))


def _child(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SystemExit(f"child {args[0]} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000, 16000])
    p.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        kind, *rest = args.child
        {
            "run": lambda: child_run(int(rest[0]), rest[1], rest[2]),
            "report": lambda: child_report(rest[0]),
            "tui": lambda: child_tui(rest[0]),
        }[kind]()
        return
    from fair_core.testing.server import server_process

    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    rows = []
    with server_process(behaviours={m: "scale:scripted" for m in MODELS}) as url, tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            work = Path(tmp) / str(size)
            work.mkdir()
            row = _child("run", str(size), url, str(work))
            row.update(_child("report", str(work / "run")))
            row.update(_child("tui", str(work / "run")))
            row["ms_per_call"] = 1000 * row["wall_s"] / row["calls"]
            rows.append(row)
            print(
                f"{size:>6} mistakes: {row['calls']:>7} calls in {row['wall_s']:6.1f} s = {row['ms_per_call']:.2f} "
                f"ms/call, peak RSS {row['rss_mb']:.0f} MB, report {row['report_s']:.2f} s, "
                f"committee screen {row['tui_open_s']:.2f} s",
                flush=True,
            )
    small, large = rows[0], rows[-1]
    print(
        f"RESULT per_call_growth={large['ms_per_call'] / small['ms_per_call']:.2f} "
        f"rss_growth_mb={large['rss_mb'] - small['rss_mb']:.0f} report_s={large['report_s']:.2f} "
        f"tui_open_s={large['tui_open_s']:.2f}"
    )


if __name__ == "__main__":
    main()
