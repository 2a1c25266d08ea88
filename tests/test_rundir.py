"""A run directory across invocations whose configs differ."""

import sqlite3
from contextlib import closing

import pytest

from fair_core import config as cfg
from fair_core.errors import ConfigError, FairError
from fair_core.runs.records import Attempt
from fair_core.runs.rundir import Run
from fair_core.stages import PIPELINE

STAGES = PIPELINE.names()


def finished_round0(path, config):
    run = Run(path, config)
    for stage in STAGES:
        run.store.mark_stage(0, stage, "done", {})
    run.store.add_attempts("after", [Attempt(0, "test", "q1", "4", "4", True)])
    for name in ("checkpoints/step-2", "adapter", "merged"):
        (path / "rounds" / "0" / name).mkdir(parents=True)
    return run


def statuses(run):
    return {row.stage: row.status for row in run.store.stages()}


def test_a_training_setting_redoes_train_and_evaluate_only(tmp_path):
    finished_round0(tmp_path, cfg.validate({})).close()
    run = Run(tmp_path, cfg.validate({"train": {"alpha": 0.3}}))
    assert statuses(run) == {**{s: "done" for s in STAGES[:5]}, "train": "stale", "evaluate": "stale"}
    for name in ("checkpoints", "adapter", "merged"):  # trained with the old alpha
        assert not (tmp_path / "rounds" / "0" / name).exists()
    assert run.store.attempts(0, "test", "after") == []  # scored the old student
    assert run.changes == ["train.alpha changed: round 0 is redone from train (what came before it is kept)"]
    run.close()
    assert cfg.load(tmp_path / "config.toml").train.alpha == 0.3  # the new settings are the run's now


def test_free_keys_change_nothing(tmp_path):
    finished_round0(tmp_path, cfg.validate({})).close()
    run = Run(
        tmp_path,
        cfg.validate({"stages": ["train"], "rounds": 3, "train": {"save_steps": 7, "report_to": ["tensorboard"]}}),
    )
    assert run.changes == [] and set(statuses(run).values()) == {"done"}
    assert (tmp_path / "rounds" / "0" / "checkpoints").exists()
    run.close()


def test_changes_that_stored_results_depend_on_are_refused(tmp_path):
    finished_round0(tmp_path, cfg.validate({})).close()
    for changed in (
        {"student": {"max_new_tokens": 5}},
        {"task": {"train_limit": 3}},
        {"teachers": [{"name": "t", "model": "x"}]},
        {"committee": {"samples": 2}},
    ):
        with pytest.raises(ConfigError, match="differs, and what is stored depends on it"):
            Run(tmp_path, cfg.validate(changed))
    run = Run(tmp_path)  # untouched: still the original config, every stage done
    assert set(statuses(run).values()) == {"done"} and len(statuses(run)) == len(STAGES)
    run.close()


def test_later_rounds_built_on_old_settings_are_refused(tmp_path):
    run = finished_round0(tmp_path, cfg.validate({"rounds": 2}))
    run.store.mark_stage(1, "examine", "done", {})
    run.close()
    with pytest.raises(ConfigError, match="later rounds built on the old settings"):
        Run(tmp_path, cfg.validate({"rounds": 2, "committee": {"threshold": 2}}))


def test_a_change_to_stages_not_run_yet_just_applies(tmp_path):
    run = Run(tmp_path, cfg.validate({}))
    run.store.mark_stage(0, "examine", "done", {})
    run.close()
    run = Run(tmp_path, cfg.validate({"train": {"alpha": 0.3}}))
    assert run.changes == [] and statuses(run) == {"examine": "done"}
    run.close()


def test_a_redo_that_stages_would_leave_half_done_changes_nothing(tmp_path):
    finished_round0(tmp_path, cfg.validate({})).close()
    with pytest.raises(ConfigError, match="redoes round 0 from review, but --stages leaves out review, compile"):
        Run(tmp_path, cfg.validate({"committee": {"threshold": 4}, "stages": ["train", "evaluate"]}))
    run = Run(tmp_path)
    assert set(statuses(run).values()) == {"done"} and run.config.committee.threshold == 3
    assert (tmp_path / "rounds" / "0" / "adapter").exists()
    run.close()


@pytest.mark.parametrize("emptied", ["rows deleted", "file truncated", "file removed"])
def test_an_emptied_store_beside_a_runs_outputs_is_refused(tmp_path, emptied):
    finished_round0(tmp_path, cfg.validate({})).close()
    (tmp_path / "rounds" / "0" / "train.jsonl").write_text('{"rationale": {}}\n')
    db = tmp_path / "run.sqlite"
    if emptied == "rows deleted":
        with closing(sqlite3.connect(db, isolation_level=None)) as con:
            for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                con.execute(f"DELETE FROM {table}")
    else:
        for name in ("run.sqlite-wal", "run.sqlite-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        db.write_bytes(b"") if emptied == "file truncated" else db.unlink()
    left = db.read_bytes() if db.exists() else None
    for config in (None, cfg.validate({}), cfg.validate({"train": {"alpha": 0.3}})):  # resumed, or changed
        with pytest.raises(FairError, match=r"run.sqlite is missing or empty, but .*train.jsonl says a run"):
            Run(tmp_path, config)
    assert (db.read_bytes() if db.exists() else None) == left  # nothing was started afresh in it


def test_a_failed_first_start_without_outputs_still_takes_the_new_config(tmp_path):
    Run(tmp_path, cfg.validate({})).close()
    (tmp_path / "rounds" / "0").mkdir(parents=True)  # a folder made, nothing written in it
    run = Run(tmp_path, cfg.validate({"task": {"train_limit": 3}}))
    assert run.config.task.train_limit == 3
    run.close()


def test_a_torn_last_event_line_is_dropped_before_the_next_is_appended(tmp_path):
    """A kill or a full disk in the middle of an event's line leaves part of it: the next
    invocation's first event must not be glued to it (a reader would lose both)."""
    import json

    from fair_core.runs.events import Message

    run = Run(tmp_path / "run", cfg.RunConfig())
    run.publish(Message("info", "whole"))
    run.close()
    log = tmp_path / "run" / "events.jsonl"
    whole = log.read_bytes()
    log.write_bytes(whole + b'{"type": "message", "level": "in')
    run = Run(tmp_path / "run")
    run.publish(Message("info", "after"))
    run.close()
    lines = log.read_bytes().splitlines()
    assert lines[0] == whole.strip() and [json.loads(x)["text"] for x in lines] == ["whole", "after"]

    # a reader's Run beside a process that holds the run (and may be writing that line) cuts nothing
    import fcntl

    log.write_bytes(log.read_bytes() + b'{"type": "mess')
    with open(tmp_path / "run" / ".lock", "w") as held:
        held.write("1")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        Run(tmp_path / "run").close()
    assert log.read_bytes().endswith(b'{"type": "mess')
