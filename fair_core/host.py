"""The plugin host: loads plugins from the "fair" entry points and collects what they register.

Built-in plugins load through the same entry points as a third-party package's. A plugin that
fails to import or raises inside a hook is reported once, by name, and skipped; the host goes on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Callable

import pluggy

from . import hookspecs
from .errors import PluginError

HOOKS = ("register_tasks", "register_teachers", "register_reviewers", "register_students",
         "register_commands")


@dataclass
class PluginInfo:
    name: str
    version: str | None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "hooks": self.hooks,
                "registered": self.registered}


@dataclass(frozen=True)
class Command:
    help: str
    configure: Callable
    handler: Callable


@dataclass(frozen=True)
class Entry:
    name: str
    obj: Any
    plugin: str
    meta: dict


class Host:
    """Registries of tasks, teachers, reviewers (parsers, policies), students and commands."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("fair")
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.problems: list[str] = []
        self.registry: dict[str, dict[str, Entry]] = {
            "tasks": {}, "teachers": {}, "parsers": {}, "policies": {}, "students": {}, "commands": {}}

    # loading -------------------------------------------------------------------------------
    def load_entry_points(self, only: list[str] | None = None) -> "Host":
        for ep in metadata.entry_points(group="fair"):
            if only is not None and ep.name not in only or ep.name in self.plugins:
                continue
            version = ep.dist.version if ep.dist else None
            try:
                module = ep.load()
            except Exception as e:  # a broken plugin must not take the host down
                self.problems.append(f"plugin {ep.name!r} failed to import: {type(e).__name__}: {e}")
                continue
            self.add(module, ep.name, version)
        return self

    def add(self, module: ModuleType | object, name: str, version: str | None = None) -> None:
        """Register one plugin object and run its hooks, isolating its failures."""
        try:
            self.pm.register(module, name=name)
        except Exception as e:
            self.problems.append(f"plugin {name!r} is not a valid plugin: {type(e).__name__}: {e}")
            return
        info = self.plugins[name] = PluginInfo(name, version)
        impls = [impl for caller in self.pm.get_hookcallers(module) or []
                 for impl in caller.get_hookimpls() if impl.plugin is module]
        info.hooks = sorted(impl.function.__name__ for impl in impls)
        for impl in impls:
            hook = impl.function.__name__
            try:
                impl.function(register=self._registrar(hook, info))
            except PluginError:
                raise
            except Exception as e:
                self.problems.append(f"plugin {name!r} failed in {hook}: {type(e).__name__}: {e}")

    def _registrar(self, hook: str, info: PluginInfo) -> Callable:
        def add(kind: str, name: str, obj: Any, meta: dict) -> None:
            table = self.registry[kind]
            if name in table:
                raise PluginError(f"{kind[:-1]} {name!r} is registered by both plugin "
                                  f"{table[name].plugin!r} and plugin {info.name!r}: "
                                  f"disable one with FAIR_PLUGINS")
            table[name] = Entry(name, obj, info.name, meta)
            info.registered.setdefault(kind, []).append(name)

        if hook == "register_reviewers":
            def register(name: str, obj: Any, kind: str = "policy", **meta: Any) -> None:
                tables = {"parser": "parsers", "policy": "policies"}
                if kind not in tables:
                    raise ValueError(f"register_reviewers: kind must be 'parser' or 'policy', not {kind!r}")
                add(tables[kind], name, obj, meta)
        elif hook == "register_commands":
            def register(name: str, help: str, configure: Callable, handler: Callable) -> None:
                add("commands", name, Command(help, configure, handler), {})
        else:
            kind = hook.removeprefix("register_")

            def register(name: str, obj: Any, **meta: Any) -> None:
                add(kind, name, obj, meta)
        return register

    # lookup --------------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> Any:
        table = self.registry[kind]
        if name not in table:
            known = ", ".join(sorted(table)) or "none loaded"
            singular = kind.removesuffix("ies") + "y" if kind.endswith("ies") else kind.removesuffix("s")
            raise PluginError(f"unknown {singular} {name!r}: known {kind} are {known}")
        return table[name].obj

    def names(self, kind: str) -> list[str]:
        return sorted(self.registry[kind])


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
