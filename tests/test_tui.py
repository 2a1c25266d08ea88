"""The terminal UI, driven by Textual pilots over real runs.

The committee and results paths use the replay config (the FAIR paper's recorded committee: ~4 s,
no model, no key). The quit-and-resume test talks to the local OpenAI-compatible server through the
litellm teacher, and counts what the server received. Snapshots are taken at 100x30 of runs whose
content is deterministic; set FAIR_SCREENSHOTS=<folder> to also write the docs' SVG screenshots.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console
from textual.content import Content
from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input

from fair_core import cli
from fair_core import config as cfg
from fair_core.host import get_host
from fair_core.runner import Runner
from fair_core.runs.events import Message, StageFinished, StageProgress, StageStarted, TrainStep
from fair_core.runs.rundir import Run, lock_holder
from fair_core.runs.store import StageStatus
from fair_core.testing.server import serve_in_thread
from fair_core.testing.tiny import make_tiny_student
from fair_tui.app import FairApp
from fair_tui.screens import runs as runs_screen
from fair_tui.screens.committee import detail, load_item
from fair_tui.screens.quit import QuitScreen
from fair_tui.screens.setup import Field, TeacherForm, error_key

ROOT = Path(__file__).resolve().parents[1]
REPLAY = ROOT / "configs" / "svamp-replay.toml"
COMMITTEE = ["explain", "solve", "review"]
SIZE = (100, 30)
WIDE = (120, 34)  # the docs' screenshots: wide enough for side-by-side panes
SCREENSHOTS = Path(os.environ["FAIR_SCREENSHOTS"]).resolve() if os.environ.get("FAIR_SCREENSHOTS") else None


def replay_config() -> cfg.RunConfig:
    return cfg.load(REPLAY).model_copy(update={"stages": COMMITTEE})


def text_of(renderable, width: int = 100) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def shown(app, selector: str) -> str:
    """The text a widget shows (markup removed)."""
    content = app.screen.query_one(selector).content
    return Content.from_markup(content).plain if isinstance(content, str) else text_of(content)


async def until(pilot, check, timeout: float = 600.0, step: float = 0.05) -> None:
    """Return once ``check()`` holds; the timeout only stops a hung test."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {check.__code__.co_names}")
        await pilot.pause(step)


def shoot(app, name: str) -> None:
    if SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        app.save_screenshot(f"{name}.svg", path=str(SCREENSHOTS))


@pytest.fixture(scope="module")
def replay_root(tmp_path_factory) -> Path:
    """A folder holding runs/replay: the replay committee run, finished, plus a training log."""
    root = tmp_path_factory.mktemp("tui")
    run = Run(root / "runs" / "replay", replay_config())
    try:
        Runner(run, get_host()).run()
    finally:
        run.close()
    steps = [
        {
            "type": "train_step",
            "step": s,
            "max_steps": 40,
            "epoch": round(s / 20, 4),
            "loss": round(2.4 * 0.93**s + 0.3, 5),
            "loss_feedback": round(2.1 * 0.94**s + 0.35, 5),
            "loss_rationale": round(2.7 * 0.92**s + 0.25, 5),
            "learning_rate": 2e-4 * (1 - s / 40),
            "tokens_per_second": 1850.0,
            "samples_per_second": 3.2,
            "memory_mb": 2150.0,
            "eta_s": float(40 - s) * 1.5,
        }
        for s in range(1, 31)
    ]
    progress = root / "runs" / "replay" / "rounds" / "0" / "progress.jsonl"
    progress.parent.mkdir(parents=True, exist_ok=True)
    progress.write_text("".join(json.dumps(s) + "\n" for s in steps))
    return root


# -- setup --------------------------------------------------------------------------------------------


def test_error_key_names_the_field():
    assert error_key("config error: committee.threshold: Input should be <= 5 (got 7)") == "committee.threshold"
    assert error_key("config error: unknown key 'train.alhpa': check its spelling") == "train.alhpa"
    assert error_key("config error: missing key 'teachers.0.name'") == "teachers.0.name"


@pytest.mark.slow
def test_setup_validates_live_and_saves_what_the_cli_reads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def scenario():
        app = FairApp(None)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            setup = app.screen
            assert setup.NAME == "setup"

            def field(key: str) -> Field:
                return next(f for f in setup.query(Field) if f.key == key)

            # a wrong value: the pydantic error appears under the field it names, and saving refuses
            field("committee.threshold").editor.value = "7"
            await until(pilot, lambda: field("committee.threshold").error)
            assert "less than or equal to 5" in field("committee.threshold").error
            assert field("committee.threshold").has_class("-invalid")
            assert "committee.threshold" in shown(app, "#status")
            field("file").editor.value = "configs/mine.toml"
            await pilot.press("ctrl+s")
            assert not (tmp_path / "configs" / "mine.toml").exists()
            field("committee.threshold").editor.value = "3.5"
            await until(pilot, lambda: not field("committee.threshold").error and setup.config is not None)

            # two teachers, typed as a user would; then one removed
            for _ in range(2):
                await pilot.press("ctrl+t")
                await pilot.pause()
            await until(pilot, lambda: len(setup.query(TeacherForm)) == 2)
            first, second = setup.query(TeacherForm)
            first.fields[2].editor.focus()
            await pilot.press(*"openai/gpt-4o-mini")
            values = {"api_key_env": "OPENAI_API_KEY", "rpm": "60", "concurrency": "4"}
            for f in first.fields:
                if f.key in values:
                    f.editor.value = values[f.key]
            second.fields[0].editor.value = first.fields[0].editor.value  # duplicate name: refused
            await until(pilot, lambda: setup.config is None)
            assert "used twice" in shown(app, "#status")
            second.query_one(".remove-teacher").focus()
            await pilot.press("enter")
            await until(pilot, lambda: len(setup.query(TeacherForm)) == 1 and setup.config is not None)

            field("committee.policy").editor.value = "median"
            field("committee.review_feedback").editor.value = True
            field("committee.budget_usd").editor.value = "5"
            field("train.alpha").editor.value = "0.3"
            field("train.epochs").editor.value = "2"
            field("rounds").editor.value = "2"
            field("stages").editor.value = "explain, solve, review, compile"
            await pilot.pause(0.3)
            await pilot.press("ctrl+s")
            saved = tmp_path / "configs" / "mine.toml"
            assert saved.exists()
            return setup.config, saved

    config, saved = asyncio.run(scenario())
    loaded = cfg.load(saved)
    assert loaded == config
    t = loaded.teachers[0]
    assert (t.name, t.model, t.api_key_env, t.rpm, t.concurrency) == (
        "teacher1",
        "openai/gpt-4o-mini",
        "OPENAI_API_KEY",
        60,
        4,
    )
    c = loaded.committee
    assert (c.threshold, c.policy, c.review_feedback, c.budget_usd) == (3.5, "median", True, 5)
    assert (loaded.train.alpha, loaded.train.epochs, loaded.rounds) == (0.3, 2, 2)
    assert loaded.stages == ["explain", "solve", "review", "compile"]
    assert "OPENAI_API_KEY" in saved.read_text() and "sk-" not in saved.read_text()


@pytest.mark.slow
def test_setup_keeps_keys_it_does_not_show(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = cfg.RunConfig.model_validate(
        {
            "task": {"prompts": {"solve": "Solve: {question}"}},
            "teachers": [{"name": "a", "model": "openai/x", "params": {"temperature": 0.2}, "options": {"k": 1}}],
            "train": {"lora_r": 4},
        }
    )
    path = tmp_path / "in.toml"
    path.write_text(cfg.dump(data))

    async def scenario():
        app = FairApp(str(path))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.screen.NAME == "setup" and app.screen.config is not None)
            assert app.screen.config == data
            await pilot.press("ctrl+s")

    asyncio.run(scenario())
    assert cfg.load(path) == data


@pytest.mark.slow
def test_esc_on_setup_leaves_the_field_so_number_keys_switch_screens(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def scenario():
        app = FairApp(None)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            setup = app.screen
            file_field = setup.query_one("#f-file", Input)
            file_field.focus()
            await pilot.press("end", "3")  # in a field, a digit is typed
            assert app.screen is setup and file_field.value == "run.toml3"
            await pilot.press("backspace", "escape", "3")
            await pilot.pause()
            assert app.screen.NAME == "pipeline" and file_field.value == "run.toml"

    asyncio.run(scenario())


@pytest.mark.slow
def test_quitting_with_unsaved_setup_edits_asks_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mine.toml"
    path.write_text(cfg.dump(cfg.validate({})))

    async def quit_after_editing(answer: str) -> None:
        app = FairApp(str(path))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.screen.NAME == "setup" and app.screen.config is not None)
            setup = app.screen
            assert not setup.unsaved()
            next(f for f in setup.query(Field) if f.key == "train.alpha").editor.value = "0.3"
            assert setup.unsaved()
            await pilot.press("ctrl+q")
            assert isinstance(app.screen, QuitScreen)
            await pilot.press("escape")  # stay
            assert app.screen is setup and app.is_running
            await pilot.press("ctrl+q")
            await pilot.click(f"#{answer}")
            await until(pilot, lambda: not app.is_running)

    asyncio.run(quit_after_editing("discard"))
    assert cfg.load(path).train.alpha == cfg.RunConfig().train.alpha
    asyncio.run(quit_after_editing("save"))
    assert cfg.load(path).train.alpha == 0.3


# -- a run started from the UI, watched, then browsed ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.needs_data
def test_run_from_the_ui_then_browse_committee_and_results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "replay.toml").write_text(cfg.dump(replay_config()))

    async def scenario():
        app = FairApp("replay.toml")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.screen.NAME == "setup" and app.screen.config is not None)
            await pilot.press("ctrl+r")  # save and run
            await until(pilot, lambda: app.session is not None and app.session.live.done > 0)
            assert app.screen.NAME == "pipeline"
            s = app.session
            seen = [s.live.done]
            while s.state == "running":
                await pilot.pause(0.1)
                seen.append(s.live.done)
            assert s.state == "finished", s.error
            assert len(set(seen)) >= 3 and seen == sorted(seen)  # progress advanced, step by step
            await pilot.pause(0.1)
            assert [(r.stage, r.status) for r in s.run.store.stages()] == [(st, "done") for st in COMMITTEE]
            assert s.live.done + s.live.cached == 4644 and s.live.failed == 0 and s.live.in_flight == 0
            assert "2322/2322" in shown(app, "#count-review") and "done" in shown(app, "#state-review")
            log = "\n".join(line.text for line in app.screen.query_one("#log").lines)
            assert "round 0 review finished: calls 2322, failed 0, accepted 826, rejected 335" in log

            # the committee: filter, then browse one item's reviews
            await pilot.press("4")
            committee = app.screen
            await until(pilot, lambda: committee.NAME == "committee" and len(committee.shown_items) == 387)
            committee.query_one("#filter").value = "no rationale"
            await until(pilot, lambda: len(committee.shown_items) == 22)
            assert "22 of 387" in shown(app, "#committee-title")
            committee.query_one("#filter").value = "accepted from gpt"
            await until(pilot, lambda: len(committee.shown_items) == 286)
            committee.query_one("#filter").value = "all"
            await until(pilot, lambda: len(committee.shown_items) == 387)
            committee.query_one("#mistakes").focus()
            await pilot.press("down")
            item = load_item(s.run.store, 0, list(committee.shown_items)[1])  # the second row, in full
            want = text_of(detail(item, ["gpt", "gemini", "mistral"]))
            await until(pilot, lambda: shown(app, "#detail") == want)
            text = shown(app, "#detail")
            assert " ".join(item.mistake.question.split()[:4]) in " ".join(text.split())
            assert "rationale reviews (author × reviewer)" in text
            assert len(item.reviews) == 6 and len(item.verdicts) == 3
            for v in item.verdicts.values():
                scores = [r.score for r in item.reviews.values() if r.author == v.author]
                assert len(scores) == 2 and v.value == sum(scores) / 2

            # results: the report of the run
            await pilot.press("6")
            await until(pilot, lambda: "Committee" in shown(app, "#report"))
            report = shown(app, "#report")
            assert "826 accepted rationales" in report and "22 items without one" in report
            assert "286/387" in report
            await pilot.press("5")
            await until(pilot, lambda: "no training steps yet" in shown(app, "#train-title"))
            await pilot.press("q")
        return app.return_code

    assert asyncio.run(scenario()) == 0


# -- pause, resume, and quitting mid-way: `fair run` finishes the run with nothing sent twice ---------------


@pytest.mark.slow
@pytest.mark.needs_data
def test_pause_resume_quit_mid_review_then_fair_run_finishes_without_repeats(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with serve_in_thread(latency=0.1) as server:
        models = ("solver", "noisy-0.3", "noisy-0.6")
        config = cfg.validate(
            {
                "stages": COMMITTEE,
                "task": {"name": "svamp", "train_limit": 20, "mistakes_file": replay_config().task.mistakes_file},
                "teachers": [
                    {
                        "name": m.replace("-0.", "-"),
                        "backend": "litellm",
                        "model": f"openai/{m}",
                        "api_base": server.url,
                        "concurrency": 2,
                        "params": {"temperature": 0},
                    }
                    for m in models
                ],
            }
        )
        (tmp_path / "local.toml").write_text(cfg.dump(config))
        run_dir = tmp_path / "runs" / "local"
        Run(run_dir, config).close()

        async def scenario():
            app = FairApp("runs")
            async with app.run_test(size=WIDE) as pilot:
                await until(pilot, lambda: app.screen.query_one("#runs").row_count == 1)
                await pilot.press("s")  # start the highlighted run
                await until(pilot, lambda: app.session is not None and app.session.live.done >= 3)
                s = app.session

                # pause: no new calls start; those in flight finish, then the server hears nothing more
                while s.state != "paused":
                    await pilot.press("p")
                    await pilot.pause(0.02)
                seen, deadline = None, time.monotonic() + 600
                while (now := (s.live.done, s.live.started, s.live.in_flight, server.requests)) != seen or now[2]:
                    assert time.monotonic() < deadline, "calls went on while paused"
                    seen = now
                    await pilot.pause(0.4)
                assert s.state == "paused" and "paused" in shown(app, "#counters")
                at_work = [st for st in COMMITTEE if s.live.stage(0, st).status == StageStatus.RUNNING]
                assert [shown(app, f"#state-{st}") for st in at_work] == ["paused"]
                assert s.run.store.stage_status(0, "review") != "done"

                await pilot.press("r")
                assert s.state == "running"
                await until(pilot, lambda: s.live.stage(0, "review").done >= 5)
                shoot(app, "pipeline")
                await pilot.press("q")  # cancels, waits for the calls in flight, leaves
                await until(pilot, lambda: not app.is_running)

        asyncio.run(scenario())
        total = 20 * 3 * 2 + 20 * 3 * 2  # feedback and rationales, then two reviews of each rationale
        logged = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
        controls = [e for e in logged if e["type"] in ("paused", "resumed")]
        assert [e["type"] for e in controls] == ["paused", "resumed"]  # once each, in the run's log
        assert controls[0]["stage"] in COMMITTEE and controls[0]["round"] == 0
        run = Run(run_dir)
        try:
            assert run.store.stage_status(0, "review") == "cancelled"
            assert run.store.query("SELECT COUNT(*) FROM calls WHERE error IS NULL")[0][0] < total
        finally:
            run.close()
        sent_before = server.requests
        assert cli.main(["run", str(tmp_path / "local.toml"), "--run-dir", str(run_dir), "--quiet"]) == 0
        assert server.requests > sent_before  # the resume had calls left to make
        assert max(server.received.values()) == 1  # no request reached the server twice
        run = Run(run_dir)
        try:
            assert [(r.stage, r.status) for r in run.store.stages()] == [(st, "done") for st in COMMITTEE]
            stored = run.store.query("SELECT COUNT(*) FROM calls WHERE error IS NULL")[0][0]
            assert stored == len(server.received) == server.requests  # each answer sent once, stored once
            assert len(run.store.writings(0)) == 20 * 3 * 2 and len(run.store.reviews(0)) == total // 2
        finally:
            run.close()


@pytest.mark.needs_data
def test_training_screen_draws_train_steps_live(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Run(tmp_path / "runs" / "train", replay_config()).close()

    async def scenario():
        app = FairApp("runs/train")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("5")
            await until(pilot, lambda: "no training steps yet" in shown(app, "#train-title"))
            for step in range(1, 11):  # as the train stage republishes them from the child's progress
                app.session.receive(
                    TrainStep(
                        0,
                        step,
                        20,
                        epoch=step / 10,
                        loss=2.0 / step,
                        loss_feedback=1.8 / step,
                        loss_rationale=2.2 / step,
                        learning_rate=1e-4,
                        tokens_per_second=900.0,
                        memory_mb=1024.0,
                        eta_s=30.0,
                    )
                )
            await until(pilot, lambda: "step 10 of 20" in shown(app, "#train-title"))
            assert "loss 0.2000" in shown(app, "#train-stats") and "900 tok/s" in shown(app, "#train-stats")
            plot = app.screen.query_one("#loss-plot")
            assert {k: len(v) for k, v in plot.series.items()} == {"total": 10, "feedback": 10, "rationale": 10}
            # without colour, the curves read apart by their markers: blocks, braille dots, bullets
            drawn = plot.render().plain
            assert all(name in drawn for name in ("total", "feedback", "rationale"))
            assert any("\u2596" <= c <= "\u259f" for c in drawn)  # total: quadrant blocks
            assert any("\u2801" <= c <= "\u28ff" for c in drawn)  # feedback: braille dots
            assert "•" in drawn  # rationale: bullets

    asyncio.run(scenario())


@contextlib.asynccontextmanager
async def training_screen(tmp_path, monkeypatch):
    """The Training screen of a new run, as (app, pilot)."""
    monkeypatch.chdir(tmp_path)
    Run(tmp_path / "runs" / "train", cfg.validate({})).close()
    app = FairApp("runs/train")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("5")
        yield app, pilot


def test_a_stopped_run_shows_no_eta(tmp_path, monkeypatch):
    async def scenario():
        async with training_screen(tmp_path, monkeypatch) as (app, pilot):
            s = app.session
            s.state = "running"  # as if its runner were training
            s.receive(TrainStep(0, 1, 20, loss=1.0, eta_s=60.0))
            await until(pilot, lambda: shown(app, "#train-eta") == "ETA 1m00s")
            for state in ("paused", "cancelled", "failed", "finished"):
                s.state = state
                app.refresh_view()  # as the app does on every change of state
                assert shown(app, "#train-eta") == "", state

    asyncio.run(scenario())


def test_a_one_step_loss_plot_has_axes_around_its_step(tmp_path, monkeypatch):
    async def scenario():
        async with training_screen(tmp_path, monkeypatch) as (app, pilot):
            app.session.receive(TrainStep(0, 1, 20, loss=2.4))
            await until(pilot, lambda: "step 1 of 20" in shown(app, "#train-title"))
            drawn = app.screen.query_one("#loss-plot").render().plain.splitlines()
            assert drawn[-1].split() == ["0", "1", "2"]  # whole steps around step 1, not 0.50-1.50
            ticks = [float(line.split("┤")[0]) for line in drawn if "┤" in line]
            assert 2.4 in ticks and 2.1 <= min(ticks) and max(ticks) <= 2.7  # a tenth of the loss either side

    asyncio.run(scenario())


def test_events_that_arrive_while_the_pipeline_is_hidden_reach_its_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Run(tmp_path / "runs" / "away", cfg.validate({"stages": COMMITTEE})).close()

    async def scenario():
        app = FairApp("runs/away")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.screen.NAME == "pipeline")
            await pilot.press("1")
            assert app.screen.NAME == "runs"
            s = app.session
            events = [
                StageStarted("explain", 0, 2),
                Message("warning", "rate limited while you were away"),
                StageFinished("explain", 0, {"calls": 2}),
            ]
            engine = threading.Thread(target=lambda: [s.receive(e) for e in events])  # as api.run's on_event does
            engine.start()
            engine.join()
            await until(pilot, lambda: s.logged == 3)  # folded into the session with the pipeline hidden
            await pilot.press("3")
            log = "\n".join(line.text for line in app.screen.query_one("#log").lines)
            assert "round 0 explain started" in log and "rate limited while you were away" in log
            assert "round 0 explain finished: calls 2" in log
            assert "done" in shown(app, "#state-explain") and "2/2" in shown(app, "#count-explain")

    asyncio.run(scenario())


def test_a_paused_stage_reads_paused_and_the_header_fits_80_columns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Run(tmp_path / "runs" / "a-run-with-a-rather-long-name", cfg.validate({"stages": COMMITTEE, "rounds": 2})).close()

    async def scenario():
        app = FairApp("runs/a-run-with-a-rather-long-name")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.screen.NAME == "pipeline")
            s = app.session
            s.state = "running"  # as if its runner were at work
            s.receive(StageStarted("review", 0))
            s.receive(StageProgress("review", 0, 5, 20))
            await until(pilot, lambda: "running" in shown(app, "#state-review"))
            assert "5/20" in shown(app, "#count-review")
            assert shown(app, "#run-title").endswith("round 0 of 0-1")  # rounds count from 0, as the events
            links, run = app.screen.query_one("#nav-links"), app.screen.query_one("#nav-run")
            assert links.region.width >= Content.from_markup(links.content).cell_length  # "6 Results" whole
            assert shown(app, "#nav-run").startswith("running · ") and run.content_region.width >= len("running")
            s.pause()
            app.refresh_view()  # as the app does on a pause
            assert "paused" in shown(app, "#state-review") and "paused" in shown(app, "#counters")
            assert shown(app, "#nav-run").startswith("paused · ")

    asyncio.run(scenario())


def test_counts_name_their_split(tmp_path, monkeypatch):
    """Examine counts the train items it examined, not the test items round 0 scores after them."""
    monkeypatch.chdir(tmp_path)
    run = Run(tmp_path / "runs" / "split", cfg.validate({"stages": ["examine", "evaluate"]}))
    summary = {"train_accuracy": 0.8, "mistakes": 7, "train_items": 35, "test_accuracy_before": 0.2, "test_items": 5}
    run.store.mark_stage(0, "examine", StageStatus.DONE, summary)
    run.close()

    async def scenario():
        app = FairApp("runs/split")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.screen.NAME == "pipeline")
            assert shown(app, "#count-examine") == "35/35 train"
            app.session.state = "running"
            app.session.receive(StageStarted("evaluate", 0))
            app.session.receive(StageProgress("evaluate", 0, 2, 5, "test"))
            await until(pilot, lambda: shown(app, "#count-evaluate") == "2/5 test")

    asyncio.run(scenario())


@pytest.mark.slow
@pytest.mark.needs_data
def test_a_run_that_fair_run_drives_reads_running(tmp_path, monkeypatch):
    """The UI opened on a run that a `fair run` process works on follows it from the run's lock and
    events.jsonl: its stages read running with their counts, not stopped; a start is refused
    without a "failed"; when the process ends, the store's word on each stage."""
    monkeypatch.chdir(tmp_path)
    with serve_in_thread(latency=0.3) as server:  # slow until the UI has seen the run at work
        config = cfg.validate(
            {
                "stages": ["explain", "solve"],
                "task": {"name": "svamp", "train_limit": 6, "mistakes_file": replay_config().task.mistakes_file},
                "teachers": [{"name": "t", "model": "openai/solver", "api_base": server.url, "concurrency": 1}],
            }
        )
        (tmp_path / "local.toml").write_text(cfg.dump(config))
        run_dir = tmp_path / "runs" / "local"
        Run(run_dir, config).close()
        cli_run = subprocess.Popen(
            [sys.executable, "-m", "fair_core.cli", "run", "local.toml", "--run-dir", str(run_dir), "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            async def scenario():
                app = FairApp("runs/local")
                async with app.run_test(size=SIZE) as pilot:
                    await until(pilot, lambda: app.session is not None and app.session.state == "watching")
                    s = app.session
                    assert s.driver == cli_run.pid and lock_holder(run_dir) == cli_run.pid
                    await until(pilot, lambda: any(s.live.stage(0, st).done for st in ("explain", "solve")))
                    stage = "explain" if s.live.stage(0, "explain").status == StageStatus.RUNNING else "solve"
                    assert shown(app, f"#state-{stage}") == "running" and "/6" in shown(app, f"#count-{stage}")
                    assert "stopped" not in " ".join(shown(app, f"#state-{st}") for st in ("explain", "solve"))
                    assert shown(app, "#nav-run").startswith("running")
                    log = "\n".join(line.text for line in app.screen.query_one("#log").lines)
                    assert f"another process (pid {cli_run.pid}) works on this run" in log

                    await pilot.press("s")  # not offered: the other process works on it
                    assert s.state == "watching"
                    s.state = "idle"  # as if the UI had not noticed it yet: the start is refused
                    app.start_run()
                    await until(pilot, lambda: s.state == "watching" and not s.error)
                    assert "in use by another fair process" in "\n".join(s.log)

                    server.latency = 0  # let it finish
                    await until(pilot, lambda: s.state == "idle")
                    assert [shown(app, f"#state-{st}") for st in ("explain", "solve")] == ["done", "done"]
                    assert shown(app, "#count-solve") == "6/6"

            asyncio.run(scenario())
            assert cli_run.wait(600) == 0, cli_run.stderr.read() if cli_run.stderr else ""
        finally:
            if cli_run.poll() is None:
                cli_run.kill()


def test_the_runs_table_is_drawn_at_its_widths_from_the_first_frame(tmp_path, monkeypatch):
    """The names are listed at once and each column is as wide as its cells (up to MAX_WIDTH),
    before the runs' stores are read and after."""
    monkeypatch.chdir(tmp_path)
    names = ["svamp-replay-with-a-rather-long-name", "short", "x" * 60]
    for name in names:
        Run(tmp_path / "runs" / name, cfg.validate({})).close()
    gate, summarize = threading.Event(), runs_screen.summarize
    monkeypatch.setattr(runs_screen, "summarize", lambda *a: (gate.wait(600), summarize(*a))[1])

    def fits(table: DataTable) -> bool:
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        return all(
            column.get_render_width(table) - 2 * table.cell_padding
            >= min(runs_screen.MAX_WIDTH, max([column.label.cell_len, *(row[i].cell_len for row in rows)]))
            for i, column in enumerate(table.ordered_columns)
        )

    async def scenario():
        app = FairApp("runs")
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.pause()
            table = app.screen.query_one("#runs", DataTable)
            assert sorted(table.get_cell_at(Coordinate(i, 0)).plain for i in range(table.row_count)) == sorted(names)
            assert fits(table) and table.ordered_columns[0].width == runs_screen.MAX_WIDTH
            gate.set()
            await until(pilot, lambda: table.get_cell_at(Coordinate(0, 1)).plain == "svamp")
            assert fits(table)

    asyncio.run(scenario())


@pytest.mark.needs_data
def test_a_partial_stages_run_keeps_the_runs_stages(tmp_path, monkeypatch):
    """`fair run --stages compile` runs compile alone: the run's config keeps its stages, so the
    pipeline lists them all and the runs table counts them all."""
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "runs" / "replay"
    common = ["run", str(REPLAY), "--run-dir", str(run_dir), "--set", "task.train_limit=3", "--quiet"]
    assert cli.main([*common, "--stages", "explain,solve,review"]) == 0
    assert cli.main([*common, "--stages", "compile"]) == 0
    stages = cfg.load(REPLAY).stages
    assert cfg.load(run_dir / "config.toml").stages == stages == ["explain", "solve", "review", "compile"]

    async def scenario():
        app = FairApp("runs/replay")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.screen.NAME == "pipeline")
            assert app.session.live.stage_names == stages
            for stage in stages:
                assert "done" in shown(app, f"#state-{stage}")
            await pilot.press("1")
            table = app.screen.query_one("#runs", DataTable)
            await until(pilot, lambda: table.row_count and table.get_cell_at(Coordinate(0, 3)).plain == "4/4")

    asyncio.run(scenario())


@pytest.mark.needs_data
def test_a_stage_that_fails_reads_failed_on_the_pipeline_screen(tmp_path, monkeypatch):
    """Training with nothing to learn (no mistakes were ever examined) fails: the UI says which
    stage failed and why, and the store agrees."""
    monkeypatch.chdir(tmp_path)
    student = make_tiny_student(tmp_path / "student")
    Run(
        tmp_path / "runs" / "empty", cfg.validate({"stages": ["compile", "train"], "student": {"model": str(student)}})
    ).close()

    async def scenario():
        app = FairApp("runs/empty")
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.session is not None)
            app.start_run()
            await until(pilot, lambda: app.session.state == "failed")
            await until(pilot, lambda: "failed" in shown(app, "#state-train"))
            assert "done" in shown(app, "#state-compile")
            assert "no training data" in app.session.error
            rows = {row.stage: row.status for row in app.session.run.store.stages()}
            assert rows == {"compile": "done", "train": "failed"}

    asyncio.run(scenario())


# -- every screen renders at 80x24 and larger; snapshots ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.parametrize("size", [(80, 24), WIDE])
def test_every_screen_fits(replay_root, monkeypatch, size):
    monkeypatch.chdir(replay_root)

    async def scenario():
        app = FairApp("runs/replay")
        async with app.run_test(size=size) as pilot:
            await pilot.pause(0.2)
            # "c" on the runs screen copies the highlighted run's config into the setup form
            for key, name in zip("1c3456", ("runs", "setup", "pipeline", "committee", "training", "results")):
                await pilot.press(key)
                await pilot.pause(0.3)
                assert app.screen.NAME == name
                if name == "setup":
                    assert app.screen.config == replay_config()
                region = app.screen.region
                for widget in app.screen.query("NavBar, Footer"):
                    assert region.contains_region(widget.region), (name, widget)
                if size == WIDE and name != "pipeline":  # the pipeline is shot live, paused
                    shoot(app, name)
            await pilot.press("4")
            await until(pilot, lambda: app.screen.shown_items)
            detail_pane = app.screen.query_one("#detail-pane").region
            table = app.screen.query_one("#mistakes").region
            side_by_side = detail_pane.x >= table.right
            assert side_by_side == (size[0] >= 110)

    asyncio.run(scenario())


@pytest.mark.needs_data
@pytest.mark.slow
def test_the_committee_list_turns_pages(replay_root, monkeypatch):
    """A round of thousands of mistakes shows a page of them at a time; the filter counts all."""
    import fair_tui.screens.committee as committee_screen

    monkeypatch.chdir(replay_root)
    monkeypatch.setattr(committee_screen, "PAGE", 100)

    async def scenario():
        app = FairApp("runs/replay")
        async with app.run_test(size=WIDE) as pilot:
            await pilot.press("4")
            await until(pilot, lambda: app.screen.NAME == "committee" and app.screen.shown_items)
            screen = app.screen
            assert len(screen.shown_items) == 100
            assert "387 of 387 mistakes · rows 1-100" in shown(app, "#committee-title")
            first = list(screen.shown_items)
            screen.query_one("#mistakes").focus()
            for _ in range(4):
                await pilot.press(">")  # the fourth page is the last: a fifth press stays there
            await until(pilot, lambda: "rows 301-387" in shown(app, "#committee-title"))
            assert len(screen.shown_items) == 87 and not set(screen.shown_items) & set(first)
            screen.query_one("#filter").value = "no rationale"
            await until(pilot, lambda: "22 of 387 mistakes" in shown(app, "#committee-title"))
            assert len(screen.shown_items) == 22 and "rows" not in shown(app, "#committee-title")

    asyncio.run(scenario())


def _screen(key: str):
    async def go(pilot):
        await pilot.pause(0.2)
        pilot.app.screen.set_focus(None)  # no blinking cursor in the picture
        await pilot.press(key)
        await pilot.pause(0.5)
        if key == "4":  # the list, then the first item's detail
            await until(pilot, lambda: pilot.app.screen.shown_items and "reviews" in shown(pilot.app, "#detail"))
        if key == "6":
            await until(pilot, lambda: "Committee" in shown(pilot.app, "#report"))
        pilot.app.screen.set_focus(None)
        await pilot.pause(0.2)

    return go


@pytest.mark.needs_data
@pytest.mark.parametrize(
    "key,name", [("1", "runs"), ("3", "pipeline"), ("4", "committee"), ("5", "training"), ("6", "results")]
)
@pytest.mark.slow
def test_snapshot(replay_root, monkeypatch, snap_compare, key, name):
    monkeypatch.chdir(replay_root)
    assert snap_compare(FairApp("runs/replay"), terminal_size=SIZE, run_before=_screen(key))


@pytest.mark.needs_data
@pytest.mark.slow
def test_snapshot_setup(tmp_path, monkeypatch, snap_compare):
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPLAY, tmp_path / "svamp-replay.toml")
    assert snap_compare(FairApp("svamp-replay.toml"), terminal_size=SIZE, run_before=_screen("2"))
