"""Failures that cannot hide: damaged run dirs, typos caught before anything is written, the run
lock on import-paper, and what a failed command says."""

import fcntl
import json
import os
import sqlite3
from dataclasses import astuple
from pathlib import Path

import pytest
from conftest import PAPER
from helpers import REPO, fair

from fair_core import config as cfg
from fair_core.runs.rundir import Run
from fair_core.runs.store import SCHEMA_VERSION

REPLAY = REPO / "configs" / "svamp-replay.toml"
PAPER_FILES = [PAPER / f"Llama-2-7b-chat-hf_svamp_{kind}_round0.json" for kind in ("false", "feedback", "rationale")]


def one_line_error(out, *words):
    """Exit 2, and stderr is one line that names ``words``."""
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("fair: error: "), out.stderr[-2000:]
    assert all(w in lines[0] for w in words), lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A small finished committee run on the recorded committee, made once."""
    run = tmp_path_factory.mktemp("failures") / "run"
    out = fair(
        "run", REPLAY, "--run-dir", run, "--stages", "explain,solve,review", "--set", "task.train_limit=3", "--quiet"
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return run


@pytest.fixture
def replay_run(finished_run, tmp_path):
    """This test's own copy of it, to damage as it likes."""
    import shutil

    return Path(shutil.copytree(finished_run, tmp_path / "run", ignore=shutil.ignore_patterns(".lock")))


@pytest.mark.needs_data
def test_a_truncated_store_is_one_line_for_every_command(replay_run):
    db = replay_run / "run.sqlite"
    with sqlite3.connect(db) as con:  # fold the WAL in, so the file holds everything
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    for args in (("report", replay_run), ("run", REPLAY, "--run-dir", replay_run, "--stages", "explain")):
        one_line_error(fair(*args), str(db), "damaged", "new --run-dir")


@pytest.mark.needs_data
def test_an_empty_store_is_never_a_silent_fresh_start(replay_run):
    (replay_run / "run.sqlite").write_bytes(b"")
    for name in ("run.sqlite-wal", "run.sqlite-shm"):
        (replay_run / name).unlink(missing_ok=True)
    out = fair("run", REPLAY, "--run-dir", replay_run, "--stages", "explain", "--set", "task.train_limit=3")
    one_line_error(out, "run.sqlite is missing or empty", "config.toml")
    assert (replay_run / "run.sqlite").stat().st_size == 0  # nothing was paid again into it


@pytest.mark.needs_data
def test_a_store_from_a_newer_fair_is_refused(replay_run):
    with sqlite3.connect(replay_run / "run.sqlite") as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    one_line_error(fair("report", replay_run), "newer fair", "upgrade")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere: permissions cannot be tested")
@pytest.mark.needs_data
def test_a_read_only_run_reports_and_refuses_to_run(replay_run):
    os.chmod(replay_run, 0o555)
    try:
        out = fair("report", replay_run)
        assert out.returncode == 0 and "accepted" in out.stdout, out.stderr[-2000:]
        one_line_error(fair("run", REPLAY, "--run-dir", replay_run, "--stages", "explain"), "not writable")
    finally:
        os.chmod(replay_run, 0o755)


@pytest.mark.needs_data
def test_a_missing_mistakes_file_is_caught_before_the_run_dir_exists(tmp_path):
    out = fair("run", REPLAY, "--run-dir", tmp_path / "run", "--set", 'task.mistakes_file="fair-reference/nope.json"')
    one_line_error(out, "task.mistakes_file 'fair-reference/nope.json' does not exist")
    assert not (tmp_path / "run").exists()


@pytest.mark.needs_data
def test_a_run_dir_a_failed_first_start_left_takes_the_corrected_config(tmp_path):
    data = cfg.load(REPLAY).model_dump(mode="json", exclude_none=True)
    data["task"]["train_limit"] = 2
    Run(tmp_path / "run", cfg.validate(data)).close()  # written, then nothing stored
    out = fair(
        "run", REPLAY, "--run-dir", tmp_path / "run", "--stages", "explain", "--set", "task.train_limit=3", "--quiet"
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert cfg.load(tmp_path / "run" / "config.toml").task.train_limit == 3


@pytest.mark.needs_data
@pytest.mark.slow
def test_import_paper_checks_its_files_takes_the_lock_and_does_not_mix_committees(tmp_path, replay_run):
    bad = tmp_path / "Llama-2-7b-chat-hf_svamp_false_round0.json"
    bad.write_text("{not json")
    one_line_error(fair("import-paper", "--run", tmp_path / "new", bad), "not valid JSON")
    assert not (tmp_path / "new").exists()

    # a run another fair process is driving
    with open(replay_run / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        one_line_error(fair("import-paper", "--run", replay_run, *PAPER_FILES), "in use by another fair process")
    # a run with its own committee's records: only when asked for
    one_line_error(
        fair("import-paper", "--run", replay_run, *PAPER_FILES), "already holds committee records", "--merge"
    )
    assert fair("import-paper", "--run", replay_run, *PAPER_FILES, "--merge").returncode == 0
    # importing the same files again is what it was: allowed
    assert fair("import-paper", "--run", tmp_path / "paper", *PAPER_FILES).returncode == 0
    assert fair("import-paper", "--run", tmp_path / "paper", *PAPER_FILES).returncode == 0


# `fair import-paper`, killed (SIGKILL) as soon as its first batch of writings is stored
KILLED_IMPORT = """
import os, signal, sys
from fair_core.runs.store import Store
stored = Store.add_records
def add_records(self, *args, **kwargs):
    stored(self, *args, **kwargs)
    os.kill(os.getpid(), getattr(signal, os.environ["KILL_WITH"]))
Store.add_records = add_records
from fair_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


def committee_rows(run: Path) -> dict:
    with sqlite3.connect(run / "run.sqlite") as con:
        return {t: sorted(con.execute(f"SELECT * FROM {t}")) for t in ("mistakes", "writings", "reviews", "verdicts")}


@pytest.mark.needs_data
@pytest.mark.parametrize("signal", ["SIGKILL", "SIGINT"])
def test_an_import_killed_midway_is_taken_up_again_by_the_same_command(tmp_path, signal):
    import os
    import subprocess
    import sys

    run = tmp_path / "cut"
    cut = subprocess.run(
        [sys.executable, "-c", KILLED_IMPORT, "import-paper", "--run", str(run), *map(str, PAPER_FILES)],
        cwd=REPO,
        capture_output=True,
        env={**os.environ, "KILL_WITH": signal},
    )
    if signal == "SIGKILL":
        assert cut.returncode == -9
    else:  # Ctrl-C: one line that says a rerun resumes it
        assert cut.returncode == 130
        assert cut.stderr.decode().strip().splitlines() == [
            "fair: error: interrupted: rerun the same command to resume"
        ]
    out = fair("import-paper", "--run", run, *PAPER_FILES)
    assert out.returncode == 0, out.stderr[-2000:]
    assert fair("import-paper", "--run", tmp_path / "whole", *PAPER_FILES).returncode == 0
    assert committee_rows(run) == committee_rows(tmp_path / "whole")


# `fair run` sent SIGTERM from inside a committee worker task's step (as a job scheduler's stop
# lands while a task runs), once its first call is done
TERMINATED_IN_A_TASK = """
import os, signal, sys
from fair_core.runs.events import StageProgress
from fair_core.runs.rundir import Run
published = Run.publish
def publish(self, event):
    if isinstance(event, StageProgress) and event.done == 1:  # a worker's, not the stage's start
        os.kill(os.getpid(), signal.SIGTERM)
    published(self, event)
Run.publish = publish
from fair_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.needs_data
def test_sigterm_inside_a_task_is_one_line_and_the_run_resumes(tmp_path):
    import subprocess
    import sys

    run = tmp_path / "run"
    args = ["run", str(REPLAY), "--run-dir", str(run), "--stages", "explain", "--set", "task.train_limit=3"]
    cut = subprocess.run([sys.executable, "-c", TERMINATED_IN_A_TASK, *args, "--quiet"], cwd=REPO, capture_output=True)
    assert cut.returncode == 143
    assert cut.stderr.decode().strip().splitlines() == ["fair: error: interrupted: rerun the same command to resume"]
    out = fair(*args, "--quiet")
    assert out.returncode == 0, out.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.needs_data
def test_a_plugin_that_returns_the_wrong_type_fails_its_calls_not_the_run(tmp_path, paper_dir):
    from committee_setup import committee_config, paper_mistakes
    from test_host import make_dist

    from fair_core.testing.server import serve_in_thread

    make_dist(
        tmp_path,
        "fair_wordy",
        """
        from fair_core.hookspecs import hookimpl

        @hookimpl
        def register_reviewers(register):
            register("wordy", lambda text: "five", kind="parser")
    """,
    )
    env = {"PYTHONPATH": str(tmp_path)}
    mistakes = paper_mistakes(paper_dir, tmp_path, 5)
    with serve_in_thread() as server:
        config = committee_config(tmp_path, server.url, mistakes, committee={"parser": "wordy"})
        out = fair("run", config, "--run-dir", tmp_path / "run", "--quiet", env=env)
        assert out.returncode == 3, out.stderr[-2000:]
        with sqlite3.connect(tmp_path / "run" / "run.sqlite") as con:
            reasons = {r for (r,) in con.execute("SELECT reason FROM failures")}
        assert reasons == {"score parser 'wordy' returned 'five' (str); expected an int (1..5 counts) or None"}
        report = fair("report", tmp_path / "run", "--json", env=env)  # the run stays readable
        assert report.returncode == 0, report.stderr[-2000:]
        with sqlite3.connect(tmp_path / "run" / "run.sqlite") as con:
            failed = con.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
            assert con.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] == 0
        assert json.loads(report.stdout)["failures"] == failed > 0
        sent = server.requests
        # the parser fixed (the built-in one), the rerun reads the stored answers: nothing is asked again
        fixed = fair("run", config, "--run-dir", tmp_path / "run", "--quiet", "--set", 'committee.parser="paper"')
        assert fixed.returncode == 0, fixed.stderr[-2000:]
        assert server.requests == sent


def test_a_store_made_by_an_older_fair_opens_and_is_migrated(tmp_path):
    from fair_core.runs.store import Store

    db = tmp_path / "run.sqlite"
    with sqlite3.connect(db) as con:  # the tables as fair 0.1 made them, version 0
        con.executescript(
            "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
            "CREATE TABLE failures(round INTEGER, stage TEXT, item_id TEXT, teacher TEXT, reason TEXT,"
            " PRIMARY KEY(round, stage, item_id, teacher));"
            "INSERT INTO failures VALUES (0, 'review', '7', 'gpt', 'HTTP 500');"
        )
    store = Store(db)
    store.add_failure(0, "review", "7", "gpt", "HTTP 500", about="gemini")  # a second author: a second row
    assert [astuple(r) for r in store.failures(0)] == [
        (0, "review", "7", "gpt", "HTTP 500", ""),
        (0, "review", "7", "gpt", "HTTP 500", "gemini"),
    ]
    assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION and store.left_out() == {}
    store.close()


@pytest.mark.needs_data
def test_missing_data_is_caught_before_the_run_dir_exists(tmp_path):
    out = fair("run", REPLAY, "--run-dir", tmp_path / "run", "--set", f'task.data_dir="{tmp_path / "nothing"}"')
    one_line_error(out, "nothing")
    assert not (tmp_path / "run").exists()
