"""The whole plugin contract on one page.

Every hook receives a ``register`` callback, so one plugin may add any number of things
and the host always knows which plugin added what.
"""

import pluggy

hookspec = pluggy.HookspecMarker("fair")
hookimpl = pluggy.HookimplMarker("fair")


@hookspec
def register_tasks(register):
    """Add reasoning tasks: ``register(name, factory)``. fair calls
    ``factory(data_dir=None, prompts=None, seed=0)``, always with keywords and any of them left
    out, and gets a :class:`fair_core.task.Task`; a Task subclass is such a factory. ``data_dir``
    is the user's data folder (None: ``$FAIR_DATA_DIR``), ``prompts`` a preset name or templates
    by prompt kind (see :data:`fair_core.task.PROMPT_FIELDS`)."""


@hookspec
def register_teachers(register):
    """Add teacher backends: ``register(name, factory)``. fair calls ``factory(config)`` with a
    :class:`fair_core.config.TeacherConfig` and gets a :class:`fair_core.gateway.backend.Backend`;
    a Backend subclass is such a factory."""


@hookspec
def register_reviewers(register):
    """Add score parsers and review policies: ``register(name, obj, kind="parser"|"policy")``.
    A parser is ``parse(text) -> int | None`` and never raises; for a policy fair calls
    ``policy(threshold)`` and gets a :class:`fair_core.review.ReviewPolicy`, whose
    ``decide(scores)`` returns ``(accepted, statistic)``; a ReviewPolicy subclass is such a factory."""


@hookspec
def register_students(register):
    """Add student backends: ``register(name, factory, local_path=None)``. fair calls
    ``factory(config, adapter=None)`` with a :class:`fair_core.config.StudentConfig` whose
    ``model`` is the folder to load (the one ``local_path(config)`` named, or a later round's
    trained student) and ``adapter`` a LoRA adapter folder to load on top, or None; it gets a
    :class:`fair_core.student.Student`. ``local_path(config) -> str`` names the folder the
    trainer fine-tunes (default: ``config.model``): the place to resolve an alias or download a
    hub model."""


@hookspec
def register_commands(register):
    """Add CLI commands: ``register(name, help, configure, handler)``; ``configure(parser)`` adds
    argparse arguments, ``handler(args) -> int`` runs the command."""
