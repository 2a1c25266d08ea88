"""User-facing errors: the CLI prints their message as one line and exits 2."""


class FairError(Exception):
    """A mistake the user can fix (bad input, missing file, bad config); never a bug."""


class ConfigError(FairError):
    pass


class DataError(FairError):
    pass


class PluginError(FairError):
    pass
