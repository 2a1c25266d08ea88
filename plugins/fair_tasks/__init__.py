"""Built-in tasks: GSM8K, SVAMP, StrategyQA and LogiQA, registered like any third-party task."""

from fair_core.hookspecs import hookimpl

from .gsm8k import Gsm8k
from .logiqa import LogiQA
from .strategyqa import StrategyQA
from .svamp import Svamp


@hookimpl
def register_tasks(register):
    register("gsm8k", Gsm8k)
    register("svamp", Svamp)
    register("strategyqa", StrategyQA)
    register("logiqa", LogiQA)
