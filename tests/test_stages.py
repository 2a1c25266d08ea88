"""Stages are declared: a stage written here, outside the package, joins the pipeline with one
call, then runs, resumes, and shows in `fair report` and on the TUI's pipeline screen as a
built-in stage does, with no other file touched. The run is the paper's replayed SVAMP committee
on 3 mistakes (no model, no key, a few seconds)."""

import json

import pytest
from helpers import REPO, pipeline_screen

from fair_core import cli, load_config, run
from fair_core.errors import FairError
from fair_core.events import CallDone
from fair_core.rundir import REDO_FROM
from fair_core.stages import PIPELINE, Context, Need, Stage
from fair_core.store import StageStatus
from fair_tui.screens.pipeline import STATUS_STYLE

STAGES = ["explain", "solve", "review", "compile", "summarise"]
summarised: list[int] = []  # the rounds summarise ran in


def summarise(ctx: Context) -> dict:
    """A no-op stage: counts the round's mistakes, writes nothing."""
    summarised.append(ctx.round)
    return {"items": len(ctx.store.mistakes(ctx.round))}


SUMMARISE = Stage("summarise", summarise, Need.NOTHING, reads="mistakes", writes="nothing")


@pytest.fixture
def with_summarise(monkeypatch):
    """The pipeline with summarise after compile, for one test (monkeypatch puts the built-in
    stages back after it)."""
    monkeypatch.setattr(PIPELINE, "stages", dict(PIPELINE.stages))
    PIPELINE.add(SUMMARISE, after="compile")
    summarised.clear()


@pytest.mark.needs_data  # the replay config reads the paper's files
def test_a_new_stage_runs_resumes_and_shows_in_the_report_and_the_tui(with_summarise, tmp_path, capsys):
    assert load_config(None).stages == [
        "examine",
        "explain",
        "solve",
        "review",
        "compile",
        "summarise",
        "train",
        "evaluate",
    ]  # the config's default reads the pipeline
    with pytest.raises(FairError, match="exists already"):
        PIPELINE.add(SUMMARISE, after="review")

    config = load_config(REPO / "configs" / "svamp-replay.toml", ["task.train_limit=3", f"stages={json.dumps(STAGES)}"])
    run_dir = tmp_path / "run"
    first = run(config, run_dir)
    assert first.ok and first.ran == [(0, s) for s in STAGES] and summarised == [0]
    events = []
    second = run(config, run_dir, on_event=events.append)  # resumed: everything is done
    assert second.ok and second.ran == [] and summarised == [0]
    assert not any(isinstance(e, CallDone) for e in events)

    assert cli.main(["report", str(run_dir), "--json"]) == 0
    stages = json.loads(capsys.readouterr().out)["stages"]
    assert [(s["stage"], s["status"]) for s in stages] == [(s, "done") for s in STAGES]
    assert cli.main(["report", str(run_dir)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "round 0 stages: explain done, solve done, review done, compile done, summarise done" in text

    names, state = pipeline_screen(run_dir, "summarise")
    assert names == STAGES and "done" in state


def test_statuses_read_as_stored_and_each_has_a_style():
    # the strings the stages table has always held: older run.sqlite files read the same
    assert {str(s) for s in StageStatus} == {
        "pending",
        "running",
        "done",
        "partial",
        "failed",
        "cancelled",
        "interrupted",
        "stale",
    }
    assert set(StageStatus) <= STATUS_STYLE.keys()
    assert set(REDO_FROM.values()) <= set(PIPELINE.names())


def test_the_architecture_doc_lists_every_stage_with_what_it_needs():
    doc = (REPO / "docs" / "architecture.md").read_text()
    for stage in PIPELINE:
        assert f"| `{stage.name}` | {stage.needs} | {'yes' if stage.is_async else 'no'} |" in doc, stage.name
