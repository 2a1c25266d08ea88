"""The whole plugin contract on one page.

Every hook receives a ``register`` callback, so one plugin may add any number of things
and the host always knows which plugin added what.
"""

import pluggy

hookspec = pluggy.HookspecMarker("fair")
hookimpl = pluggy.HookimplMarker("fair")


@hookspec
def register_tasks(register):
    """Add reasoning tasks: ``register(name, factory)``; ``factory(**options)`` returns a
    :class:`fair_core.task.Task`."""


@hookspec
def register_teachers(register):
    """Add teacher backends: ``register(name, factory)``; ``factory(config)`` takes a
    :class:`fair_core.config.TeacherConfig` and returns a :class:`fair_core.gateway.backend.Backend`."""


@hookspec
def register_reviewers(register):
    """Add score parsers and review policies: ``register(name, obj, kind="parser"|"policy")``.
    A parser is ``parse(text) -> int | None``; a policy is a factory ``policy(threshold)`` whose
    result maps a list of counted scores to accept/reject (see :mod:`fair_core.review`)."""


@hookspec
def register_students(register):
    """Add student backends: ``register(name, factory)``; ``factory(config)`` takes a
    :class:`fair_core.config.StudentConfig` and returns a :class:`fair_core.student.Student`."""


@hookspec
def register_commands(register):
    """Add CLI commands: ``register(name, help, configure, handler)``; ``configure(parser)`` adds
    argparse arguments, ``handler(args) -> int`` runs the command."""
