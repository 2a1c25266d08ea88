"""Typed engine events, an in-process bus, and the JSONL sink.

The engine publishes; the console, the run's JSONL log and the TUI subscribe. Events are small
dataclasses so that subscribers can match on their type.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, TextIO

from ..inert import inert_json
from .disk import is_full

logger = logging.getLogger(__name__)


@dataclass
class Event:
    type: ClassVar[str] = "event"
    ts: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **asdict(self)}


@dataclass
class StageStarted(Event):
    type: ClassVar[str] = "stage_started"
    stage: str
    round: int
    total: int = 0


@dataclass
class StageProgress(Event):
    type: ClassVar[str] = "stage_progress"
    stage: str
    round: int
    done: int
    total: int
    split: str | None = None  # the split whose items are counted (examine, evaluate); None: calls


@dataclass
class StageFinished(Event):
    type: ClassVar[str] = "stage_finished"
    stage: str
    round: int
    summary: dict = field(default_factory=dict)


def facts(summary: dict) -> str:
    """A stage summary as "calls 1161, failed 0" (timings and empty values left out)."""

    def value(v) -> str:
        if isinstance(v, float):
            return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"
        return str(v)

    return ", ".join(f"{k} {value(v)}" for k, v in summary.items() if k != "seconds" and v is not None)


@dataclass
class Paused(Event):
    """No new teacher call starts until :class:`Resumed`; those in flight finish."""

    type: ClassVar[str] = "paused"
    round: int
    stage: str


@dataclass
class Resumed(Event):
    type: ClassVar[str] = "resumed"
    round: int
    stage: str


@dataclass
class CallStarted(Event):
    type: ClassVar[str] = "call_started"
    teacher: str
    purpose: str
    item_id: str


@dataclass
class CallDone(Event):
    type: ClassVar[str] = "call_done"
    teacher: str
    purpose: str
    item_id: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    cached: bool = False


@dataclass
class CallRetried(Event):
    type: ClassVar[str] = "call_retried"
    teacher: str
    purpose: str
    item_id: str
    attempt: int
    reason: str
    delay_s: float


@dataclass
class CallFailed(Event):
    type: ClassVar[str] = "call_failed"
    teacher: str
    purpose: str
    item_id: str
    reason: str


@dataclass
class BudgetReached(Event):
    type: ClassVar[str] = "budget_reached"
    spent_usd: float
    budget_usd: float


@dataclass
class TrainStep(Event):
    type: ClassVar[str] = "train_step"
    round: int
    step: int
    max_steps: int
    epoch: float = 0.0
    loss: float | None = None
    loss_feedback: float | None = None
    loss_rationale: float | None = None
    learning_rate: float | None = None
    tokens_per_second: float | None = None
    samples_per_second: float | None = None
    memory_mb: float | None = None
    eta_s: float | None = None


@dataclass
class EvalResult(Event):
    type: ClassVar[str] = "eval_result"
    round: int
    split: str
    accuracy: float
    n: int
    when: str = "after"  # "before" (the round's starting student) or "after" training

    def line(self) -> str:
        """``round 0 accuracy after training: 10.0% of 50 [3.3, 21.8] test items (95% CI)``."""
        from ..stats import accuracy, describe

        return (
            f"round {self.round} accuracy {self.when} training: "
            f"{describe(accuracy(round(self.accuracy * self.n), self.n))} {self.split} items (95% CI)"
        )


@dataclass
class Message(Event):
    type: ClassVar[str] = "message"
    level: str
    text: str


EVENT_TYPES: dict[str, type[Event]] = {cls.type: cls for cls in Event.__subclasses__()}


def from_dict(data: dict) -> Event:
    """Rebuild an event from its JSON form (as the training process writes it)."""
    cls = EVENT_TYPES[data["type"]]
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


Subscriber = Callable[[Event], None]


class Bus:
    """Synchronous publish/subscribe; a failing subscriber never breaks the engine."""

    def __init__(self) -> None:
        self._subs: list[Subscriber] = []
        self._lock = threading.Lock()
        self._failed: set[int] = set()  # subscribers (by id) whose failure was already logged in full

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subs.append(fn)
        return lambda: self._subs.remove(fn)

    def publish(self, event: Event) -> None:
        for fn in list(self._subs):
            try:
                fn(event)
            except Exception:  # noqa: BLE001 - a UI glitch must not stop a paid run
                # a broken subscriber fails on every event: its first failure is a warning with the
                # traceback, the rest are for debugging only
                level = logging.DEBUG if id(fn) in self._failed else logging.WARNING
                self._failed.add(id(fn))
                logger.log(level, "event subscriber %r failed on %s", fn, event.type, exc_info=True)


def appended(path: Path, offset: int) -> tuple[list[bytes], int]:
    """The whole lines appended to ``path`` (a JSONL log another process writes) since byte
    ``offset``, and the offset after them: a line still being written is read next time."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    return data[:end].splitlines(), offset + end


def drop_torn_line(path: Path) -> bytes:
    """Remove a last line cut short (a kill or a full disk in the middle of its write) from the
    file of lines ``path``, if it exists; its whole lines."""
    if not path.exists():
        return b""
    data = path.read_bytes()
    whole = data.rfind(b"\n") + 1
    if whole < len(data):
        with open(path, "r+b") as f:
            f.truncate(whole)
    return data[:whole]


class JsonlSink:
    """Writes every event as one flushed JSON line: appended to a file (the run's events.jsonl,
    ``fair run --events PATH``), or to an open stream (stdout, for ``--events -``) that it leaves open."""

    def __init__(self, target: str | Path | TextIO) -> None:
        self._owned = isinstance(target, (str, Path))
        self._file: TextIO = open(target, "a", encoding="utf-8") if isinstance(target, (str, Path)) else target
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        line = inert_json(event.to_dict())  # a stream tailed in a terminal stays inert
        with self._lock:
            try:
                self._file.write(line + "\n")
                self._file.flush()  # a reader tailing the file or the pipe sees each event as it happens
            except OSError as e:  # a full disk: the line waits in the buffer; the store's write fails next
                if not is_full(e):
                    raise

    def close(self) -> None:
        if self._owned:
            self._file.close()
