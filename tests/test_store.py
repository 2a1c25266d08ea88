"""The run store: made in one transaction, busy is not damaged, and damaged says what is safe."""

import sqlite3
import subprocess
import sys
from dataclasses import astuple

import pytest
from helpers import REPO, fair
from test_failures import REPLAY, one_line_error

from fair_core import config as cfg
from fair_core.errors import FairError
from fair_core.runs import store as store_module
from fair_core.runs.records import Review, Verdict, Writing
from fair_core.runs.rundir import Run
from fair_core.runs.store import SCHEMA_VERSION, Store

TABLES = {"meta", "items", "attempts", "mistakes", "calls", "writings", "reviews", "verdicts", "failures", "stages"}
TABLES |= {"events", "left_out", "trained"}


def tables(db):
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_half_made_store_with_nothing_in_it_is_made_again(tmp_path):
    db = tmp_path / "run.sqlite"
    with sqlite3.connect(db) as con:  # what a kill -9 in an older fair's creation left: 3 of 13 tables, no row
        con.execute("PRAGMA journal_mode=WAL")
        for statement in store_module.SCHEMA.split(";")[:3]:
            con.execute(statement)
    assert tables(db) == {"meta", "items", "attempts"}
    store = Store(db)
    store.add_failure(0, "review", "7", "gpt", "HTTP 500")
    assert [astuple(r) for r in store.failures()] == [(0, "review", "7", "gpt", "HTTP 500", "")]
    assert store.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    store.close()
    assert tables(db) == TABLES


def test_the_store_is_made_in_one_transaction(tmp_path, monkeypatch):
    db = tmp_path / "run.sqlite"
    monkeypatch.setattr(store_module, "SCHEMA", store_module.SCHEMA + "CREATE TABLE cut_short(;")
    with pytest.raises(FairError):  # a failure at the last statement, as a full disk or a kill would be
        Store(db)
    assert tables(db) == set()  # all of it or none: the next open makes it whole
    monkeypatch.undo()
    Store(db).close()
    assert tables(db) == TABLES


def test_a_missing_table_is_damaged_and_the_advice_keeps_the_run_dir(tmp_path):
    Store(tmp_path / "run.sqlite").close()
    with sqlite3.connect(tmp_path / "run.sqlite") as con:
        con.execute("DROP TABLE failures")
    one_line_error(fair("report", tmp_path), "is damaged (no such table: failures)", "keep", ".recover")
    with pytest.raises(FairError, match=r"is damaged \(no such table: failures\)"):  # the writer too, at once
        Store(tmp_path / "run.sqlite")


@pytest.mark.slow
@pytest.mark.needs_data
def test_a_store_another_process_keeps_locked_is_waited_for_not_damaged(tmp_path):
    data = cfg.load(REPLAY).model_dump(mode="json", exclude_none=True)
    data["task"]["train_limit"] = 3
    run_dir = tmp_path / "run"
    Run(run_dir, cfg.validate(data)).close()  # the store made; then a run starts while another process writes
    holder = sqlite3.connect(run_dir / "run.sqlite", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long transaction or a sqlite3 shell holds it
    proc = subprocess.Popen(
        [sys.executable, "-m", "fair_core.cli", "run", str(REPLAY), "--run-dir", str(run_dir)]
        + ["--stages", "explain", "--set", "task.train_limit=3", "--quiet"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    said = []
    for line in proc.stderr:  # its first write waits past sqlite's 5 s, and says so
        said.append(line)
        if "locked by another process" in line:
            break
    assert said and "waiting" in said[-1], "".join(said)
    report = fair("report", run_dir)  # a reader reads beside the held lock
    assert report.returncode == 0 and "damaged" not in report.stderr, report.stderr
    holder.execute("COMMIT")
    holder.close()
    _, rest = proc.communicate(timeout=300)
    assert proc.returncode == 0, "".join(said) + rest
    with sqlite3.connect(run_dir / "run.sqlite") as con:
        assert con.execute("SELECT status FROM stages WHERE stage = 'explain'").fetchone() == ("done",)
        assert con.execute("SELECT COUNT(*) FROM calls").fetchone()[0] > 0


def test_a_calls_records_are_stored_with_its_key_and_only_writings_and_reviews_are(tmp_path):
    """One typed path for what an answer makes (and a paper file holds): the writing and the review
    keep the key of the call they came from; a record no call makes is refused, nothing stored."""
    store = Store(tmp_path / "run.sqlite")
    store.add_records(
        [Writing(0, "7", "rationale", "gpt#1", "so 4"), Review(0, "7", "rationale", "gpt#1", "cl", "4", 4)], "k"
    )
    store.add_records([Writing(0, "8", "feedback", "gpt", "check the carry")])
    with pytest.raises(TypeError):
        store.add_records([Writing(0, "9", "feedback", "gpt", "x"), Verdict(0, "7", "rationale", "gpt", True, 4.0)])
    keys = store.query("SELECT item_id, teacher, call_key FROM writings ORDER BY item_id")
    assert [tuple(r) for r in keys] == [("7", "gpt#1", "k"), ("8", "gpt", None)]
    assert [tuple(r) for r in store.query("SELECT reviewer, raw, score, call_key FROM reviews")] == [
        ("cl", "4", 4, "k")
    ]
    assert store.writings(0, "rationale") == [Writing(0, "7", "rationale", "gpt#1", "so 4")]
    store.close()
