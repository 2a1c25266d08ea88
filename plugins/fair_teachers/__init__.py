"""Built-in teacher backends: litellm (any provider), replay (recorded committees), hf (local)."""

from fair_core.hookspecs import hookimpl


def _litellm(config):
    from .litellm_backend import LiteLLMTeacher

    return LiteLLMTeacher(config)


def _replay(config):
    from .replay import ReplayTeacher

    return ReplayTeacher(config)


def _hf(config):
    from .hf import HFTeacher

    return HFTeacher(config)


@hookimpl
def register_teachers(register):
    register("litellm", _litellm)
    register("replay", _replay)
    register("hf", _hf)
