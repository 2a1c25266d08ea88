"""The Python API: a real replayed committee run through fair_core.run, read back through open_run."""

import json
import subprocess
import sys
from dataclasses import asdict

import pytest
from helpers import REPO

from fair_core import load_config, open_run, run
from fair_core.errors import ConfigError, FairError
from fair_core.runs.events import CallDone, StageFinished, StageStarted
from fair_core.runs.records import Attempt
from fair_core.runs.store import Store
from fair_core.stats import accuracy
from fair_core.task import Problem

COMMITTEE = ["explain", "solve", "review", "compile"]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """The paper's recorded SVAMP committee on its first 8 mistakes, run in two calls (explain and
    solve, then the rest) with every event collected."""
    config = load_config(REPO / "configs" / "svamp-replay.toml", ["task.train_limit=8"])
    run_dir = tmp_path_factory.mktemp("api") / "run"
    first, second = [], []
    outcomes = (
        run(config, run_dir, stages=["explain", "solve"], on_event=first.append),
        run(config, run_dir, stages=COMMITTEE, on_event=second.append),
    )
    return run_dir, outcomes, first, second


@pytest.mark.needs_data
def test_run_reports_its_stages_through_the_callback(replayed):
    run_dir, (first, second), first_events, second_events = replayed
    assert first.ok and first.ran == [(0, "explain"), (0, "solve")]
    assert second.ok and second.ran == [(0, "review"), (0, "compile")]  # resumed: explain and solve were done
    for outcome, events in ((first, first_events), (second, second_events)):
        started = [(e.round, e.stage) for e in events if isinstance(e, StageStarted)]
        finished = [(e.round, e.stage) for e in events if isinstance(e, StageFinished)]
        assert started == finished == outcome.ran
    calls = [e for e in first_events if isinstance(e, CallDone)]
    assert len(calls) == 8 * 3 * 2  # 8 mistakes, 3 teachers, feedback and rationale
    assert sum(isinstance(e, CallDone) for e in second_events) == 8 * 3 * 2  # each rationale, by its 2 peers
    assert next(e for e in second_events if isinstance(e, StageFinished) and e.stage == "compile").summary["pairs"] > 0


@pytest.mark.needs_data
def test_a_changed_threshold_is_reported_and_redoes_review_without_calls(tmp_path):
    replay = REPO / "configs" / "svamp-replay.toml"
    assert run(load_config(replay, ["task.train_limit=3"]), tmp_path / "run", stages=COMMITTEE).ok
    events = []
    outcome = run(
        load_config(replay, ["task.train_limit=3", "committee.threshold=4"]),
        tmp_path / "run",
        stages=COMMITTEE,
        on_event=events.append,
    )
    said = "committee.threshold changed: round 0 is redone from review (what came before it is kept)"
    assert outcome.ok and outcome.changes == [said] and outcome.ran == [(0, "review"), (0, "compile")]
    assert [e.text for e in events if e.type == "message"] == [said]
    assert not any(isinstance(e, CallDone) for e in events)  # judged again from the stored scores


@pytest.mark.needs_data
def test_records_and_datasets_read_back_as_stored(replayed):
    run_dir = replayed[0]
    store = Store(run_dir / "run.sqlite")
    try:
        stored = {
            "mistakes": store.mistakes(0),
            "writings": store.writings(0),
            "reviews": store.reviews(0),
            "verdicts": store.verdicts(0),
        }
    finally:
        store.close()
    with open_run(run_dir) as results:
        assert results.rounds == [0] and results.config.task.train_limit == 8
        got = {
            "mistakes": results.mistakes(),
            "writings": results.writings(),
            "reviews": results.reviews(),
            "verdicts": results.verdicts(),
        }
        assert got == stored and len(got["mistakes"]) == 8 and len(got["verdicts"]) == 8 * 3
        assert results.writings(0, "feedback") == [w for w in stored["writings"] if w.kind == "feedback"]
        for kind, records in stored.items():
            rows = results.to_dataset(kind).to_list()
            expected = [asdict(r) for r in records]
            if kind == "mistakes":  # a mistake's extra fields travel as JSON text
                rows = [{**row, "extra": json.loads(row["extra"])} for row in rows]
            assert rows == expected, kind
        assert results.to_dataset("verdicts", round=1).num_rows == 0
        assert results.to_dataset("reviews").features["score"].dtype == "int64"
        with pytest.raises(FairError, match="unknown kind 'calls'"):
            results.to_dataset("calls")
        report = results.report()
        assert report["accepted_rationales"] == sum(v.accepted for v in stored["verdicts"])
        assert results.accuracy() == {"before": None, "after": None, "paired_test": None}  # nothing evaluated


def test_accuracy_is_the_reports_before_and_after_with_intervals(tmp_path):
    """Scores stored as the examine and evaluate stages store them read back with their 95% intervals."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    store = Store(run_dir / "run.sqlite")
    try:
        store.set_items("test", [Problem(str(i), f"q{i}", "1") for i in range(10)])
        store.add_attempts("before", [Attempt(0, "test", str(i), "", "1", i < 3) for i in range(10)])
        store.add_attempts("after", [Attempt(0, "test", str(i), "", "1", i < 6) for i in range(10)])
    finally:
        store.close()
    with open_run(run_dir) as results:
        got = results.accuracy()
    assert got["before"] == accuracy(3, 10) and got["after"] == accuracy(6, 10)
    assert got["before"]["ci95"][0] < 0.3 < got["before"]["ci95"][1]
    assert got["paired_test"]["gained"] == 3 and got["paired_test"]["lost"] == 0


def test_mistakes_the_user_can_fix_raise_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="train.alhpa"):
        load_config(None, ["train.alhpa=0.3"])
    with pytest.raises(ConfigError, match="unknown stage 'teach'"):
        run(REPO / "configs" / "svamp-replay.toml", tmp_path / "run", stages=["teach"])
    with pytest.raises(FairError, match="no teachers configured"):
        run(load_config(), tmp_path / "run", stages=["explain"])
    assert not (tmp_path / "run").exists()
    with pytest.raises(FairError, match="not a run directory"):
        open_run(tmp_path)


def test_import_fair_core_stays_light():
    """The API is re-exported lazily: importing the package loads none of the engine."""
    code = (
        "import sys, fair_core; assert 'fair_core.api' not in sys.modules and 'pydantic' not in sys.modules; "
        "from fair_core import open_run, Outcome; assert open_run.__module__ == 'fair_core.api'"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


@pytest.mark.needs_data
def test_a_control_cancels_a_run_from_outside_and_the_run_resumes(tmp_path):
    """What the TUI does with a Control: a cancel stops the run after what is in flight; the run
    stays resumable, and a fresh Control carries on where it stopped."""
    from fair_core.api import Control

    config = load_config(REPO / "configs" / "svamp-replay.toml", ["task.train_limit=3"])
    control = Control()
    control.cancel()  # before the run starts: it stops as it starts
    stopped = run(config, tmp_path / "run", stages=COMMITTEE, control=control)
    assert stopped.ran == [] and not stopped.ok and "rerun" in stopped.advice

    control, seen = Control(), []

    def cancel_after_explain(e):
        seen.append(e)
        if isinstance(e, StageFinished) and e.stage == "explain":
            control.cancel()

    cancelled = run(config, tmp_path / "run", stages=COMMITTEE, on_event=cancel_after_explain, control=control)
    assert cancelled.ran == [(0, "explain")] and not cancelled.ok
    resumed = run(config, tmp_path / "run", stages=COMMITTEE, control=Control())
    assert resumed.ok and resumed.ran == [(0, "solve"), (0, "review"), (0, "compile")]
