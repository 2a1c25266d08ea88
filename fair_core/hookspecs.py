"""The whole plugin contract on one page.

Every hook receives a ``register`` callback, so one plugin may add any number of things and the
host always knows which plugin added what. The Protocols below type those callbacks and what is
registered through them; the hooks' docstrings say the same in words. A hook must be a plain
``@hookimpl`` function (the host refuses wrappers: a register hook has nothing to wrap).

The engine's classes are imported for type checkers only, so loading a plugin stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

import pluggy

if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping
    from pathlib import Path

    from .config import StudentConfig, TeacherConfig
    from .gateway.backend import Backend
    from .review import ReviewPolicy, ScoreParser
    from .stages import Stage
    from .student import Student
    from .task import Task

hookspec = pluggy.HookspecMarker("fair")
hookimpl = pluggy.HookimplMarker("fair")


# what plugins register ---------------------------------------------------------------------------
class TaskFactory(Protocol):
    def __call__(
        self, *, data_dir: str | Path | None = None, prompts: str | Mapping[str, str] | None = None, seed: int = 0
    ) -> Task: ...


class TeacherFactory(Protocol):
    def __call__(self, config: TeacherConfig) -> Backend: ...


class PolicyFactory(Protocol):
    def __call__(self, threshold: float) -> ReviewPolicy: ...


class StudentFactory(Protocol):
    def __call__(self, config: StudentConfig, adapter: str | None = None) -> Student: ...


class LocalPath(Protocol):
    def __call__(self, config: StudentConfig) -> str: ...


class Configure(Protocol):
    def __call__(self, parser: argparse.ArgumentParser) -> None: ...


class Handler(Protocol):
    def __call__(self, args: argparse.Namespace) -> int: ...


# the register callbacks the hooks receive -------------------------------------------------------
class RegisterTask(Protocol):
    def __call__(self, name: str, factory: TaskFactory) -> None: ...


class RegisterTeacher(Protocol):
    def __call__(self, name: str, factory: TeacherFactory) -> None: ...


class RegisterReviewer(Protocol):
    def __call__(
        self, name: str, obj: ScoreParser | PolicyFactory, kind: Literal["parser", "policy"] = "policy"
    ) -> None: ...


class RegisterStudent(Protocol):
    def __call__(self, name: str, factory: StudentFactory, local_path: LocalPath | None = None) -> None: ...


class RegisterCommand(Protocol):
    def __call__(self, name: str, help: str, configure: Configure, handler: Handler) -> None: ...


class RegisterStage(Protocol):
    def __call__(self, stage: Stage, after: str) -> None: ...


# the hooks ---------------------------------------------------------------------------------------
@hookspec
def register_tasks(register: RegisterTask) -> None:
    """Add reasoning tasks: ``register(name, factory)``. fair calls
    ``factory(data_dir=None, prompts=None, seed=0)``, always with keywords and any of them left
    out, and gets a :class:`fair_core.task.Task`; a Task subclass is such a factory. ``data_dir``
    is the user's data folder (None: ``$FAIR_DATA_DIR``), ``prompts`` a preset name or templates
    by prompt kind (see :data:`fair_core.task.PROMPT_FIELDS`)."""


@hookspec
def register_teachers(register: RegisterTeacher) -> None:
    """Add teacher backends: ``register(name, factory)``. fair calls ``factory(config)`` with a
    :class:`fair_core.config.TeacherConfig` and gets a :class:`fair_core.gateway.backend.Backend`;
    a Backend subclass is such a factory."""


@hookspec
def register_reviewers(register: RegisterReviewer) -> None:
    """Add score parsers and review policies: ``register(name, obj, kind="parser"|"policy")``.
    A parser is ``parse(text) -> int | None`` and never raises; for a policy fair calls
    ``policy(threshold)`` and gets a :class:`fair_core.review.ReviewPolicy`, whose
    ``decide(scores)`` returns ``(accepted, statistic)``; a ReviewPolicy subclass is such a factory."""


@hookspec
def register_students(register: RegisterStudent) -> None:
    """Add student backends: ``register(name, factory, local_path=None)``. fair calls
    ``factory(config, adapter=None)`` with a :class:`fair_core.config.StudentConfig` whose
    ``model`` is the folder to load (the one ``local_path(config)`` named, or a later round's
    trained student) and ``adapter`` a LoRA adapter folder to load on top, or None; it gets a
    :class:`fair_core.student.Student`. ``local_path(config) -> str`` names the folder the
    trainer fine-tunes (default: ``config.model``): the place to resolve an alias or download a
    hub model."""


@hookspec
def register_commands(register: RegisterCommand) -> None:
    """Add CLI commands: ``register(name, help, configure, handler)``; ``configure(parser)`` adds
    argparse arguments, ``handler(args) -> int`` runs the command. A name fair itself uses
    (``run``, ``plugins``, ...) is refused."""


@hookspec
def register_stages(register: RegisterStage) -> None:
    """Add pipeline stages: ``register(stage, after)`` puts a :class:`fair_core.stages.Stage`
    right after the stage named ``after`` (a built-in one, or one an earlier plugin added). The
    declaration is all fair needs: the runner calls ``run(ctx)`` for each round it has not done,
    its ``redo_keys`` redo it, ``fair estimate`` counts the calls ``jobs(ctx)`` lists, its
    ``prompts`` bring their templates, and the report and the TUI list it. A name, prompt kind or
    call purpose another stage has is refused."""
