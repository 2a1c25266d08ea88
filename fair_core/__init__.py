"""fair: Fault-Aware dIstillation via peer-Review (the engine).

The Python API (``load_config``, ``run``, ``open_run``; see :mod:`fair_core.api`) is importable
from here, and loaded on first use: ``import fair_core`` stays as light as ``fair --help``.
"""

from .version import __version__

_API = ("load_config", "run", "open_run", "Outcome", "Results")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
