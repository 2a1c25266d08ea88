"""fair's version, in a module of its own: the package's facade loads the API on first use, so
the modules below the API read the version here rather than from ``fair_core``."""

from importlib.metadata import PackageNotFoundError, version

try:  # pyproject.toml's version is the one source; the installed metadata carries it
    __version__ = version("fair-distill")
except PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"
