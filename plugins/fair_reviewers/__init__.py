"""Built-in score parsers ("paper", "strict") and review policies ("mean", "median", "min",
"majority", "trimmed-mean", "accept-all"), registered exactly as a third-party plugin would register its own."""

from fair_core.hookspecs import hookimpl

from . import parsers
from .policies import POLICIES


@hookimpl
def register_reviewers(register):
    register("paper", parsers.paper, kind="parser")
    register("strict", parsers.strict, kind="parser")
    for name, policy in POLICIES.items():
        register(name, policy, kind="policy")
