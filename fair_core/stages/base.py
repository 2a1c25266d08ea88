"""What a stage is: its declaration (:class:`Stage`, with the :class:`Prompt` kinds it renders and
the :class:`Purpose` of each teacher call it makes), what it works with (:class:`Context`), and
the pipeline that orders the declarations (:class:`Pipeline`)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Iterator, Protocol

from ..errors import ConfigError, FairError

if TYPE_CHECKING:
    from pathlib import Path

    from typing_extensions import TypeIs

    from ..config import RunConfig
    from ..gateway.gateway import Gateway
    from ..runs.events import Event
    from ..runs.splits import RunItems
    from ..runs.store import Store
    from ..task import Task


class RunState(Protocol):
    """What a stage uses of its run. The run directory (``fair_core.runs.rundir.Run``), a layer
    above the stages, hands itself in: the stages import nothing of it."""

    path: Path
    config: RunConfig
    store: Store

    def round_dir(self, round: int) -> Path: ...

    def publish(self, event: Event) -> None: ...


class PluginHost(Protocol):
    """What a stage uses of the plugin host (``fair_core.host.Host``, a layer above): the
    pipeline it runs in and the plugins' parsers and policies."""

    @property
    def pipeline(self) -> Pipeline: ...

    def get(self, kind: str, name: str) -> Any: ...


class StageCancelled(Exception):
    """Raised by a stage that noticed the run was cancelled; what it stored stays."""


class Need(StrEnum):
    """What a stage needs from the runner besides the store and the task; the runner prepares
    it before the stage runs, and ``check`` makes sure of it before anything runs."""

    NOTHING = "nothing"
    STUDENT = "student"  # the student, loaded in this process (Context.student)
    UNLOADED_STUDENT = "unloaded student"  # a loaded one is released: its memory goes to a child process
    COMMITTEE = "committee"  # the teachers, through the run's gateway (Context.gateway)


@dataclass(frozen=True)
class Prompt:
    """A prompt kind a stage renders (``ctx.task.prompt(kind, **fields)``) and the fields its
    template may use. Every task writes the built-in stages' kinds; a plugin's stage gives its
    kind a ``default`` template, which a task's ``prompts`` (or the config's ``task.prompts``)
    may replace."""

    kind: str
    fields: tuple[str, ...]
    default: str | None = None


@dataclass(frozen=True)
class Purpose:
    """One kind of teacher call a committee stage makes (its requests' ``purpose``), as ``fair
    estimate`` counts it: ``typical`` completion tokens until a run has measured some; ``quotes``
    the kind of writing its prompt quotes and ``student`` whether it quotes the student's wrong
    answer, texts that an estimate made before they exist adds as tokens."""

    name: str
    typical: int
    quotes: str | None = None
    student: bool = False


# (teacher, make): ``make()`` builds the request and the maker of its answer's records (see committee.Job)
Jobs = Callable[["Context"], list[tuple[str, Callable[[], tuple[Any, Any]]]]]


@dataclass(frozen=True)
class Stage:
    """One stage, declared by its module as ``STAGE``: all the engine needs to run, resume, redo,
    estimate and show it. ``run(ctx)`` does the stage's work for ``ctx.round`` and returns its
    summary (stored, and shown by the console, the report and the UI); it must be idempotent:
    what a run stored before is not done again. ``reads`` and ``writes`` say in a few words what
    it takes from and leaves in the store and the run directory; ``records`` are the record
    classes (fair_core.runs.records) it stores.

    ``redo_keys``: config keys (a section stands for all its keys) that only this stage and later
    ones read: changing one redoes round 0 from here on (rundir); ``clear(run, round)`` removes
    what a redone stage left that its stale mark does not cover (files, attempts). ``prompts``:
    the prompt kinds it renders. A committee stage's ``jobs(ctx)`` lists the calls it still has to
    make, and ``purposes`` their kinds: ``fair estimate`` counts those very requests."""

    name: str
    run: Callable[[Context], dict] | Callable[[Context], Awaitable[dict]]
    needs: Need
    reads: str
    writes: str
    records: tuple[type, ...] = ()
    redo_keys: tuple[str, ...] = ()
    clear: Callable[[RunState, int], None] | None = None
    prompts: tuple[Prompt, ...] = ()
    jobs: Jobs | None = None
    purposes: tuple[Purpose, ...] = ()

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

    run: RunState
    host: PluginHost
    task: Task
    round: int
    student: Callable[..., Any]  # student(trained=False): the round's student before (or after) its training
    student_source: Callable[[int], tuple[str, str | None]]  # (base model folder, adapter) that starts a round
    cancelled: Callable[[], bool]  # the run was cancelled: a stage stops at its next check_cancelled
    gateway: Gateway | None = None  # the run's, given to the stages that need the committee
    items: RunItems | None = None  # the round's train and test items, worked out once (examine.run_items)

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
    """The stages in the order they run: the built-in ones (``fair_core.stages.PIPELINE``) and
    those plugins add (``Host.pipeline``). The runner, its check of the config's ``stages``, the
    run directory's redo, the estimate, the console, the report and the UI all read the stages
    and what they declare from here."""

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

    def ordered(self, names: Iterable[str] | None) -> list[str]:
        """Those of ``names`` that are stages, in pipeline order; None (a config that leaves
        ``stages`` out): every stage."""
        if names is None:
            return self.names()
        wanted = set(names)
        return [n for n in self.stages if n in wanted]

    def needing(self, need: Need) -> list[str]:
        return [s.name for s in self if s.needs is need]

    def check(self, names: Iterable[str] | None) -> None:
        """A ConfigError naming the first of ``names`` (a config's or ``--stages``'s) that is no
        stage here: the schema knows no stage names, the pipeline does."""
        for name in names or ():
            if name not in self.stages:
                raise ConfigError(f"config error: stages: unknown stage {name!r}: use {', '.join(self.stages)}")

    def redo_from(self) -> dict[str, str]:
        """Config key -> the stage whose ``redo_keys`` hold it, in pipeline order."""
        return {key: s.name for s in self for key in s.redo_keys}

    def prompt_fields(self, defaults: bool = True) -> dict[str, tuple[str, ...]]:
        """Prompt kind -> its fields, in pipeline order; ``defaults=False`` leaves out the kinds
        that bring their own template (those every task must write)."""
        return {p.kind: p.fields for s in self for p in s.prompts if defaults or p.default is None}

    def default_prompts(self) -> dict[str, str]:
        """The templates the stages bring for their own prompt kinds."""
        return {p.kind: p.default for s in self for p in s.prompts if p.default is not None}

    def purposes(self) -> dict[str, Purpose]:
        """Every committee call's purpose, in pipeline order."""
        return {p.name: p for s in self for p in s.purposes}

    def copy(self) -> Pipeline:
        return Pipeline(self)

    def add(self, stage: Stage, after: str) -> None:
        """Put a stage defined outside this package (a plugin's, a test's) right after the stage
        named ``after``; its prompt kinds and purposes must be its own."""
        taken = {p.kind for p in stage.prompts} & set(self.prompt_fields())
        taken |= {p.name for p in stage.purposes} & set(self.purposes())
        if taken:
            raise FairError(f"stage {stage.name!r} declares {sorted(taken)[0]!r}, which another stage has: rename it")
        if stage.name in self.stages:
            raise FairError(f"a stage named {stage.name!r} exists already: give the new one another name")
        if after not in self.stages:
            raise FairError(f"no stage {after!r} to put {stage.name!r} after: use one of {', '.join(self.stages)}")
        items = list(self.stages.items())
        at = self.names().index(after) + 1
        self.stages = dict(items[:at] + [(stage.name, stage)] + items[at:])
