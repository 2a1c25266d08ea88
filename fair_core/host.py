"""The plugin host: loads plugins from the "fair" entry points and collects what they register.

Built-in plugins load through the same entry points as a third-party package's, and first, so a
built-in keeps its names. A plugin is taken whole or not at all: one that fails to import, breaks
the hook contract (an unknown hook, a wrapper), raises in a hook, or registers a name another
plugin already holds keeps nothing; it is listed with status "error" or "skipped" and its reason,
logged once, and the host and every other plugin go on.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import signal
import threading
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal

import pluggy

import fair_core.hookspecs as hookspecs  # the module: pluggy reads its hook specifications

from .errors import ConfigError, DataError, FairError, PluginError
from .task import check_template

if TYPE_CHECKING:  # pydantic loads with the config, which `fair --help` does not need
    from .config import TaskConfig
    from .stages import Pipeline
    from .task import Task

logger = logging.getLogger(__name__)

DISTRIBUTION = "fair-distill"  # the package whose entry points are the built-in plugins
Status = Literal["ok", "error", "skipped"]


@dataclass
class PluginInfo:
    """One plugin as ``fair plugins`` shows it. ``status`` is "ok", "error" (it is broken) or
    "skipped" (a name it takes is fair's, a built-in's or an earlier plugin's); ``error`` says why."""

    name: str
    version: str | None
    builtin: bool = False
    status: Status = "ok"
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def problem(self) -> str:
        return f"plugin {self.name!r} {'skipped' if self.status == 'skipped' else 'not loaded'}: {self.error}"


@dataclass(frozen=True)
class Command:
    help: str
    configure: hookspecs.Configure
    handler: hookspecs.Handler


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    plugin: str
    meta: dict


Pending = list[tuple[str, Entry]]  # (registry kind, entry): what one plugin registered, not yet kept


class Host:
    """Registries of tasks, teachers, reviewers (parsers, policies), students, commands and
    stages, and the pipeline those stages join."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("fair")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self._interrupts: list[int] = []  # the user's Ctrl-Cs while plugins load (see _noting_interrupts)
        self.registry: dict[str, dict[str, Entry]] = {
            "tasks": {},
            "teachers": {},
            "parsers": {},
            "policies": {},
            "students": {},
            "commands": {},
            "stages": {},
        }

    @property
    def problems(self) -> list[str]:
        """One line for each plugin that is not loaded, and why."""
        return [p.problem() for p in self.plugins if p.status != "ok"]

    # loading -------------------------------------------------------------------------------
    def load_entry_points(self, only: list[str] | None = None) -> Host:
        """Every plugin of the "fair" group (or those named in ``only``): built-ins first, then
        the others by name, so that a clash always keeps the same one."""
        seen = set()
        eps = sorted(metadata.entry_points(group="fair"), key=lambda ep: (not _builtin(ep), ep.name))
        with self._noting_interrupts():
            for ep in eps:
                if only is not None and ep.name not in only or (ep.name, ep.value) in seen:
                    continue  # not selected, or the same plugin seen twice on sys.path
                seen.add((ep.name, ep.value))
                version = ep.dist.version if ep.dist else None
                try:
                    module = ep.load()
                except BaseException as e:  # noqa: BLE001 - its import runs the plugin's own code: even sys.exit()
                    self._reraise_interrupt(e)
                    info = PluginInfo(ep.name, version, _builtin(ep))
                    self.plugins.append(info)
                    self._drop(info, "error", f"failed to import: {one_line(e)}")
                    continue
                self.add(module, ep.name, version, _builtin(ep))
        return self

    @contextlib.contextmanager
    def _noting_interrupts(self) -> Iterator[None]:
        """Notes each Ctrl-C that reaches fair while plugins load (in the main thread, where signals
        land), and lets it interrupt as it would have: a KeyboardInterrupt a plugin raises is its
        failure, one the user sent stops fair (:meth:`_reraise_interrupt`)."""
        previous = signal.getsignal(signal.SIGINT)
        if threading.current_thread() is not threading.main_thread() or previous in (signal.SIG_IGN, None):
            yield
            return

        def note(signum, frame) -> None:
            self._interrupts.append(signum)
            if callable(previous):
                previous(signum, frame)
            else:  # the default action, as Python's own handler takes it
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, note)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _reraise_interrupt(self, e: BaseException) -> None:
        """Raise ``e`` again where it is the user's Ctrl-C rather than a plugin's own doing."""
        if isinstance(e, KeyboardInterrupt) and self._interrupts:
            raise e

    def add(self, plugin: object, name: str, version: str | None = None, builtin: bool = False) -> PluginInfo:
        """Load one plugin (a module, or any object with ``@hookimpl`` functions) and run its hooks
        through pluggy; keep what it registers only when all of it is valid and clashes with nothing."""
        holder = self._loaded(name)
        info = PluginInfo(name, version, builtin)
        self.plugins.append(info)
        if holder is not None:
            return self._drop(
                info,
                "skipped",
                f"the name {name!r} is taken by {_who(holder)}: rename its "
                f"entry point, or leave one out with FAIR_PLUGINS",
            )
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as e:  # a hook's arguments, or a wrapper that is no generator
            return self._drop(info, "error", "; ".join(str(e).splitlines()))
        except ValueError as e:  # the same object already loaded under another name
            return self._drop(info, "error", str(e).splitlines()[0])
        callers = self.pm.get_hookcallers(plugin) or []
        info.hooks = sorted({c.name for c in callers})
        try:
            self.pm.check_pending()  # the plugins before this one passed: only this one can fail
        except pluggy.PluginValidationError:
            unknown = sorted(
                c.name
                for c in callers
                if not c.has_spec() and any(not i.optionalhook for i in c.get_hookimpls() if i.plugin is plugin)
            )
            return self._drop(info, "error", "; ".join(_unknown(hook) for hook in unknown), plugin)
        wrappers = sorted(
            {c.name for c in callers for i in c.get_hookimpls() if i.plugin is plugin and (i.wrapper or i.hookwrapper)}
        )
        if wrappers:
            return self._drop(
                info,
                "error",
                f"{', '.join(wrappers)} is declared as a wrapper: a register hook must be a plain @hookimpl function",
                plugin,
            )
        pending: Pending = []
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        for hook in sorted(c.name for c in callers if c.name in REGISTRARS):
            try:  # through pluggy, with only this plugin's implementations
                self.pm.subset_hook_caller(hook, others)(register=REGISTRARS[hook](name, pending))
            except BaseException as e:  # noqa: BLE001 - the plugin's own code: anything may come out
                self._reraise_interrupt(e)
                return self._drop(info, "error", f"failed in {hook}: {one_line(e)}", plugin)
        return self._commit(info, pending, plugin)

    def _commit(self, info: PluginInfo, pending: Pending, plugin: object) -> PluginInfo:
        """Keep all the plugin registered, or, when one name is taken, none of it."""
        seen = set()
        for kind, entry in pending:
            what = f"{_singular(kind)} {entry.name!r}"
            if (kind, entry.name) in seen:
                return self._drop(info, "error", f"it registers {what} twice", plugin)
            seen.add((kind, entry.name))
            holder = self.registry[kind].get(entry.name)
            if holder is not None:
                return self._drop(
                    info,
                    "skipped",
                    f"its {what} is already registered by "
                    f"{_who(self._loaded(holder.plugin))}: rename it, or leave "
                    f"one plugin out with FAIR_PLUGINS",
                    plugin,
                )
        stages = [entry for kind, entry in pending if kind == "stages"]
        if stages:
            try:  # placed after a stage that exists, with a name, prompt kinds and purposes of its own
                self._pipeline([*self.registry["stages"].values(), *stages])
            except FairError as e:
                return self._drop(info, "error", str(e), plugin)
        for kind, entry in pending:
            self.registry[kind][entry.name] = entry
            info.registered.setdefault(kind, []).append(entry.name)
        return info

    def unload(self, name: str, status: Status, reason: str) -> None:
        """Unload a loaded plugin and all it registered, for a problem only a layer above can see
        (the CLI's: a command named like one of fair's own, or one whose arguments fail)."""
        info = self._loaded(name)
        if info is None:
            return
        for kind, names in info.registered.items():
            for n in names:
                del self.registry[kind][n]
        info.registered = {}
        self._drop(info, status, reason, self.pm.get_plugin(name))

    def _drop(self, info: PluginInfo, status: Status, error: str, plugin: object = None) -> PluginInfo:
        info.status, info.error = status, error
        if plugin is not None:
            self.pm.unregister(plugin)
        logger.warning(info.problem())
        return info

    def _loaded(self, name: str) -> PluginInfo | None:
        return next((p for p in self.plugins if p.name == name and p.status == "ok"), None)

    # lookup --------------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> Any:
        table = self.registry[kind]
        if name not in table:
            known = ", ".join(sorted(table)) or "none loaded"
            raise PluginError(f"unknown {_singular(kind)} {name!r}: known {kind} are {known}")
        return table[name].obj

    def names(self, kind: str) -> list[str]:
        return sorted(self.registry[kind])

    @property
    def pipeline(self) -> Pipeline:
        """The stages a run of this host runs: the built-in ones and, each after the stage it
        names, those its plugins registered, in the order the plugins loaded."""
        return self._pipeline(self.registry["stages"].values())

    @staticmethod
    def _pipeline(entries: Iterable[Entry]) -> Pipeline:
        from .stages import PIPELINE

        pipeline = PIPELINE.copy()
        for entry in entries:
            pipeline.add(entry.obj, entry.meta["after"])
        return pipeline

    def task(self, config: TaskConfig) -> Task:
        """The task ``config`` ([task]) describes, built but not yet loaded, with the templates
        the pipeline's stages bring for their own prompt kinds (the task's or the config's win)."""
        factory = self.get("tasks", config.name)
        pipeline = self.pipeline
        kinds = pipeline.prompt_fields()
        templates = config.prompts if isinstance(config.prompts, dict) else {}
        unknown = sorted(set(templates) - set(kinds))
        if unknown:
            raise DataError(f"unknown prompt kind {unknown[0]!r} for task {config.name}: use one of {', '.join(kinds)}")
        for kind, template in templates.items():
            check_template(kind, template, kinds[kind])
        source = config.source()
        takes = getattr(factory, "source_keys", None)  # a factory that is not a Task class takes them all
        refused = [key for key in source if takes is not None and key not in takes]
        if refused:
            raise ConfigError(
                f"config error: task {config.name!r} takes no task.{refused[0]}: remove it, or set "
                f'task.name = "dataset" to read your own data (docs/tasks.md)'
            )
        task = factory(data_dir=config.data_dir, prompts=config.prompts, seed=config.seed, **source)
        task.prompts = {**pipeline.default_prompts(), **task.prompts}
        return task


# the register callbacks, one per hook: each only collects; the host decides when the plugin is done


def _collect(plugin: str, pending: Pending, kind: str, name: str, obj: Any, **meta: Any) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a {_singular(kind)}'s name must be a non-empty string, not {name!r}")
    pending.append((kind, Entry(name, obj, plugin, meta)))


def _tasks(plugin: str, pending: Pending) -> hookspecs.RegisterTask:
    def register(name: str, factory: hookspecs.TaskFactory) -> None:
        _collect(plugin, pending, "tasks", name, factory)

    return register


def _teachers(plugin: str, pending: Pending) -> hookspecs.RegisterTeacher:
    def register(name: str, factory: hookspecs.TeacherFactory) -> None:
        _collect(plugin, pending, "teachers", name, factory)

    return register


def _reviewers(plugin: str, pending: Pending) -> hookspecs.RegisterReviewer:
    def register(name: str, obj: Any, kind: str = "policy") -> None:
        tables = {"parser": "parsers", "policy": "policies"}
        if kind not in tables:
            raise ValueError(f"kind must be 'parser' or 'policy', not {kind!r}")
        _collect(plugin, pending, tables[kind], name, obj)

    return register


def _students(plugin: str, pending: Pending) -> hookspecs.RegisterStudent:
    def register(name: str, factory: hookspecs.StudentFactory, local_path: hookspecs.LocalPath | None = None) -> None:
        _collect(plugin, pending, "students", name, factory, **({"local_path": local_path} if local_path else {}))

    return register


def _commands(plugin: str, pending: Pending) -> hookspecs.RegisterCommand:
    def register(name: str, help: str, configure: hookspecs.Configure, handler: hookspecs.Handler) -> None:
        _collect(plugin, pending, "commands", name, Command(help, configure, handler))

    return register


def _stages(plugin: str, pending: Pending) -> hookspecs.RegisterStage:
    def register(stage: Any, after: str) -> None:
        from .stages import Stage

        if not isinstance(stage, Stage):
            raise TypeError(f"register_stages takes a fair_core.stages.Stage, not {type(stage).__name__}")
        if not isinstance(after, str):
            raise TypeError(f"after must name a stage, not {after!r}")
        _collect(plugin, pending, "stages", stage.name, stage, after=after)

    return register


REGISTRARS: dict[str, Callable[[str, Pending], Any]] = {
    "register_tasks": _tasks,
    "register_teachers": _teachers,
    "register_reviewers": _reviewers,
    "register_students": _students,
    "register_commands": _commands,
    "register_stages": _stages,
}


def one_line(e: BaseException) -> str:
    """A plugin's exception as one line: its type, and its message when it has one."""
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _unknown(hook: str) -> str:
    close = difflib.get_close_matches(hook, REGISTRARS, n=1)
    return (
        f"unknown hook {hook!r}"
        + (f" (did you mean {close[0]!r}?)" if close else "")
        + f": fair's hooks are {', '.join(sorted(REGISTRARS))}"
    )


def _singular(kind: str) -> str:
    return kind.removesuffix("ies") + "y" if kind.endswith("ies") else kind.removesuffix("s")


def _who(info: PluginInfo | None) -> str:
    if info is None:
        return "another plugin"
    return f"the built-in plugin {info.name!r}" if info.builtin else f"plugin {info.name!r}"


def _builtin(ep: metadata.EntryPoint) -> bool:
    return ep.dist is not None and ep.dist.name.replace("_", "-").lower() == DISTRIBUTION


def selected_plugins() -> list[str] | None:
    """FAIR_PLUGINS=a,b loads only those; set and empty loads none; unset loads all."""
    raw = os.environ.get("FAIR_PLUGINS")
    if raw is None:
        return None
    return [p.strip() for p in raw.split(",") if p.strip()]


_host: Host | None = None


def get_host() -> Host:
    """The process-wide host, loaded once from entry points."""
    global _host
    if _host is None:
        _host = Host().load_entry_points(selected_plugins())
    return _host


def reset_host() -> None:
    global _host
    _host = None
