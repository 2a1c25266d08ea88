"""One open run as the UI sees it: the run directory, its runner on a worker thread, and what the
screens draw, folded from engine events: the live state and the event log.

Events arrive on the runner's thread. They go into a deque (append and popleft are atomic), and
the first event of a batch wakes the app (it posts itself a message); the app then drains the
deque on the UI thread, so a burst of events costs the UI one redraw, not one per event, and no
widget is ever touched from another thread. The session keeps the state and the log whichever
screen is on show: a screen draws from it when shown, so nothing that happened while it was
hidden is lost.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fair_core import api
from fair_core.errors import FairError
from fair_core.host import get_host
from fair_core.inert import inert
from fair_core.runs.events import (
    BudgetReached,
    CallDone,
    CallFailed,
    CallRetried,
    CallStarted,
    EvalResult,
    Event,
    Message,
    Paused,
    Resumed,
    StageFinished,
    StageProgress,
    StageStarted,
    TrainStep,
    appended,
    facts,
    from_dict,
)
from fair_core.runs.rundir import Run, RunInUse, lock_holder
from fair_core.runs.store import StageStatus

LOG_LINES = 2000  # the event log keeps its last lines, as many as the pipeline screen's log shows
BACKLOG_BYTES = 256 * 1024  # of events.jsonl, read when another process is found working: where its stages stand


def is_run_dir(path: Path) -> bool:
    return (path / "config.toml").is_file() and (path / "run.sqlite").is_file()


@dataclass
class StageState:
    status: StageStatus = StageStatus.PENDING
    done: int = 0
    total: int = 0
    split: str | None = None  # the split whose items done and total count (None: calls, pairs, steps)


def stored_count(summary: dict) -> tuple[int, str | None]:
    """What a finished stage's summary counts, and the split it counts: the train items examined
    (or, with the paper's mistakes, the test items scored), test items, calls or pairs."""
    if "train_items" in summary:
        return summary["train_items"], "train"
    if "test_items" in summary:
        return summary["test_items"], "test"
    return summary.get("calls", summary.get("pairs", 0)), None


class Live:
    """Counters, stage states, training steps and accuracies, as the UI shows them."""

    def __init__(self, stages: list[str]) -> None:
        self.stage_names = get_host().pipeline.ordered(stages)  # a plugin's stages too
        self.stages: dict[tuple[int, str], StageState] = {}
        self.round = 0
        self.started = self.done = self.cached = self.retried = self.failed = 0
        self.tokens = 0
        self.cost_usd = 0.0
        self.budget_reached = False
        self.paused = False  # the events say so: a paused and not yet resumed run
        self.train: dict[int, dict[int, TrainStep]] = {}
        self.train_steps = 0  # TrainStep events folded in: the training screen redraws when it grows
        self.accuracy: dict[tuple[int, str], float] = {}

    @property
    def in_flight(self) -> int:
        """Every started attempt ends in exactly one of done (uncached), retried or failed."""
        return max(0, self.started - self.done - self.retried - self.failed)

    def stage(self, round: int, stage: str) -> StageState:
        return self.stages.setdefault((round, stage), StageState())

    def seed(self, run: Run) -> None:
        """Start from what the store already holds, so an opened run shows where it stands."""
        for row in run.store.stages():
            s = self.stage(row.round, row.stage)
            s.status = row.status
            summary = row.summary or {}
            if s.status == StageStatus.DONE:  # a count where the summary has one (items, calls, pairs)
                s.done, s.split = stored_count(summary)
                s.total = s.done
            self.round = max(self.round, row.round)
        self.cost_usd = run.store.spent_usd()

    def apply(self, e: Event) -> None:
        if isinstance(e, CallStarted):
            self.started += 1
        elif isinstance(e, CallDone):
            if e.cached:
                self.cached += 1
            else:
                self.done += 1
                self.tokens += e.prompt_tokens + e.completion_tokens
                self.cost_usd += e.cost_usd
        elif isinstance(e, CallRetried):
            self.retried += 1
        elif isinstance(e, CallFailed):
            self.failed += 1
        elif isinstance(e, StageProgress):
            s = self.stage(e.round, e.stage)
            s.status, s.done, s.total, s.split = StageStatus.RUNNING, e.done, e.total, e.split
        elif isinstance(e, StageStarted):
            self.round = e.round
            s = self.stage(e.round, e.stage)
            s.status, s.done, s.total, s.split = StageStatus.RUNNING, 0, e.total, None
        elif isinstance(e, StageFinished):
            s = self.stage(e.round, e.stage)
            s.status = StageStatus.PARTIAL if e.summary.get("failed") else StageStatus.DONE
            s.done = s.done if s.status == StageStatus.PARTIAL else s.total
        elif isinstance(e, TrainStep):
            self.train.setdefault(e.round, {})[e.step] = e
            self.train_steps += 1
            s = self.stage(e.round, "train")
            s.status, s.done, s.total = StageStatus.RUNNING, e.step, e.max_steps
        elif isinstance(e, EvalResult):
            self.accuracy[(e.round, e.when)] = e.accuracy
        elif isinstance(e, BudgetReached):
            self.budget_reached = True
        elif isinstance(e, (Paused, Resumed)):
            self.paused = isinstance(e, Paused)


def describe(e: Event) -> str | None:
    """The event log's line (rich markup) for an event worth a line; calls are counted, not logged.
    What an event quotes (a provider's error, an item id, a plugin's warning) is made inert."""
    if isinstance(e, StageStarted):
        return f"round {e.round} {e.stage} started"
    if isinstance(e, StageFinished):
        said = facts(e.summary)
        return f"round {e.round} {e.stage} finished" + (f": {inert(said, markup=True)}" if said else "")
    if isinstance(e, CallRetried):
        return f"[yellow]retry[/] {_call(e)} #{e.attempt}: {inert(e.reason, markup=True)}"
    if isinstance(e, CallFailed):
        return f"[red]failed[/] {_call(e)}: {inert(e.reason, markup=True)}"
    if isinstance(e, Paused):
        return f"[yellow]round {e.round} {e.stage} paused[/]: no new teacher calls; those in flight finish"
    if isinstance(e, Resumed):
        return f"round {e.round} {e.stage} resumed"
    if isinstance(e, BudgetReached):
        return f"[red]budget reached[/]: ${e.spent_usd:.4f} of ${e.budget_usd:g}; no new calls"
    if isinstance(e, EvalResult):
        return e.line()
    if isinstance(e, Message):
        colour = {"error": "red", "warning": "yellow"}.get(e.level, "cyan")
        return f"[{colour}]{inert(e.level, markup=True)}[/]: {inert(e.text, markup=True)}"
    return None


def _call(e: CallRetried | CallFailed) -> str:
    return inert(f"{e.teacher} {e.purpose} {e.item_id}", markup=True)


class Session:
    """An open run directory; at most one runner at a time works on it."""

    def __init__(self, path: str | Path, run: Run | None = None) -> None:
        self.path = Path(path)
        self.run = run or Run(self.path)
        self.config = self.run.config
        self.name = self.path.name
        stored = self.run.store.stages()
        # the config's stages (None: all) and any that ran outside them
        self.live = Live([*get_host().pipeline.ordered(self.config.stages), *(row.stage for row in stored)])
        self.live.seed(self.run)
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self.logged = 0  # lines ever logged: a screen that has shown n of them shows those after
        for row in stored:  # the log's first lines: what was done before
            self._log(
                f"[dim]earlier:[/] round {row.round} {row.stage} {row.status}"
                + (f": {inert(facts(row.summary), markup=True)}" if row.summary is not None else "")
            )
        self.buffer: deque[Event] = deque()
        self.wake: Callable[[], object] = lambda: None  # the app's: posts it one message per batch of events
        self._waking = False
        self.control = api.Control()  # pause, resume and cancel reach the run through it
        # idle | running | paused | cancelling | finished | cancelled | failed, or watching: another
        # process (a `fair run`) works on the run, and the session follows it from events.jsonl
        self.state = "idle"
        self.error: str | None = None
        self.driver: int | None = None  # the pid of that other process, while watching (0: not known yet)
        self._followed = 0  # bytes of events.jsonl folded in while watching

    @property
    def active(self) -> bool:
        """This session's runner works on the run."""
        return self.state in ("running", "paused", "cancelling")

    @property
    def busy(self) -> bool:
        """A process works on the run: this session's runner, or another that it watches."""
        return self.active or self.state == "watching"

    @property
    def paused(self) -> bool:
        return self.state == "paused" or (self.state == "watching" and self.live.paused)

    @property
    def shown_state(self) -> str:
        """The state as the UI words it: a watched run is running (or paused) too."""
        if self.state == "watching":
            return "paused" if self.live.paused else "running"
        return self.state

    def receive(self, event: Event) -> None:
        """The run's ``on_event``, on the engine's thread: buffer the event; the first one of a
        batch wakes the app."""
        self.buffer.append(event)
        if not self._waking:
            self._waking = True
            self.wake()

    def drain(self) -> list[Event]:
        """On the UI thread: take every buffered event and fold it into :attr:`live` and :attr:`log`."""
        self._waking = False  # first: an event buffered from here on wakes the app again
        events = []
        pop = self.buffer.popleft
        try:
            while True:
                events.append(pop())
        except IndexError:
            pass
        self._fold(events)
        return events

    def _log(self, line: str) -> None:
        self.log.append(line)
        self.logged += 1

    def log_since(self, shown: int) -> list[str]:
        """The lines logged after the first ``shown``, as far as the log still keeps them."""
        n = min(self.logged - shown, len(self.log))
        return [self.log[-i] for i in range(n, 0, -1)]

    # another process's run --------------------------------------------------------------------
    def follow(self) -> bool:
        """On the UI thread, while no runner of this session works: notice another process (a
        ``fair run``) that works on the run, by its lock, and fold in the events it appends to
        events.jsonl; when it ends, take the store's word on each stage. True when anything changed."""
        if self.active:
            return False
        holder = lock_holder(self.path)  # not this UI's own runner: the session would be active
        started = holder is not None and self.state != "watching"
        if started:
            self.state, self.driver, self.error, self.live.paused = "watching", holder, None, False
            self._backlog()
            self.live.seed(self.run)
            self._log(f"[cyan]watching[/]: another process (pid {holder or '?'}) works on this run")
        elif self.state != "watching":
            return False
        events = self._read_events()
        self._fold(events)
        if holder is None:  # it has ended: all it wrote was written before it let go of the lock
            self.state, self.driver, self.live.paused = "idle", None, False
            self.live.seed(self.run)
            self._log("[cyan]watching[/]: the other process has stopped")
        return started or holder is None or bool(events)

    def _backlog(self) -> None:
        """Where the stages at work stand, from the end of events.jsonl (their counts, a pause);
        the events after it are followed."""
        path = self.path / "events.jsonl"
        size = path.stat().st_size if path.is_file() else 0
        self._followed = max(0, size - BACKLOG_BYTES)
        for e in self._read_events(skip_partial=self._followed > 0):
            if isinstance(e, (StageStarted, StageProgress, TrainStep, Paused, Resumed)):
                self.live.apply(e)

    def _read_events(self, skip_partial: bool = False) -> list[Event]:
        """The events appended to events.jsonl since the last read (whole lines only)."""
        lines, self._followed = appended(self.path / "events.jsonl", self._followed)
        events = []
        for line in lines[1:] if skip_partial else lines:
            try:
                events.append(from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError):  # a record of a newer version, or not one at all
                continue
        return events

    def _fold(self, events: list[Event]) -> None:
        for e in events:
            self.live.apply(e)
            line = describe(e)
            if line is not None:
                self._log(line)

    # the worker thread's body ------------------------------------------------------------------
    def execute(self) -> None:
        """Run (or resume) the pipeline until it ends, fails or is cancelled. Blocks: call it on a
        worker thread."""
        try:
            api.run(self.config, self.path, on_event=self.receive, control=self.control)
            self.state = "cancelled" if self.control.cancelled else "finished"
        except RunInUse as e:  # refused: nothing ran, and the other process's run is followed instead
            self.state, self.error = "idle", str(e)
            self.receive(Message("warning", str(e)))
        except FairError as e:
            self._fail(str(e))
        except Exception as e:  # noqa: BLE001 - the UI must show it, not die of it
            self._fail(f"{type(e).__name__}: {e}")
        finally:
            if self.state in ("running", "paused", "cancelling"):
                self.state = "cancelled"
            self.control = api.Control()  # the next start begins uncancelled

    def _fail(self, text: str) -> None:
        self.state, self.error = "failed", text
        self.receive(Message("error", text))

    # control (UI thread) ---------------------------------------------------------------------
    def start(self) -> None:
        self.state, self.error = "running", None

    def pause(self) -> None:
        if self.state == "running":
            self.control.pause()
            self.state = "paused"

    def resume(self) -> None:
        if self.state == "paused":
            self.control.resume()
            self.state = "running"

    def cancel(self) -> None:
        if self.active:
            self.state = "cancelling"
            self.control.cancel()

    def close(self) -> None:
        self.run.close()
