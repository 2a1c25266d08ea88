"""`fair experiment`: variants of one config share one committee, resume, and compare on the same items."""

import asyncio
import json
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from committee_setup import paper_mistakes
from conftest import PAPER
from helpers import REPO, fair
from test_tui import shown, until

from fair_core import config as cfg
from fair_core import experiment
from fair_core.errors import FairError
from fair_core.runs.rundir import Run, RunLock
from fair_core.runs.store import copy_store
from fair_core.testing.tiny import make_tiny_student
from fair_tui.app import FairApp

VARIANTS = """
[experiment]
base = "fair"

[[variants]]
name = "fair"

[[variants]]
name = "no-feedback"
ablation = "no-feedback"
seeds = [1, 2]

[[variants]]
name = "t0-only"
ablation = "single-teacher"
teacher = "t0"
"""


def experiment_config(tmp_path, url, extra: str = VARIANTS, mistakes: int = 8, **more):
    student = make_tiny_student(tmp_path / "student")
    data = {
        "task": {"name": "svamp", "mistakes_file": str(paper_mistakes(PAPER, tmp_path, mistakes)), "test_limit": 8},
        "teachers": [
            {
                "name": f"t{i}",
                "backend": "litellm",
                "model": f"openai/{m}",
                "api_base": url,
                "timeout_s": 60,
                "max_retries": 2,
                "retry_base_s": 0.01,
            }
            for i, m in enumerate(("solver", "noisy-0.3", "solver"))
        ],
        "student": {"model": str(student), "max_new_tokens": 8, "batch_size": 16},
        "train": {"max_length": 256, "batch_size": 8, "target_modules": ["q_proj", "v_proj"], "max_steps": 1},
    }
    for key, value in more.items():
        cfg.set_key(data, key.replace("__", "."), value)
    path = tmp_path / "ablation.toml"
    path.write_text(cfg.dump(cfg.validate(data)) + extra)
    return path


def started(path):
    """(round, stage) -> when it last started, for every run directory under ``path``."""
    out = {}
    for db in sorted(path.glob("*/run.sqlite")):
        with sqlite3.connect(db) as con:
            out.update(
                {(db.parent.name, r, s): t for r, s, t in con.execute("SELECT round, stage, started FROM stages")}
            )
    return out


def evaluated(db):
    if not db.exists():
        return False
    with sqlite3.connect(db) as con:
        return bool(con.execute("SELECT 1 FROM stages WHERE stage = 'evaluate' AND status = 'done'").fetchall())


@pytest.mark.slow
@pytest.mark.needs_data
def test_variants_share_the_committee_and_a_killed_experiment_resumes(tmp_path, server):
    config, root = experiment_config(tmp_path, server.url), tmp_path / "exp"
    # killed once the committee and the first variant are done
    proc = subprocess.Popen(
        [sys.executable, "-m", "fair_core.cli", "experiment", str(config), "--dir", str(root), "--quiet"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not evaluated(root / "fair" / "run.sqlite") and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert evaluated(root / "fair" / "run.sqlite")
    committee_calls = server.stats()["requests"]
    with sqlite3.connect(root / "committee" / "run.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == committee_calls > 0
    before = started(root)

    out = fair("experiment", config, "--dir", root, "--json", "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    # what the kill left done was not done again; the variants made no teacher call of their own
    assert all(started(root)[k] == t for k, t in before.items() if k[0] in ("committee", "fair"))
    assert server.stats()["requests"] == committee_calls
    rows = {r["variant"]: r for r in result["variants"]}
    assert list(rows) == ["fair", "no-feedback", "t0-only"]
    assert result["measures"] == ["accuracy"] and result["items"] == {"accuracy": 8}
    assert all(r["new_calls"] == 0 for r in rows.values())
    acc = {v: r["accuracy"] for v, r in rows.items()}
    # fair has one seed: no test can put the seeds' noise inside its interval, and each says so
    assert rows["no-feedback"]["seeds"] == [1, 2] and acc["no-feedback"]["vs_reference"]["test"] == (
        "permutation, items only"
    )
    assert acc["t0-only"]["vs_reference"]["test"] == "McNemar, items only" and acc["fair"]["vs_reference"] is None
    assert acc["no-feedback"]["unit"] == "seeds" and acc["fair"]["unit"] == "items"
    for m in acc.values():
        low, high = m["ci95"]
        assert low <= m["mean"] <= high
    assert result["committee"]["calls"] == committee_calls and result["before"]["n"] == 8
    assert (root / "experiment.png").stat().st_size > 1000
    # each variant is what it says: t0-only kept every rationale (no review) and only t0's writings
    with sqlite3.connect(root / "t0-only" / "run.sqlite") as con:
        assert con.execute("SELECT MIN(accepted) FROM verdicts").fetchone()[0] == 1
    pairs = [json.loads(x) for x in (root / "t0-only" / "rounds" / "0" / "train.jsonl").read_text().splitlines()]
    with sqlite3.connect(root / "t0-only" / "run.sqlite") as con:
        t0 = {t for (t,) in con.execute("SELECT text FROM writings WHERE teacher = 't0'")}
    assert pairs and all(
        any(p[half]["response"].startswith(t.strip()) for t in t0) for p in pairs for half in ("rationale", "feedback")
    )

    # a third invocation reruns nothing and prints the same table
    after = started(root)
    again = fair("experiment", config, "--dir", root, "--quiet")
    assert again.returncode == 0, again.stderr[-2000:]
    assert started(root) == after and server.stats()["requests"] == committee_calls
    assert "t0-only" in again.stdout and "item-level only (one seed)" in again.stdout and ", p=" in again.stdout
    assert json.loads(fair("report", root, "--json").stdout) == result

    # the UI lists every run of the experiment, and a variant's Results screen shows the comparison
    async def scenario():
        app = FairApp(str(root))
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: app.screen.query_one("#runs").row_count == 5)
        app = FairApp(str(root / "t0-only"))
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: app.screen.NAME == "pipeline")
            await pilot.press("6")
            await until(pilot, lambda: "Experiment" in shown(app, "#report"))
            report = shown(app, "#report")
            assert "no-feedback" in report and ", p=" in report and "accuracy: 8 items" in report
            await pilot.press("q")

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "extra, message",
    [
        ("", "has no [[variants]]"),
        ('[[variants]]\nname = "x"\nablation = "no-peers"\n', "unknown ablation 'no-peers'"),
        ('[[variants]]\nname = "x"\nablation = "single-teacher"\n', 'teacher = "NAME" goes with'),
        (
            '[[variants]]\nname = "x"\nset = {"committee.distil_from" = ["nobody"]}\n',
            "'nobody', which is not a teacher",
        ),
        ('[[variants]]\nname = "x"\nset = {"task.test_limit" = 5}\n', "changes task.test_limit, which the shared"),
        ('[[variants]]\nname = "x"\n\n[[variants]]\nname = "x"\n', "used twice"),
        ('[experiment]\nbase = "y"\n\n[[variants]]\nname = "x"\n', "experiment.base names 'y'"),
        ('[[variants]]\nname = "x"\ncolour = 1\n', "unknown key 'colour'"),
    ],
)
def test_a_bad_experiment_is_one_line(tmp_path, extra, message):
    path = tmp_path / "bad.toml"
    path.write_text('[[teachers]]\nname = "t0"\nmodel = "m"\n\n' + extra)
    with pytest.raises(FairError, match=message.replace("[", r"\[").replace("]", r"\]")):
        experiment.load(path)
    out = fair("experiment", path, "--dir", tmp_path / "exp")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and not (tmp_path / "exp").exists()


REFERENCES = """
[experiment]
references = 6
seeds = [0, 1]

[[variants]]
name = "fair"

[[variants]]
name = "size-matched"
ablation = "size-matched"
"""


@pytest.mark.slow
@pytest.mark.needs_data
def test_arms_are_compared_on_held_out_references_with_seeds_as_the_unit(tmp_path, server):
    stages = ["examine", "explain", "solve", "review", "compile", "train"]  # no evaluate: no accuracy
    config = experiment_config(tmp_path, server.url, REFERENCES, mistakes=12, task__train_limit=6, stages=stages)
    root = tmp_path / "exp"
    # two processes share the experiment's runs: each run is worked on by one of them, once
    cmd = [sys.executable, "-m", "fair_core.cli", "experiment", str(config), "--dir", str(root), "--json", "--quiet"]
    procs = [subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    result = json.loads(outs[0][0])
    assert json.loads(outs[1][0]) == result
    for arm in ("fair-seed0", "fair-seed1", "size-matched-seed0", "size-matched-seed1"):
        events = [json.loads(line) for line in (root / arm / "events.jsonl").read_text().splitlines()]
        assert [e["stage"] for e in events if e["type"] == "stage_started"].count("train") == 1, arm
    # the references are the teachers' rationales on the six mistakes after the six trained on
    with sqlite3.connect(root / "references" / "run.sqlite") as con:
        held = {i for (i,) in con.execute("SELECT item_id FROM mistakes")}
        assert {s for (s,) in con.execute("SELECT stage FROM stages")} == {"examine", "solve"}
    with sqlite3.connect(root / "committee" / "run.sqlite") as con:
        trained = {i for (i,) in con.execute("SELECT item_id FROM mistakes")}
    assert len(held) == len(trained) == 6 and not held & trained
    # no arm was evaluated: no accuracy
    assert result["measures"] == ["rationale score", "margin", "margin within teachers"]
    rows = {r["variant"]: r for r in result["variants"]}
    assert list(rows) == ["fair", "size-matched", "untrained"]
    for v in ("fair", "size-matched"):
        m = rows[v]["rationale score"]
        scores = [json.loads((root / f"{v}-seed{s}" / experiment.SCORES).read_text()) for s in (0, 1)]
        assert set(scores[0]["items"]) <= held and m["unit"] == "seeds" and len(m["per_seed"]) == 2
        # every text's score is kept with the teacher who wrote it
        assert {t["author"] for t in scores[0]["texts"]} == {"t0", "t1", "t2"}
        assert m["ci95"][0] <= m["mean"] <= m["ci95"][1] and m["mean"] < 0
    assert rows["size-matched"]["rationale score"]["vs_reference"]["test"] == "Welch t over seeds"
    assert rows["untrained"]["margin"]["unit"] == "items" and rows["untrained"]["seeds"] == []
    # training moved the student: its scores differ from the untrained one's
    assert rows["fair"]["rationale score"]["mean"] != rows["untrained"]["rationale score"]["mean"]
    # size-matched trains on as many pairs as fair, drawn from every teacher's rationales
    for s in (0, 1):
        pairs = {
            v: (root / f"{v}-seed{s}" / "rounds" / "0" / "train.jsonl").read_text().count("\n")
            for v in rows
            if v != "untrained"
        }
        assert pairs["fair"] == pairs["size-matched"] > 0
    # a rerun scores nothing again and prints the same figures, seeds as the unit
    stamps = {p: p.stat().st_mtime_ns for p in root.glob(f"*/{experiment.SCORES}")}
    again = fair("experiment", config, "--dir", root, "--quiet")
    assert again.returncode == 0 and "scoring" not in again.stderr
    assert {p: p.stat().st_mtime_ns for p in root.glob(f"*/{experiment.SCORES}")} == stamps
    assert "rationale score: " in again.stdout and "seeds as the unit" in again.stdout
    # fair eval scores any model on a run's references as the experiment does
    out = fair("eval", "--student", tmp_path / "student", "--references", root / "references")
    assert out.returncode == 0, out.stderr[-2000:]
    said = re.search(r"rationale score (-?\d+\.\d+) \[", out.stdout)
    assert said and float(said[1]) == pytest.approx(rows["untrained"]["rationale score"]["mean"], abs=1e-3)
    out = fair("eval", "--student", tmp_path / "student")
    assert out.returncode == 2 and "--references RUN" in out.stderr and out.stderr.count("\n") == 1


def call(key):
    """A stored teacher call, as the gateway writes one."""
    return {
        "key": key,
        **dict.fromkeys(("teacher", "backend", "model", "purpose", "item_id", "request", "response"), "x"),
        **dict.fromkeys(("prompt_tokens", "completion_tokens", "attempts"), 1),
        **dict.fromkeys(("cost_usd", "latency_s", "created"), 0.5),
        "error": None,
    }


@pytest.mark.parametrize(
    "cut",
    [
        "config first, store not copied yet",  # how an older fair copied: config, then the store, no lock
        "config first, copy cut short",
        "copied to the temporary name",  # how it copies now: the store renamed into place, the config last
        "renamed, no config yet",
    ],
)
def test_a_half_copied_variant_is_copied_again(tmp_path, cut):
    config = cfg.validate({"stages": ["explain", "train"]})
    committee, variant = tmp_path / "committee", tmp_path / "fair"
    run = Run(committee, config)
    run.store.record_call("k1", call("k1"))
    run.close()
    variant.mkdir()
    if cut.startswith("config first"):
        (variant / "config.toml").write_text((committee / "config.toml").read_text())
    if cut == "config first, copy cut short":  # the backup's pages half written, its hot journal beside them
        (variant / "run.sqlite").write_bytes((committee / "run.sqlite").read_bytes()[:1000])
        (variant / "run.sqlite-journal").write_bytes(b"\0" * 512)
    if cut == "copied to the temporary name":
        (variant / "run.sqlite.tmp").write_bytes((committee / "run.sqlite").read_bytes()[:1000])
    if cut == "renamed, no config yet":
        copy_store(committee / "run.sqlite", variant / "run.sqlite")

    with RunLock(variant):
        experiment.copy_committee(committee, variant)
        run = Run(variant, config)
    assert run.store.cached_answer("k1") is not None and run.store.get_meta(experiment.COPY_START)["calls"] == 1
    run.store.record_call("k2", call("k2"))  # the variant's own work: copying again leaves it be
    run.close()
    assert sorted(p.name for p in variant.iterdir() if "run.sqlite" in p.name) == ["run.sqlite"]
    experiment.copy_committee(committee, variant)
    run = Run(variant, config)
    assert run.store.calls_made()[0] == 2
    run.close()


def test_a_table_an_older_fair_wrote_says_how_to_compare_again(tmp_path):
    (tmp_path / "committee").mkdir()
    (tmp_path / "committee" / "run.sqlite").write_bytes(b"")
    (tmp_path / "experiment.json").write_text(json.dumps({"reference": "fair", "items": 8, "variants": []}))
    out = fair("report", tmp_path)
    assert out.returncode == 2 and "written by an older fair" in out.stderr and out.stderr.count("\n") == 1


# experiment.write in a process killed (SIGKILL) once the image's first half is on disk
KILLED_PLOT = """
import json, os, signal, sys
from pathlib import Path
from matplotlib.figure import Figure
from fair_core import experiment
saved = Figure.savefig
def savefig(self, target, **kwargs):
    saved(self, target, **kwargs)
    if isinstance(target, (str, Path)):
        data = Path(target).read_bytes()
        Path(target).write_bytes(data[: len(data) // 2])
    else:
        data = target.getvalue()
        target.seek(0)
        target.truncate()
        target.write(data[: len(data) // 2])
    os.kill(os.getpid(), signal.SIGKILL)
Figure.savefig = savefig
experiment.write(json.loads(sys.argv[1]), Path(sys.argv[2]))
"""


def test_a_kill_while_the_plot_is_written_leaves_the_last_whole_one(tmp_path):
    row = {"variant": "fair", "seeds": [None], "new_calls": 0, "new_cost_usd": 0.0}
    result = {"reference": "fair", "measures": ["accuracy"], "items": {"accuracy": 4}, "before": None}
    result["variants"] = [{**row, "accuracy": {"mean": 0.5, "ci95": [0.2, 0.8], "unit": "items"}}]
    experiment.write(result, tmp_path)
    whole = (tmp_path / "experiment.png").read_bytes()
    result["variants"][0]["accuracy"]["mean"] = 0.75
    cut = subprocess.run([sys.executable, "-c", KILLED_PLOT, json.dumps(result), str(tmp_path)], cwd=REPO)
    assert cut.returncode == -signal.SIGKILL
    assert (tmp_path / "experiment.png").read_bytes() == whole


def test_a_measure_no_item_has_for_every_arm_is_shown_empty(tmp_path):
    """Margins need a wrong rationale beside a right one: references every teacher got right give
    none, and the comparison shows the measure empty rather than failing with a traceback."""
    exp = experiment.load(experiment_config(tmp_path, "http://127.0.0.1:9/v1"))
    runs = {a.folder: {} for a in exp.arms} | {"untrained": {}}
    m = experiment._measure(exp, runs, binary=False)
    assert m["items"] == 0 and all(m[v] is None for v in [*exp.variants, "untrained"])
