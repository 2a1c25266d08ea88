"""``python tests/gloo_as_gpu.py ARGS``: ``python -m fair_core.training ARGS`` in a process that
accelerate takes for one GPU of several (MULTI_GPU) while it runs on the CPU over gloo.

accelerate turns FSDP on only for GPU-like device types; this lets FSDP's code paths, and fair's
code on them unchanged, run on a machine with no GPU. Start it under torchrun, one per rank.
"""

import sys

import torch
from accelerate.state import PartialState
from accelerate.utils import DistributedType


def _backend(self, cpu=False, sagemaker_dp=False, backend=None):
    return "gloo", DistributedType.MULTI_GPU


def _device(self):
    self.device = torch.device("cpu")


if __name__ == "__main__":
    PartialState._prepare_backend = _backend
    PartialState.set_device = _device
    from fair_core.training.__main__ import main

    sys.exit(main())
