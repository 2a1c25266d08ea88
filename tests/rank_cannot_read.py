"""``python tests/rank_cannot_read.py STEP ARGS``: ``python -m fair_core.training ARGS`` in which
the process of rank 1 cannot read checkpoint ``step-STEP`` (a read error of that process alone,
as a disk or memory error on one machine would be), while the others can. Start it under torchrun.
"""

import os
import sys

from accelerate import Accelerator

if __name__ == "__main__":
    step = sys.argv.pop(1)
    if os.environ.get("RANK") == "1":
        load_state = Accelerator.load_state

        def _load_state(self, input_dir=None, **kwargs):
            if os.path.basename(str(input_dir)) == f"step-{step}":
                raise OSError(f"rank 1 cannot read {input_dir}")
            return load_state(self, input_dir, **kwargs)

        Accelerator.load_state = _load_state
    from fair_core.training.__main__ import main

    sys.exit(main())
