"""The whole FAIR loop end to end: a tiny student, a committee on the local HTTP server."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import psutil
import pytest
from helpers import REPO, fair

from fair_core import config as cfg
from fair_core.testing.server import serve_in_thread
from fair_core.testing.tiny import into_hub_cache, make_tiny_student


def pipeline_config(tmp_path, url, student, **train):
    data = {
        "task": {"name": "svamp", "train_limit": 12, "test_limit": 6},
        "teachers": [
            {"name": f"t{i}", "model": f"openai/{m}", "api_base": url}
            for i, m in enumerate(("solver", "noisy-0.3", "noisy-0.6"))
        ],
        "student": {"model": str(student), "max_new_tokens": 12, "batch_size": 8},
        "train": {
            "epochs": 1,
            "batch_size": 4,
            "max_length": 256,
            "save_steps": 2,
            "learning_rate": 1e-3,
            "target_modules": ["q_proj", "v_proj"],
            **train,
        },
    }
    path = tmp_path / "pipeline.toml"
    path.write_text(cfg.dump(cfg.validate(data)))
    return path


@pytest.mark.needs_data
@pytest.mark.slow
def test_whole_pipeline_then_resume_does_nothing_twice(tmp_path):
    student = make_tiny_student(tmp_path / "student")
    run = tmp_path / "run"
    with serve_in_thread() as server:
        config = pipeline_config(tmp_path, server.url, student)
        out = fair("run", config, "--run-dir", run, "--quiet")
        assert out.returncode == 0, out.stderr[-2000:]
        assert "round 0 examine done: train_accuracy 0, mistakes 12" in out.stderr  # plain words, no dict
        sent = server.requests
        again = fair("run", config, "--run-dir", run, "--quiet")
        assert again.returncode == 0, again.stderr[-2000:]
        assert server.requests == sent  # resumed: every stage done, no call sent again
    report = json.loads(fair("report", run, "--json").stdout)
    assert report["items"] == 12  # the tiny student gets every train question wrong
    assert report["accepted_rationales"] > 0
    assert report["accuracy_before"] is not None and report["accuracy_after"] is not None
    assert [s["status"] for s in report["stages"]] == ["done"] * 7
    training = report["rounds"][0]["training"]  # the trainer's own summary, peak memory included
    assert training["step"] >= 1 and training["memory_mb"] > 0 and training["method"] == "lora"
    assert f"peak memory {training['memory_mb'] / 1024:.2f} GiB" in fair("report", run).stdout
    round0 = run / "rounds" / "0"
    assert (round0 / "adapter" / "adapter_config.json").exists()
    steps = [json.loads(line) for line in (round0 / "progress.jsonl").read_text().splitlines()]
    assert any(s["type"] == "train_step" for s in steps)
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert any(e["type"] == "train_step" and e["round"] == 0 for e in events)  # republished by the parent
    assert {e["when"] for e in events if e["type"] == "eval_result"} == {"before", "after"}
    db = sqlite3.connect(run / "run.sqlite")
    assert db.execute("SELECT COUNT(*) FROM attempts WHERE split = 'test'").fetchone()[0] == 12


@pytest.mark.needs_data
@pytest.mark.slow
def test_a_second_round_starts_from_the_first_rounds_student(tmp_path):
    """A finished one-round run, extended with --rounds 2: round 0's adapter is merged then, and
    round 1 starts from it. The student is named by a hub id and comes from the hub cache,
    offline: it is examined, trained and merged like a local folder."""
    cache = tmp_path / "hub"
    snapshot = into_hub_cache(make_tiny_student(tmp_path / "student"), cache, "fair-tests/tiny")
    run = tmp_path / "run"
    with serve_in_thread() as server:
        config = pipeline_config(tmp_path, server.url, "fair-tests/tiny")
        for rounds in ("1", "2"):
            out = fair(
                "run",
                config,
                "--run-dir",
                run,
                "--rounds",
                rounds,
                "--quiet",
                "--set",
                "task.train_limit=6",
                "--set",
                "task.test_limit=3",
                env={"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"},
            )
            assert out.returncode == 0, out.stderr[-2000:]
    assert "merging round 0's adapter into its base to start round 1" in out.stderr
    assert (run / "rounds" / "0" / "merged" / "config.json").exists()  # round 1 started from it
    assert json.loads((run / "rounds" / "1" / "adapter" / "adapter_config.json").read_text())[
        "base_model_name_or_path"
    ] == str(run / "rounds" / "0" / "merged")
    round0 = json.loads((run / "rounds" / "0" / "adapter" / "adapter_config.json").read_text())
    assert round0["base_model_name_or_path"] == str(snapshot)  # trained on the cached folder
    report = json.loads(fair("report", run, "--json").stdout)
    assert [r["round"] for r in report["rounds"]] == [0, 1]
    assert all(r["accuracy_after"] is not None for r in report["rounds"])


@pytest.mark.needs_data
@pytest.mark.slow
def test_fair_eval_any_model(tmp_path):
    student = make_tiny_student(tmp_path / "student")
    out = fair("eval", "--student", student, "--task", "svamp", "--limit", "4", "--max-new-tokens", "8")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "accuracy 0.0% of 4 [0.0, 60.2] svamp test items (95% CI)" in out.stdout  # count and interval


@pytest.mark.needs_data
def test_student_path_that_does_not_exist(tmp_path):
    out = fair("eval", "--student", tmp_path / "nope", "--task", "svamp", "--limit", "2")
    assert out.returncode == 2 and "not found" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.needs_data
def test_student_folder_that_is_not_a_model(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_line(fair("eval", "--student", empty, "--task", "svamp", "--limit", "2"))
    assert "not a complete model folder" in line and "config.json" in line and "weights" in line
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text("{}")
    with serve_in_thread() as server:
        config = pipeline_config(tmp_path, server.url, partial)
        line = one_line(fair("run", config, "--run-dir", tmp_path / "run"))
        assert server.requests == 0
    assert "no tokenizer files, no weights" in line and "no config.json" not in line
    assert not (tmp_path / "run").exists()


@pytest.mark.needs_data
def test_the_committee_before_any_examination(tmp_path):
    with serve_in_thread() as server:
        config = pipeline_config(tmp_path, server.url, make_tiny_student(tmp_path / "student"))
        line = one_line(fair("run", config, "--run-dir", tmp_path / "run", "--stages", "review"))
        assert server.requests == 0
    assert "review has no mistakes to work on: examine has not run" in line


def test_unknown_hub_model_offline(tmp_path):
    """Offline (the tests' HF_HUB_OFFLINE), a hub id that is not cached fails before any call."""
    with serve_in_thread() as server:
        config = pipeline_config(tmp_path, server.url, "nobody/no-such-model")
        line = one_line(fair("run", config, "--run-dir", tmp_path / "run"))
        assert server.requests == 0
    assert "nobody/no-such-model" in line and "HF_HUB_OFFLINE" in line
    assert not (tmp_path / "run").exists()


def one_line(out):
    """The run's one error line (progress lines may come before it)."""
    errors = [line for line in out.stderr.splitlines() if line.startswith("fair: error:")]
    assert out.returncode == 2 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.rstrip().endswith(errors[0])
    return errors[0]


@pytest.mark.slow
def test_qlora_without_gpu_fails_before_anything(tmp_path):
    student = make_tiny_student(tmp_path / "student")
    with serve_in_thread() as server:
        config = pipeline_config(tmp_path, server.url, student, method="qlora")
        line = one_line(fair("run", config, "--run-dir", tmp_path / "run"))
        assert server.requests == 0
    assert "qlora" in line and "GPU" in line
    assert not (tmp_path / "run").exists()  # nothing half-written: rerunning with lora starts clean


def test_run_with_a_student_path_that_does_not_exist(tmp_path):
    with serve_in_thread() as server:
        config = pipeline_config(tmp_path, server.url, tmp_path / "nope")
        line = one_line(fair("run", config, "--run-dir", tmp_path / "run"))
        assert server.requests == 0
    assert "nope" in line and "not found" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.needs_data
@pytest.mark.slow
def test_empty_compiled_dataset(tmp_path):
    """Teachers that are always wrong, with verify_answer: no rationale passes, nothing to train on."""
    student = make_tiny_student(tmp_path / "student")
    with serve_in_thread() as server:
        config = pipeline_config(tmp_path, server.url, student)
        data = cfg.load(config).model_dump(mode="json", exclude_none=True)
        for t in data["teachers"]:
            t["model"] = "openai/noisy-1.0"
        data["committee"]["verify_answer"] = True
        data["task"]["train_limit"], data["task"]["test_limit"] = 4, 2
        config.write_text(cfg.dump(cfg.validate(data)))
        run = tmp_path / "run"
        line = one_line(fair("run", config, "--run-dir", run))
        assert "no training data" in line and "committee.threshold" in line
        round0 = run / "rounds" / "0"
        assert (round0 / "train.jsonl").read_text() == ""
        assert not (round0 / "adapter").exists() and not (round0 / "checkpoints").exists()
        train = [s for s in json.loads(fair("report", run, "--json").stdout)["stages"] if s["stage"] == "train"]
        assert train[0]["status"] == "failed" and "no training data" in train[0]["error"]
        assert "train failed (round 0 has no training data" in fair("report", run).stdout

        # the hint, followed on the same run: review is judged again from the stored scores
        sent = server.requests
        lower = ("--set", "committee.verify_answer=false", "--set", "committee.threshold=1")
        line = one_line(fair("run", config, "--run-dir", run, *lower, "--stages", "train,evaluate"))
        assert "redoes round 0 from review, but --stages leaves out review, compile" in line  # not the old data
        out = fair("run", config, "--run-dir", run, *lower)
        assert "committee.threshold, committee.verify_answer changed: round 0 is redone from review" in out.stderr
        assert out.returncode == 0, out.stderr[-2000:]
        assert server.requests == sent  # no teacher asked again
    report = json.loads(fair("report", run, "--json").stdout)
    assert report["accepted_rationales"] > 0 and report["accuracy_after"] is not None
    assert {s["status"] for s in report["stages"]} == {"done"}
    # a change that stored results depend on still needs a new run directory
    line = one_line(fair("run", config, "--run-dir", run, "--set", "student.max_new_tokens=5"))
    assert "student.max_new_tokens differs" in line and "--run-dir" in line


def _wait_ended(processes) -> None:
    """Return once every process has exited (a zombie counts: nothing reaps it in some containers);
    the limit only stops a hung test."""

    def ended(p) -> bool:
        try:
            return p.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + 600
    while not all(map(ended, processes)) and time.monotonic() < deadline:
        time.sleep(0.05)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.needs_data
@pytest.mark.slow
def test_a_signal_to_fair_stops_its_training_process_and_the_run_resumes(tmp_path):
    """SIGINT or SIGTERM sent to the `fair` process alone (not its process group, as a job
    scheduler or `kill` does) stops the training child too, and so does a SIGKILL; the stage
    reads "interrupted" and the next invocation resumes from the last checkpoint to the same
    number of steps."""
    student = make_tiny_student(tmp_path / "student")
    run = tmp_path / "run"
    with serve_in_thread() as server:
        config = pipeline_config(tmp_path, server.url, student, max_steps=60, save_steps=5)
        out = fair("run", config, "--run-dir", run, "--stages", "examine,explain,solve,review,compile", "--quiet")
        assert out.returncode == 0, out.stderr[-2000:]
    progress, checkpoints = run / "rounds" / "0" / "progress.jsonl", run / "rounds" / "0" / "checkpoints"

    def checkpointed(start: int) -> bool:
        return any(checkpoints.glob("step-*/trainer_state.json"))  # complete ones only

    def resumed(start: int) -> bool:  # this invocation resumed and has stepped since
        types = [r["type"] for r in _lines(progress)[start:]]
        return "train_resumed" in types and types[-1] == "train_step"

    for sig, started, code in (
        (signal.SIGINT, checkpointed, 130),
        (signal.SIGTERM, resumed, 143),
        (signal.SIGKILL, resumed, -signal.SIGKILL),
    ):
        start = len(_lines(progress))
        proc = subprocess.Popen(
            [sys.executable, "-m", "fair_core.cli", "run", str(config), "--run-dir", str(run), "--stages", "train"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            # a shell starts a background job with SIGINT ignored, and Python keeps it so: the test
            # may run in one, and `fair` must see the signal as a terminal would send it
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        while not started(start) and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, "training ended before the signal: raise max_steps"
        children = psutil.Process(proc.pid).children(recursive=True)  # the training processes
        os.kill(proc.pid, sig)
        stderr = proc.communicate(timeout=600)[1]
        assert proc.returncode == code, stderr[-2000:]
        if sig != signal.SIGKILL:
            assert "interrupted: rerun" in stderr, stderr[-2000:]
        _wait_ended(children)
        # the child stopped with its parent, rather than training on to the end
        assert "train_done" not in [r["type"] for r in _lines(progress)[start:]]
        stages = json.loads(fair("report", run, "--json").stdout)["stages"]
        assert [s["status"] for s in stages if s["stage"] == "train"] == ["interrupted"]
    # --stages runs part of the run's plan, which still ends in evaluate: examine scored the untrained student
    assert json.loads(fair("report", run, "--json").stdout)["accuracy_before"] is not None

    out = fair("run", config, "--run-dir", run, "--stages", "train,evaluate")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "round 0 train resumed from its checkpoint at step" in out.stderr
    done = _lines(progress)[-1]
    assert done["type"] == "train_done" and done["step"] == 60 and done["resumed_from"] >= 5
    report = json.loads(fair("report", run, "--json").stdout)
    assert report["accuracy_before"] is not None and report["accuracy_after"] is not None


@pytest.mark.needs_data
@pytest.mark.slow
def test_calls_that_fail_for_good_do_not_redo_what_follows(tmp_path):
    """A teacher whose model the server does not have (404) is stopped at its first answer. A
    rerun tries it again, it fails the same way, so nothing after its calls is redone."""
    student = make_tiny_student(tmp_path / "student")
    run = tmp_path / "run"
    with serve_in_thread() as server:
        config = pipeline_config(tmp_path, server.url, student)
        data = cfg.load(config).model_dump(mode="json", exclude_none=True)
        data["teachers"].append({"name": "gone", "model": "openai/no-such-model", "api_base": server.url})
        data["task"]["train_limit"], data["task"]["test_limit"] = 4, 2
        config.write_text(cfg.dump(cfg.validate(data)))
        first = fair("run", config, "--run-dir", run, "--quiet")
        assert first.returncode == 3, first.stderr[-2000:]  # failed calls: not a success
        last = first.stderr.strip().splitlines()[-1]
        assert last.startswith("fair: error: round 0 explain is partial, "), last
        # why the teacher stopped, and what to fix before the rerun
        assert "teacher gone stopped: HTTP 404" in last and "check teachers.gone.model" in last, last
        sent = server.requests
        again = fair("run", config, "--run-dir", run, "--quiet")
        assert again.returncode == 3, again.stderr[-2000:]
        retried = server.requests - sent
    report = json.loads(fair("report", run, "--json").stdout)
    failed_calls = (
        sqlite3.connect(run / "run.sqlite").execute("SELECT COUNT(*) FROM calls WHERE error IS NOT NULL").fetchone()[0]
    )
    # the rerun asks the stopped teacher again, but stops it at its first 404 (the calls already in
    # flight then, at most its concurrency of 8), and asks no one else anything
    assert report["failures"] > 0 and 0 < retried <= 8 < failed_calls
    assert {s["stage"]: s["status"] for s in report["stages"]} == {
        "examine": "done",
        "explain": "partial",
        "solve": "partial",
        "review": "partial",
        "compile": "done",
        "train": "done",
        "evaluate": "done",
    }
    started = [
        e["stage"]
        for e in map(json.loads, (run / "events.jsonl").read_text().splitlines())
        if e["type"] == "stage_started"
    ]
    assert [started.count(s) for s in ("explain", "compile", "train", "evaluate")] == [2, 1, 1, 1]
