"""``python -m fair_core.training.launch ARGS``: ``accelerate launch ARGS`` that stops with fair.

The launcher is the training processes' parent, and they stop with it; asking for SIGTERM when
the launcher's own parent dies makes a killed ``fair`` take the whole launch down.

When a process of several fails, torchrun ends with a summary block of ``=`` lines; the launch
ends instead with the cause that process reported (see :func:`fair_core.training.tell_launcher`)
and its exit status, so a user mistake on any rank is still one last line and exit 2.
"""

import runpy
import sys

from . import stop_with_parent


def cause(error) -> tuple[str, int]:
    """The message and exit status of the process that failed first by exiting (the others are
    usually stopped by a signal because of it), from torchrun's ``ChildFailedError``."""
    first = min(error.failures.values(), key=lambda f: (f.exitcode <= 0, f.timestamp))
    message = first.message
    if isinstance(message, dict):  # written by torch's @record: {"message": ..., "extraInfo": ...}
        message = message.get("message", "")
    return str(message).strip().splitlines()[-1] if message else str(error), first.exitcode if first.exitcode > 0 else 1


if __name__ == "__main__":
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    stop_with_parent()
    sys.argv[0] = "accelerate launch"
    try:
        runpy.run_module("accelerate.commands.launch", run_name="__main__", alter_sys=True)
    except ChildFailedError as e:
        message, status = cause(e)
        print(message, file=sys.stderr)
        sys.exit(status)
