"""User-facing errors: the CLI prints their message as one line and exits 2."""


class FairError(Exception):
    """A mistake the user can fix (bad input, missing file, bad config); never a bug."""


class ConfigError(FairError):
    pass


class DataError(FairError):
    pass


class PluginError(FairError):
    pass


class PluginResultError(PluginError):
    """A plugin returned what its contract does not allow; the message names the plugin and what
    it should have returned. It fails the call or item it came from, never the run."""


def expect(ok: bool, plugin: str, got: object, expected: str) -> None:
    """Raise PluginResultError unless ``ok``: "<plugin> returned 'x' (str); expected <expected>"."""
    if not ok:
        raise PluginResultError(f"{plugin} returned {got!r:.60} ({type(got).__name__}); expected {expected}")
