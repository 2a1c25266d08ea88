"""``python tests/rank_faults.py FAULT ARGS``: ``python -m fair_core.training ARGS`` under torchrun
(DDP over gloo on the CPU) with one of the faults a machine of several meets, on one process:

- ``unreadable:STEP``: the process of rank 1 cannot read checkpoint ``step-STEP`` (a disk or
  memory error of that process alone), while the others can;
- ``late-merge``: the first process merges the outputs only once the process of rank 1 has
  exited: a process that waited for the merge would wait for ever here, as on GPUs it times
  out (NCCL's 10 minutes) while an 8B model is merged.
"""

import atexit
import os
import sys
import time
from pathlib import Path

from accelerate import Accelerator

if __name__ == "__main__":
    fault = sys.argv.pop(1)
    import fair_core.training.trainer as trainer

    if fault.startswith("unreadable:") and os.environ.get("RANK") == "1":
        load_state, step = Accelerator.load_state, fault.removeprefix("unreadable:")

        def _load_state(self, input_dir=None, **kwargs):
            if os.path.basename(str(input_dir)) == f"step-{step}":
                raise OSError(f"rank 1 cannot read {input_dir}")
            return load_state(self, input_dir, **kwargs)

        Accelerator.load_state = _load_state
    elif fault == "late-merge":
        gone = Path(sys.argv[sys.argv.index("--run-dir") + 1]) / "rank-1-exited"
        if os.environ.get("RANK") == "1":
            atexit.register(gone.touch)
        merge = trainer.merge_adapter

        def _merge_adapter(*args):
            while not gone.exists():
                time.sleep(0.05)
            return merge(*args)

        trainer.merge_adapter = _merge_adapter
    from fair_core.training.__main__ import main

    sys.exit(main())
