"""Stages are declared: a stage written here, outside the package, joins the pipeline with one
call, then runs, resumes, and shows in `fair report` and on the TUI's pipeline screen as a
built-in stage does, with no other file touched. The run is the paper's replayed SVAMP committee
on 3 mistakes (no model, no key, a few seconds)."""

import json
import sys

import pytest
from helpers import REPO, pipeline_screen

from fair_core import cli, load_config, run
from fair_core.errors import FairError
from fair_core.host import get_host
from fair_core.runs.events import CallDone
from fair_core.runs.rundir import REDO_FROM
from fair_core.runs.store import StageStatus, Store
from fair_core.stages import PIPELINE, Context, Need, Stage
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
    assert get_host().pipeline.ordered(load_config(None).stages) == [
        "examine",
        "explain",
        "solve",
        "review",
        "compile",
        "summarise",
        "train",
        "evaluate",
    ]  # a config that leaves stages out runs every stage of the pipeline, the new one too
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


def test_each_stage_reads_the_rounds_records_once(tmp_path, server, monkeypatch):
    """A committee round reads its mistakes and writings once per stage that uses them (explain,
    solve, review, compile), and review its reviews once (it judges the new ones with them): a
    round of 16k mistakes is never loaded twice by one stage. Echo teachers, a small mistakes
    file: no data."""
    reads: dict[tuple[str, str], int] = {}
    for name in ("mistakes", "writings", "reviews", "verdicts"):
        real = getattr(Store, name)

        def counted(store, *args, _real=real, _name=name, **kwargs):
            frame = sys._getframe(1)  # the stage module that asked, by the code that runs
            while frame and not frame.f_globals["__name__"].startswith("fair_core.stages."):
                frame = frame.f_back
            key = (frame.f_globals["__name__"].rsplit(".", 1)[1] if frame else "", _name)
            reads[key] = reads.get(key, 0) + 1
            return _real(store, *args, **kwargs)

        monkeypatch.setattr(Store, name, counted)
    mistakes = tmp_path / "sums_svamp_false_round0.json"
    wrong = {"gold_answer": "7", "student_wrong_pred": "5", "student_wrong_final_answer": "5"}
    mistakes.write_text(json.dumps([{"id": i, "question": f"What is {i} plus 3?", **wrong} for i in range(3)]))
    teachers = "".join(
        f'[[teachers]]\nname = "t{i}"\nbackend = "litellm"\nmodel = "openai/echo"\napi_base = "{server.url}"\n'
        f"max_retries = 0\nparams = {{ temperature = 0.{i} }}\n"
        for i in range(2)
    )
    stages = ["explain", "solve", "review", "compile"]
    path = tmp_path / "sums.toml"
    path.write_text(f'stages = {json.dumps(stages)}\n[task]\nname = "svamp"\nmistakes_file = "{mistakes}"\n{teachers}')
    result = run(load_config(path), tmp_path / "run")
    assert result.ok and result.ran == [(0, s) for s in stages]
    assert reads == {
        ("explain", "mistakes"): 1,
        ("explain", "writings"): 1,
        ("solve", "mistakes"): 1,
        ("solve", "writings"): 1,
        ("review", "mistakes"): 1,
        ("review", "writings"): 1,
        ("review", "reviews"): 1,
        ("compile", "mistakes"): 1,
        ("compile", "writings"): 1,
        ("compile", "verdicts"): 1,
    }
