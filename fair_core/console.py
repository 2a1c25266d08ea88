"""The CLI's live view of a run, and one line per notable event.

On a terminal, rich progress bars per stage, redrawn in place. Anywhere else (a log file, a pipe,
CI, nohup), where rich would draw its bars only when the run ends, a plain progress line every
few seconds (``FAIR_PROGRESS_EVERY``) for each stage at work, and one at each stage's end.

Every text an event carries (a provider's error, an item id from a dataset, a plugin's warning) is
untrusted: it goes through :func:`~fair_core.inert.inert` before it meets the terminal and rich's markup.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, Task, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Column

from .errors import FairError
from .host import get_host
from .inert import inert
from .results.report import usd
from .runs.events import (
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
from .stages import Need

NO_CALLS = {"done": 0, "cached": 0, "retried": 0, "failed": 0, "cost": 0.0}
SHOWN_FAILURES = 5  # per stage; a teacher failing every call must not flood the terminal
PROGRESS_EVERY_S = 5.0  # seconds between plain progress lines, unless FAIR_PROGRESS_EVERY says


def progress_every() -> float:
    """Seconds between plain progress lines: ``FAIR_PROGRESS_EVERY``, or PROGRESS_EVERY_S."""
    text = os.environ.get("FAIR_PROGRESS_EVERY", "").strip()
    if not text:
        return PROGRESS_EVERY_S
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise FairError(f"FAIR_PROGRESS_EVERY={text!r} is not a number of seconds > 0: set it to e.g. 5, or unset it")
    return value


def clock(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds)))


class ConsoleSink:
    """Subscribes to the bus; a context manager around the run."""

    def __init__(self, quiet: bool = False) -> None:
        self.console = Console(stderr=True)
        self.quiet = quiet
        self.plain = not self.console.is_interactive
        self.every = progress_every() if self.plain and not quiet else None
        # no_wrap: only the info column gives way on a narrow terminal. Without a terminal the
        # bars are not drawn, but their tasks still count, time and rate each stage's work.
        self.progress = Progress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True, min_width=16)),
            BarColumn(bar_width=16, table_column=Column(no_wrap=True, min_width=16)),
            MofNCompleteColumn(table_column=Column(no_wrap=True, min_width=11)),
            TimeRemainingColumn(elapsed_when_finished=True, table_column=Column(no_wrap=True, min_width=7)),
            TextColumn("{task.fields[info]}", table_column=Column(overflow="ellipsis", no_wrap=True, ratio=1)),
            console=self.console,
            disable=quiet or self.plain,
        )
        self.bars: dict[tuple[int, str, str | None], TaskID] = {}
        self.ended: set[tuple[int, str]] = set()  # (round, stage) of the stages finished
        self.calls = dict(NO_CALLS)  # the current stage's
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="fair-progress", daemon=True)

    def __enter__(self) -> ConsoleSink:
        self.progress.start()
        if self.every is not None:
            self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join()
        self.progress.stop()

    def _bar(self, round: int, stage: str, split: str | None = None) -> TaskID:
        """The bar of a stage's work on ``split`` (None: its calls or steps). A stage's first
        count takes the bar its start made, so a stage that counts one split has one bar."""
        key = (round, stage, split)
        if key not in self.bars:
            width = max(map(len, get_host().pipeline.names()))
            description = f"round {round} {stage:{width}}" + (f" {split}" if split else "")
            started = self.bars.get((round, stage, None))
            if split is not None and started is not None and self._task(started).total is None:
                self.bars[key] = self.bars.pop((round, stage, None))
                self.progress.update(self.bars[key], description=description)
            else:
                self.bars[key] = self.progress.add_task(description, total=None, info="", unit="", since=None, eta=None)
        return self.bars[key]

    def _task(self, bar: TaskID) -> Task:
        return next(t for t in self.progress.tasks if t.id == bar)

    def _count(self, bar: TaskID, done: int, total: int, unit: str, info: str, eta: float | None = None) -> None:
        """``eta``: seconds left as the work itself estimates them (the trainer's), if it does."""
        task = self._task(bar)
        since = task.fields.get("since")
        if done < task.completed:  # the same split counted again (evaluate's before, then after)
            self.progress.reset(bar, total=total, completed=done)
            since = None
        now = time.monotonic()
        self.progress.update(
            bar,
            completed=done,
            total=total,
            unit=unit,
            info=info,
            since=since or (now, done),  # the first count: the rate is the mean from there
            eta=None if eta is None else (now, eta),
        )

    def __call__(self, e: Event) -> None:
        if isinstance(e, StageStarted):
            self._bar(e.round, e.stage)
            self.calls = dict(NO_CALLS)
        elif isinstance(e, StageProgress):
            calls = e.stage in get_host().pipeline.needing(Need.COMMITTEE)
            unit = "items" if e.split else "calls" if calls else ""
            info = self._calls_info() if calls else ""
            self._count(self._bar(e.round, e.stage, e.split), e.done, e.total, unit, info)
        elif isinstance(e, TrainStep):
            info = f"loss {e.loss:.3f}" if e.loss is not None else ""
            if e.tokens_per_second:
                info += f"  {e.tokens_per_second:.0f} tok/s"
            self._count(self._bar(e.round, "train"), e.step, e.max_steps, "steps", info, e.eta_s)
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
            self.ended.add((e.round, e.stage))
            for key, bar in list(self.bars.items()):
                if key[:2] == (e.round, e.stage) and self._task(bar).total is None:
                    self.progress.update(bar, total=1, completed=1)
            if self.quiet or self.plain:
                took = f"; took {clock(e.summary['seconds'])}" if "seconds" in e.summary else ""
                self._line(inert(f"round {e.round} {e.stage} done: {facts(e.summary)}{took}"))
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
        return f"{c['done']} calls{cached}, {c['retried']} retried, {c['failed']} failed, ${usd(c['cost'])}"

    # without a terminal ------------------------------------------------------------------------
    def _line(self, text: str) -> None:
        """One whole line, never wrapped: a log is read with grep and tail."""
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            working = {bar for key, bar in list(self.bars.items()) if key[:2] not in self.ended}
            for task in self.progress.tasks:  # a copy, taken under the progress's lock
                if task.id in working and not task.finished:
                    self._line(progress_line(task))


def progress_line(task: Task) -> str:
    """``round 0 review: 1200/2322 calls (52%), 35.2/s, ETA 0:00:32 · 1200 calls, 0 retried, ...``:
    the rate is the mean since the stage's first count (a stage whose units take minutes each still
    has one), the ETA the work's own estimate where it gives one, else the rate's."""
    name = " ".join(task.description.split())
    if task.total is None:
        return f"{name}: started {clock(task.elapsed or 0)} ago"
    unit = f" {task.fields['unit']}" if task.fields["unit"] else ""
    text = f"{name}: {task.completed:.0f}/{task.total:.0f}{unit} ({task.percentage:.0f}%)"
    now = time.monotonic()
    start, base = task.fields["since"] or (now, task.completed)
    rate = (task.completed - base) / (now - start) if task.completed > base and now > start else None
    if rate:
        text += f", {rate:.2g}/s" if rate < 10 else f", {rate:.0f}/s"
    if task.fields["eta"] is not None:
        said, eta = task.fields["eta"]
        text += f", ETA {clock(max(0.0, eta - (now - said)))}"
    elif rate:
        text += f", ETA {clock((task.total - task.completed) / rate)}"
    return text + (f" · {task.fields['info']}" if task.fields["info"] else "")
