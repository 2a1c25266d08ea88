"""Committee throughput: our gateway against a sequential loop, as the paper's code calls teachers.

200 of the paper's SVAMP mistakes, 3 scripted teachers, 12 calls per mistake (3 feedback, 3
rationales, 6 reviews), all against the local OpenAI-compatible server in its own process with
200 ms latency and a capacity of 32 concurrent requests: a ceiling of 160 calls per second.
The sequential loop makes the same kind of calls one at a time on the first 10 mistakes.

Last line: `RESULT speedup=<x> ceiling_fraction=<f> cpu_ms_per_call=<ms>`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fair_core import config as cfg  # noqa: E402
from fair_core.host import get_host  # noqa: E402
from fair_core.runner import Runner  # noqa: E402
from fair_core.runs.rundir import Run  # noqa: E402
from fair_core.task import data_root  # noqa: E402
from fair_core.testing.server import server_process  # noqa: E402

LATENCY, CAPACITY, MISTAKES, LOOP_MISTAKES = 0.2, 32, 200, 10
MODELS = ("teacher-a", "teacher-b", "teacher-c")
CEILING = CAPACITY / LATENCY


def signed(model: str, messages: list) -> str:
    """The scripted solver, signed by its model, so that no two teachers' answers are the same
    and every one of the 12 calls per mistake is a distinct request (none is shared or cached)."""
    from fair_core.testing.server import BEHAVIOURS

    return f"{BEHAVIOURS['solver'](model, messages)}\n(written by {model})"


def config(url: str, mistakes: Path) -> cfg.RunConfig:
    share = [CAPACITY // len(MODELS) + (i < CAPACITY % len(MODELS)) for i in range(len(MODELS))]
    return cfg.validate(
        {
            "stages": ["explain", "solve", "review"],
            "task": {"name": "svamp", "mistakes_file": str(mistakes)},
            "teachers": [
                {"name": f"t{i}", "model": f"openai/{m}", "api_base": url, "concurrency": share[i]}
                for i, m in enumerate(MODELS)
            ],
        }
    )


def ours(url: str, workdir: Path) -> tuple[float, float, int]:
    items = json.loads((data_root() / "fair-reference" / "Llama-2-7b-chat-hf_svamp_false_round0.json").read_text())
    mistakes = workdir / "Llama-2-7b-chat-hf_svamp_false_round0.json"
    mistakes.write_text(json.dumps(items[:MISTAKES]))
    run = Run(workdir / "run", config(url, mistakes))
    runner = Runner(run, get_host())
    cpu, wall = time.process_time(), time.perf_counter()
    runner.run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    calls = run.store.query("SELECT COUNT(*) FROM calls WHERE response IS NOT NULL")[0][0]
    retries = run.store.query("SELECT COALESCE(SUM(MAX(attempts - 1, 0)), 0) FROM calls")[0][0]
    run.close()
    print(
        f"gateway: {calls} calls in {wall:.2f} s = {calls / wall:.1f} calls/s, {retries} retries, "
        f"CPU {cpu:.2f} s = {1000 * cpu / calls:.2f} ms per call"
    )
    return calls / wall, 1000 * cpu / calls, calls


def sequential(url: str) -> float:
    """One call at a time through litellm, as the paper's code does: feedback, rationale, reviews."""
    import litellm

    task = get_host().get("tasks", "svamp")()
    items = json.loads((data_root() / "fair-reference" / "Llama-2-7b-chat-hf_svamp_false_round0.json").read_text())

    def ask(model: str, prompt: str) -> str:
        messages = [{"role": "user", "content": prompt}]
        reply = litellm.completion(model=f"openai/{model}", api_base=url, api_key="none", messages=messages)
        return reply.choices[0].message.content

    calls, start = 0, time.perf_counter()
    for x in items[:LOOP_MISTAKES]:
        rationales = {}
        for m in MODELS:
            ask(
                m,
                task.prompt(
                    "explain", question=x["question"], student_answer=x["student_wrong_pred"], gold=x["gold_answer"]
                ),
            )
            rationales[m] = ask(m, task.prompt("solve", question=x["question"]))
            calls += 2
        for author, text in rationales.items():
            for reviewer in (m for m in MODELS if m != author):
                ask(reviewer, task.prompt("review", question=x["question"], rationale=text, gold=x["gold_answer"]))
                calls += 1
    wall = time.perf_counter() - start
    print(f"sequential loop: {calls} calls in {wall:.2f} s = {calls / wall:.2f} calls/s")
    return calls / wall


def main() -> None:
    behaviours = {m: "committee:signed" for m in MODELS}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    with (
        server_process(latency=LATENCY, capacity=CAPACITY, behaviours=behaviours) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        rate, cpu_ms, _ = ours(url, Path(tmp))
        base = sequential(url)
    print(f"speedup {rate / base:.1f}x; {rate:.1f} of a {CEILING:.0f} calls/s ceiling ({rate / CEILING:.2f})")
    print(f"RESULT speedup={rate / base:.1f} ceiling_fraction={rate / CEILING:.3f} cpu_ms_per_call={cpu_ms:.2f}")


if __name__ == "__main__":
    main()
