"""``python -m fair_core.training.launch ARGS``: ``accelerate launch ARGS`` that stops with fair.

The launcher is the training processes' parent, and they stop with it; asking for SIGTERM when
the launcher's own parent dies makes a killed ``fair`` take the whole launch down.
"""

import runpy
import sys

from . import stop_with_parent

if __name__ == "__main__":
    stop_with_parent()
    sys.argv[0] = "accelerate launch"
    runpy.run_module("accelerate.commands.launch", run_name="__main__", alter_sys=True)
