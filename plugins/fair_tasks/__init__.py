"""Built-in tasks: your own data by config (``dataset``), and GSM8K, SVAMP, StrategyQA and LogiQA,
registered like any third-party task."""

from fair_core.hookspecs import hookimpl

from .dataset import Dataset
from .gsm8k import Gsm8k
from .logiqa import LogiQA
from .strategyqa import StrategyQA
from .svamp import Svamp


@hookimpl
def register_tasks(register):
    register("dataset", Dataset)
    register("gsm8k", Gsm8k)
    register("svamp", Svamp)
    register("strategyqa", StrategyQA)
    register("logiqa", LogiQA)
