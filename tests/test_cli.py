"""Bad input tried as a new user would: one clear line on stderr and exit code 2."""

import shutil

import pytest
from helpers import REPO, fair


def one_line_error(out):
    assert out.returncode == 2, (out.returncode, out.stderr)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fair: error: "), out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


def test_missing_data_dir():
    line = one_line_error(fair("data", "svamp", env={"FAIR_DATA_DIR": "/no/such/dir"}))
    assert "/no/such/dir" in line and "FAIR_DATA_DIR" in line


def test_unknown_task(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[task]\nname = "svampp"\n')
    line = one_line_error(fair("run", cfg, "--run-dir", tmp_path / "run"))
    assert "svampp" in line and "svamp" in line.split("known")[1]


def test_misspelled_config_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[committee]\nthreshhold = 3\n")
    line = one_line_error(fair("run", cfg))
    assert "committee.threshhold" in line


def test_wrong_type_and_range(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[committee]\nthreshold = 7\n")
    assert "committee.threshold" in one_line_error(fair("run", cfg))
    cfg.write_text('[train]\nalpha = "half"\n')
    assert "train.alpha" in one_line_error(fair("run", cfg))


def test_the_moved_transport_key_says_where_it_went(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[teachers]]\nname = "gpt"\nmodel = "openai/m"\ntransport = "http"\n')
    line = one_line_error(fair("run", cfg, "--run-dir", tmp_path / "run"))
    assert "options = { transport = 'http' }" in line and "--set teachers.gpt.options.transport=http" in line
    assert not (tmp_path / "run").exists()


def test_an_unknown_transport_is_refused_before_any_call(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[[teachers]]\nname = "gpt"\nmodel = "openai/m"\noptions = { transport = "fast" }\n')
    line = one_line_error(fair("run", cfg, "--run-dir", tmp_path / "run", "--stages", "explain"))
    assert "options.transport is 'fast'" in line and '"http"' in line


def test_a_run_config_written_before_transport_moved_still_loads(tmp_path):
    """Every config.toml fair wrote before holds the old key at its default, which means what no key means."""
    from fair_core import config

    saved = tmp_path / "config.toml"
    saved.write_text('[[teachers]]\nname = "gpt"\nmodel = "openai/m"\ntransport = "auto"\n')
    teacher = config.load(saved).teachers[0]
    assert teacher.options == {} and "transport" not in config.dump(config.load(saved))


def test_corrupt_json_line(tmp_path, data_dir):
    (tmp_path / "gsm8k").mkdir()
    lines = (data_dir / "gsm8k" / "train.jsonl").read_text().splitlines()[:5]
    lines[3] = lines[3][:40]
    (tmp_path / "gsm8k" / "train.jsonl").write_text("\n".join(lines) + "\n")
    shutil.copy(data_dir / "gsm8k" / "test.jsonl", tmp_path / "gsm8k" / "test.jsonl")
    line = one_line_error(fair("data", "gsm8k", env={"FAIR_DATA_DIR": str(tmp_path)}))
    assert "train.jsonl" in line and "4" in line


def test_corrupt_paper_file(tmp_path, paper_dir):
    bad = tmp_path / "Llama-2-7b-chat-hf_svamp_false_round0.json"
    bad.write_text((paper_dir / bad.name).read_text()[:1000])
    line = one_line_error(fair("import-paper", "--run", tmp_path / "run", bad))
    assert bad.name in line


def test_missing_config_file(tmp_path):
    assert "does not exist" in one_line_error(fair("run", tmp_path / "nope.toml"))


def test_a_folder_for_a_config_file(tmp_path):
    assert "is a folder" in one_line_error(fair("run", tmp_path))
    (tmp_path / "config.toml").write_text("")  # what a run directory holds
    line = one_line_error(fair("run", tmp_path))
    assert "is a run directory" in line and f"--run-dir {tmp_path}" in line


def test_no_stages(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    assert "stages: names no stage" in one_line_error(fair("run", cfg, "--stages", "", "--run-dir", tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_limits_below_one():
    for limit in ("0", "-1", "two"):
        out = fair("eval", "--student", "smollm2", "--task", "svamp", "--limit", limit)
        assert out.returncode == 2 and "--limit" in out.stderr and "whole number >= 1" in out.stderr
        assert "Traceback" not in out.stderr


def test_help_lists_the_commands():  # how fast it answers is benchmarks/startup.py's
    out = fair("--help")
    assert out.returncode == 0 and "import-paper" in out.stdout


def test_help_imports_nothing_heavy():
    code = (
        "import sys; from fair_core.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'transformers', 'litellm', 'datasets', 'textual') if m in sys.modules))"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.needs_data
@pytest.mark.slow
def test_a_run_dir_in_use(tmp_path):
    import os

    from fair_core.runs.rundir import RunLock

    cfg = tmp_path / "c.toml"
    cfg.write_text('stages = ["compile"]\n')
    with RunLock(tmp_path / "run"):
        line = one_line_error(fair("run", cfg, "--run-dir", tmp_path / "run"))
    assert f"is in use by another fair process (pid {os.getpid()})" in line
    out = fair("run", cfg, "--run-dir", tmp_path / "run", "--quiet")  # released: it runs
    assert out.returncode == 0, out.stderr


def test_version():
    from importlib.metadata import version

    import fair_core

    out = fair("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"fair {version('fair-distill')}"
    assert fair_core.__version__ == version("fair-distill")  # one source: pyproject.toml


def test_completion_scripts(tmp_path):
    import subprocess

    from fair_core.cli import _actions, build_parser

    commands = next(a.choices for a in _actions(build_parser()) if isinstance(a.choices, dict))
    for shell in ("bash", "zsh", "fish"):
        out = fair("completion", shell)
        assert out.returncode == 0 and out.stdout.strip(), out.stderr
        assert all(c in out.stdout for c in commands), shell
    script = tmp_path / "fair.bash"
    script.write_text(fair("completion", "bash").stdout)
    assert subprocess.run(["bash", "-n", script]).returncode == 0
    # what bash offers after `fair r<TAB>` and `fair run --ev<TAB>`
    probe = (
        f'source {script}; COMP_WORDS=(fair r); COMP_CWORD=1; _shtab_fair; echo "${{COMPREPLY[@]}}"; '
        f'COMP_WORDS=(fair run --ev); COMP_CWORD=2; _shtab_fair; echo "${{COMPREPLY[@]}}"'
    )
    offered = subprocess.run(["bash", "-c", probe], capture_output=True, text=True).stdout.splitlines()
    assert offered == ["run report", "--events"]
    # task names after `fair data` and `fair eval --task`, stage names after --stages
    probe = (
        f'source {script}; COMP_WORDS=(fair data s); COMP_CWORD=2; _shtab_fair; echo "${{COMPREPLY[@]}}"; '
        f'COMP_WORDS=(fair eval --task d); COMP_CWORD=3; _shtab_fair; echo "${{COMPREPLY[@]}}"; '
        f'COMP_WORDS=(fair run x.toml --stages e); COMP_CWORD=4; _shtab_fair; echo "${{COMPREPLY[@]}}"'
    )
    offered = subprocess.run(["bash", "-c", probe], capture_output=True, text=True).stdout.splitlines()
    assert [sorted(o.split()) for o in offered] == [
        ["strategyqa", "svamp"],
        ["dataset"],
        ["evaluate", "examine", "explain"],
    ]


@pytest.mark.needs_data
@pytest.mark.slow
def test_events_to_stdout_are_pure_jsonl(tmp_path):
    import json

    run = tmp_path / "run"
    out = fair(
        "run", REPO / "configs" / "svamp-replay.toml", "--run-dir", run, "--set", "task.train_limit=3", "--events", "-"
    )
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events and all("type" in e and "ts" in e for e in events)
    types = {e["type"] for e in events}
    assert {"stage_started", "stage_progress", "stage_finished", "call_started", "call_done"} <= types
    assert out.stdout == (run / "events.jsonl").read_text()  # the same records as the run's log
    assert f"outputs: {run}" in out.stderr  # the report moved to stderr


@pytest.mark.needs_data
def test_events_to_a_file(tmp_path):
    run, log = tmp_path / "run", tmp_path / "events.jsonl"
    out = fair(
        "run",
        REPO / "configs" / "svamp-replay.toml",
        "--run-dir",
        run,
        "--set",
        "task.train_limit=2",
        "--stages",
        "explain",
        "--events",
        log,
        "--quiet",
    )
    assert out.returncode == 0, out.stderr
    assert log.read_text() == (run / "events.jsonl").read_text() != ""
    assert f"outputs: {run}" in out.stdout


def test_events_to_a_file_that_cannot_be_written(tmp_path):
    line = one_line_error(
        fair(
            "run",
            REPO / "configs" / "svamp-replay.toml",
            "--run-dir",
            tmp_path / "run",
            "--events",
            tmp_path / "no" / "such" / "dir" / "e.jsonl",
        )
    )
    assert "--events" in line and "No such file or directory" in line
    assert not (tmp_path / "run").exists()


def test_a_bad_progress_interval(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('stages = ["compile"]\n')
    out = fair("run", cfg, "--run-dir", tmp_path / "run", env={"FAIR_PROGRESS_EVERY": "soon"})
    assert "FAIR_PROGRESS_EVERY='soon'" in one_line_error(out)
    assert not (tmp_path / "run").exists()


@pytest.mark.needs_data
@pytest.mark.slow
def test_progress_lines_while_a_run_writes_to_a_pipe(tmp_path):
    """Off a terminal (stderr a pipe, as under nohup or CI) a run prints a plain progress line every
    FAIR_PROGRESS_EVERY seconds while a stage works, and one when it ends; no bars. The server
    answers each call after 0.25 s, one at a time, so the stage takes 2 s at the least, and a line
    every 0.05 s must show it on its way."""
    import os
    import re
    import subprocess
    import sys

    from fair_core import config as fair_config
    from fair_core.testing.server import serve_in_thread

    with serve_in_thread(latency=0.25) as server:
        config = fair_config.validate(
            {
                "stages": ["explain"],
                "task": {
                    "name": "svamp",
                    "train_limit": 8,
                    "mistakes_file": "fair-reference/Llama-2-7b-chat-hf_svamp_false_round0.json",
                },
                "teachers": [{"name": "t", "model": "openai/solver", "api_base": server.url, "concurrency": 1}],
            }
        )
        path = tmp_path / "c.toml"
        path.write_text(fair_config.dump(config))
        proc = subprocess.Popen(
            [sys.executable, "-m", "fair_core.cli", "run", str(path), "--run-dir", str(tmp_path / "run")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "FAIR_PROGRESS_EVERY": "0.05"},
            cwd=REPO,
        )
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:  # as the run writes them
            lines.append(line)
            if line.startswith("round 0 explain done"):
                break
        rest = proc.stderr.read()
        assert proc.wait(600) == 0, "".join(lines) + rest
    counts = [re.match(r"round 0 explain: (\d+)/8 calls \(\d+%\)", line) for line in lines]
    working = [int(m[1]) for m in counts if m and int(m[1]) < 8]
    assert len(working) >= 2 and working == sorted(working), lines  # the stage seen on its way, more than once
    assert any(", ETA 0:00:0" in line and "/s" in line for line in lines), lines  # a rate and an ETA once known
    assert lines[-1].startswith("round 0 explain done: calls 8, failed 0; took 0:00:0"), lines
    assert "━" not in "".join(lines) + rest  # no bar drawn at the end either


def test_progress_counts_name_their_split():
    """Round 0's examine answers the train split, then scores the test split: each has its own
    bar, named, so the last one shown is not taken for the train items examined."""
    from fair_core.console import ConsoleSink, progress_line
    from fair_core.runs.events import StageFinished, StageProgress, StageStarted, TrainStep

    sink = ConsoleSink(quiet=True)
    sink(StageStarted("examine", 0))
    sink(StageProgress("examine", 0, 0, 35, "train"))
    sink(StageProgress("examine", 0, 12, 35, "train"))
    assert progress_line(sink.progress.tasks[0]).startswith("round 0 examine train: 12/35 items (34%)")
    sink(StageProgress("examine", 0, 35, 35, "train"))
    sink(StageProgress("examine", 0, 5, 5, "test"))
    sink(StageFinished("examine", 0, {"mistakes": 7}))
    sink(StageStarted("evaluate", 0))
    sink(StageProgress("evaluate", 0, 5, 5, "test"))  # the untrained student, then the trained one
    sink(StageProgress("evaluate", 0, 2, 5, "test"))
    bars = {" ".join(t.description.split()): (t.completed, t.total) for t in sink.progress.tasks}
    assert bars == {"round 0 examine train": (35, 35), "round 0 examine test": (5, 5), "round 0 evaluate test": (2, 5)}
    sink(TrainStep(0, 1, 40, loss=2.5, eta_s=90.0))  # one step: the trainer's own ETA, before any rate
    assert progress_line(sink.progress.tasks[-1]).startswith("round 0 train: 1/40 steps (2%), ETA 0:01:")
