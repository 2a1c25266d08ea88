"""The CLI's live view: rich progress bars per stage and one line per notable event.

Every text an event carries (a provider's error, an item id from a dataset, a plugin's warning) is
untrusted: it goes through :func:`~fair_core.inert.inert` before it meets the terminal and rich's markup."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Column

from .events import (
    BudgetReached,
    CallDone,
    CallFailed,
    CallRetried,
    EvalResult,
    Event,
    Message,
    StageFinished,
    StageProgress,
    StageStarted,
    TrainStep,
    facts,
)
from .inert import inert
from .stages import PIPELINE, Need

NO_CALLS = {"done": 0, "cached": 0, "retried": 0, "failed": 0, "cost": 0.0}
SHOWN_FAILURES = 5  # per stage; a teacher failing every call must not flood the terminal


class ConsoleSink:
    """Subscribes to the bus; a context manager around the run."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = Console(stderr=True)
        self.quiet = quiet
        # no_wrap: only the info column gives way on a narrow terminal
        self.progress = Progress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True, min_width=16)),
            BarColumn(bar_width=16, table_column=Column(no_wrap=True, min_width=16)),
            MofNCompleteColumn(table_column=Column(no_wrap=True, min_width=11)),
            TimeRemainingColumn(elapsed_when_finished=True, table_column=Column(no_wrap=True, min_width=7)),
            TextColumn("{task.fields[info]}", table_column=Column(overflow="ellipsis", no_wrap=True, ratio=1)),
            console=self.console,
            disable=quiet,
        )
        self.bars: dict[tuple[int, str], TaskID] = {}
        self.calls = dict(NO_CALLS)  # the current stage's

    def __enter__(self) -> ConsoleSink:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def _bar(self, round: int, stage: str) -> TaskID:
        key = (round, stage)
        if key not in self.bars:
            width = max(map(len, PIPELINE.names()))
            self.bars[key] = self.progress.add_task(f"round {round} {stage:{width}}", total=None, info="")
        return self.bars[key]

    def __call__(self, e: Event) -> None:
        if isinstance(e, StageStarted):
            self._bar(e.round, e.stage)
            self.calls = dict(NO_CALLS)
        elif isinstance(e, StageProgress):
            self.progress.update(
                self._bar(e.round, e.stage),
                completed=e.done,
                total=e.total,
                info=self._calls_info() if e.stage in PIPELINE.needing(Need.COMMITTEE) else "",
            )
        elif isinstance(e, TrainStep):
            info = f"loss {e.loss:.3f}" if e.loss is not None else ""
            if e.tokens_per_second:
                info += f"  {e.tokens_per_second:.0f} tok/s"
            self.progress.update(self._bar(e.round, "train"), completed=e.step, total=e.max_steps, info=info)
        elif isinstance(e, CallDone):
            self.calls["cached" if e.cached else "done"] += 1
            self.calls["cost"] += e.cost_usd
        elif isinstance(e, CallRetried):
            self.calls["retried"] += 1
        elif isinstance(e, CallFailed):
            self.calls["failed"] += 1
            if self.calls["failed"] <= SHOWN_FAILURES:
                call = inert(f"{e.teacher} {e.purpose} {e.item_id}: {e.reason}", markup=True)
                self.console.print(f"[yellow]call failed[/] {call}")
            elif self.calls["failed"] == SHOWN_FAILURES + 1:
                self.console.print("[yellow]more calls failed[/]: `fair report` lists them all")
        elif isinstance(e, StageFinished):
            bar = self._bar(e.round, e.stage)
            task = self.progress.tasks[bar] if bar < len(self.progress.tasks) else None
            if task is not None and task.total is None:
                self.progress.update(bar, total=1, completed=1)
            if self.quiet:
                self.console.print(
                    inert(f"round {e.round} {e.stage} done: {facts(e.summary)}"), markup=False, soft_wrap=True
                )
        elif isinstance(e, EvalResult):
            self.console.print(e.line(), markup=False)
        elif isinstance(e, BudgetReached):
            self.console.print(f"[red]budget reached[/]: ${e.spent_usd:.4f} of ${e.budget_usd:g}; no new calls")
        elif isinstance(e, Message):
            level, text = inert(e.level, markup=True), inert(e.text, markup=True)
            self.console.print(f"[yellow]{level}[/]: {text}", soft_wrap=True)

    def _calls_info(self) -> str:
        c = self.calls
        cached = f" +{c['cached']} cached" if c["cached"] else ""
        return f"{c['done']} calls{cached}, {c['retried']} retried, {c['failed']} failed, ${c['cost']:.2f}"
