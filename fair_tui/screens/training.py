"""Training: loss curves (feedback, rationale, total), learning rate, throughput, memory and progress.

Steps come from the round's ``progress.jsonl`` (what the training process wrote, so a finished run
shows its curves) and, while a run is live, from the TrainStep events the train stage republishes
from that same file; a step seen twice (a resumed run repeats a few) keeps its latest record. The
ETA is shown only while the round's training runs: a paused, cancelled, failed or finished run has
none.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Sparkline, Static

from fair_core.runs.events import TrainStep, from_dict
from fair_core.runs.store import StageStatus
from fair_core.training.progress import read_records

from ..session import Session
from ..widgets.plot import LossPlot
from .base import RunView

# each loss curve's colour and marker (braille dots, bullets, blocks: they read apart without
# colour), in drawing order: the total last, over the two it sums
CURVES = {"feedback": ("cyan", "braille"), "rationale": ("magenta", "•"), "total": ("white", "hd")}


def read_progress(path: Path) -> dict[int, TrainStep]:
    """The train_step records of a progress.jsonl, by step (a later line wins)."""
    steps: dict[int, TrainStep] = {}
    for data in read_records(path):
        if data.get("type") == "train_step":
            step = cast(TrainStep, from_dict({**data, "round": data.get("round", 0)}))
            steps[step.step] = step
    return steps


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class TrainingScreen(RunView):
    NAME = "training"
    BINDINGS = [
        Binding("[", "round(-1)", "Prev round"),
        Binding("]", "round(1)", "Next round"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.round = 0
        self.from_file: dict[int, TrainStep] = {}
        self._drawn: tuple | None = None  # what the last redraw showed: the same again is skipped

    def run_body(self, session: Session) -> ComposeResult:
        yield Static(id="train-title")
        with Vertical(id="train-body"):
            with Horizontal(id="train-progress"):
                yield ProgressBar(total=1, show_eta=False, id="train-bar")
                yield Static(id="train-eta")
            yield Static(id="train-stats")
            yield LossPlot(CURVES, "loss by step", id="loss-plot")
            yield Static("learning rate", id="lr-title")
            yield Sparkline([], id="lr")

    async def resumed(self) -> None:
        changed = self.shown is not self.fair.session
        await super().resumed()
        if changed and self.shown is not None:
            self.round = self.shown.live.round
        self.reload()

    def reload(self) -> None:
        if self.shown is not None:
            self.from_file = read_progress(self.shown.path / "rounds" / str(self.round) / "progress.jsonl")
            self._drawn = None

    def action_round(self, step: int) -> None:
        s = self.shown
        if s is not None and 0 <= self.round + step < s.config.rounds:
            self.round += step
            self.reload()
            self.show_live()

    def show_live(self) -> None:
        super().show_live()
        s = self.shown
        if s is None or not self.ready:
            return
        train = s.live.stages.get((self.round, "train"))
        training = s.shown_state == "running" and train is not None and train.status == StageStatus.RUNNING
        drawn = (self.round, s.live.train_steps, training)
        if drawn == self._drawn:  # a batch of other events (the committee's calls): nothing to redraw here
            return
        self._drawn = drawn
        steps = {**self.from_file, **s.live.train.get(self.round, {})}
        ordered = [steps[k] for k in sorted(steps)]
        title = self.query_one("#train-title", Static)
        self.query_one("#train-body").display = bool(ordered)
        if not ordered:
            title.update(
                f"round {self.round}: no training steps yet"
                + (" ([ and ] change round)" if s.config.rounds > 1 else "")
            )
            return
        last = ordered[-1]
        title.update(f"round {self.round} · step [b]{last.step}[/] of {last.max_steps} · epoch {last.epoch:.2f}")
        self.query_one("#train-bar", ProgressBar).update(total=last.max_steps or None, progress=last.step)
        self.query_one("#train-eta", Static).update(f"ETA {duration(last.eta_s)}" if training else "")
        losses = [f"loss [b]{last.loss:.4f}[/]" if last.loss is not None else "loss -"]
        for name in ("feedback", "rationale"):
            v = getattr(last, f"loss_{name}")
            losses.append(f"{name} {v:.4f}" if v is not None else f"{name} -")
        facts = [
            " · ".join(losses),
            f"lr {last.learning_rate:.2e}" if last.learning_rate is not None else "lr -",
            f"{last.tokens_per_second:,.0f} tok/s" if last.tokens_per_second else "tok/s -",
            f"peak mem {last.memory_mb / 1024:.2f} GiB" if last.memory_mb else "peak mem -",
        ]
        self.query_one("#train-stats", Static).update("  ·  ".join(facts))
        self.query_one(LossPlot).set_series(
            {
                "total": [(t.step, t.loss) for t in ordered if t.loss is not None],
                "feedback": [(t.step, t.loss_feedback) for t in ordered if t.loss_feedback is not None],
                "rationale": [(t.step, t.loss_rationale) for t in ordered if t.loss_rationale is not None],
            }
        )
        self.query_one("#lr", Sparkline).data = [t.learning_rate or 0.0 for t in ordered]
