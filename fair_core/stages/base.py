"""What a stage is: its declaration (:class:`Stage`), what it works with (:class:`Context`), and
the pipeline that orders the declarations (:class:`Pipeline`)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Iterator

from ..errors import FairError

if TYPE_CHECKING:
    from typing_extensions import TypeIs

    from ..config import RunConfig
    from ..gateway.gateway import Gateway
    from ..host import Host
    from ..rundir import Run
    from ..splits import Split
    from ..store import Store
    from ..task import Task


class StageCancelled(Exception):
    """Raised by a stage that noticed the run was cancelled; what it stored stays."""


class Need(StrEnum):
    """What a stage needs from the runner besides the store and the task; the runner prepares
    it before the stage runs, and ``check`` makes sure of it before anything runs."""

    NOTHING = "nothing"
    STUDENT = "student"  # the student, loaded in this process (Context.student)
    TRAINER = "trainer"  # the student's files for a child process, and the memory a loaded student holds
    COMMITTEE = "committee"  # the teachers, through the run's gateway (Context.gateway)


@dataclass(frozen=True)
class Stage:
    """One stage, declared by its module as ``STAGE``. ``run(ctx)`` does the stage's work for
    ``ctx.round`` and returns its summary (stored, and shown by the console, the report and the
    UI); it must be idempotent: what a run stored before is not done again. ``reads`` and
    ``writes`` say in a few words what it takes from and leaves in the store and the run
    directory, for the docs and for whoever adds the next stage."""

    name: str
    run: Callable[[Context], dict] | Callable[[Context], Awaitable[dict]]
    needs: Need
    reads: str
    writes: str

    @property
    def is_async(self) -> bool:
        """An async stage runs on the runner's event loop, where its teacher calls overlap; any
        other runs on a worker thread, so that the loop stays free for pause and cancel."""
        return runs_async(self.run)


def runs_async(
    run: Callable[[Context], dict] | Callable[[Context], Awaitable[dict]],
) -> TypeIs[Callable[[Context], Awaitable[dict]]]:
    """Whether a stage's ``run`` is async (see Stage.is_async), as the type checker can follow."""
    return inspect.iscoroutinefunction(run)


@dataclass
class Context:
    """What a stage works with: the run, the plugins, the task, the round, and what the runner
    provides (see Need)."""

    run: Run
    host: Host
    task: Task
    round: int
    student: Callable[..., Any]  # student(trained=False): the round's student before (or after) its training
    student_source: Callable[[int], tuple[str, str | None]]  # (base model folder, adapter) that starts a round
    cancelled: Callable[[], bool]  # the run was cancelled: a stage stops at its next check_cancelled
    gateway: Gateway | None = None  # the run's, given to the stages that need the committee
    split: Split | None = None  # the round's train and test items, worked out once (examine.run_split)

    @property
    def config(self) -> RunConfig:
        return self.run.config

    @property
    def store(self) -> Store:
        return self.run.store

    def check_cancelled(self) -> None:
        if self.cancelled():
            raise StageCancelled()


class Pipeline:
    """The stages in the order they run. The runner, the config's ``stages`` check, the console,
    the report and the UI all read stage names, order and needs from here."""

    def __init__(self, stages: Iterable[Stage]) -> None:
        self.stages = {s.name: s for s in stages}

    def __iter__(self) -> Iterator[Stage]:
        return iter(self.stages.values())

    def __getitem__(self, name: str) -> Stage:
        return self.stages[name]

    def names(self) -> list[str]:
        return list(self.stages)

    def rank(self, name: str) -> int:
        """``name``'s place in the order; a name the pipeline lacks (a stage of a plugin not
        loaded now, in an old store) comes after all of them."""
        names = self.names()
        return names.index(name) if name in names else len(names)

    def ordered(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` that are stages, in pipeline order."""
        wanted = set(names)
        return [n for n in self.stages if n in wanted]

    def needing(self, need: Need) -> list[str]:
        return [s.name for s in self if s.needs is need]

    def add(self, stage: Stage, after: str) -> None:
        """Put a stage defined outside this package (a test's, some day a plugin's) right after
        the stage named ``after``."""
        if stage.name in self.stages:
            raise FairError(f"a stage named {stage.name!r} exists already: give the new one another name")
        if after not in self.stages:
            raise FairError(f"no stage {after!r} to put {stage.name!r} after: use one of {', '.join(self.stages)}")
        items = list(self.stages.items())
        at = self.names().index(after) + 1
        self.stages = dict(items[:at] + [(stage.name, stage)] + items[at:])
