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
    usually stopped by a signal because of it), from torchrun's ``ChildFailedError``. A process
    that left no message (killed, or gone by ``os._exit``) is named with how it ended: torch's
    own line for it is advice to enable tracebacks."""
    rank, first = min(error.failures.items(), key=lambda kv: (kv[1].exitcode <= 0, kv[1].timestamp))
    status = first.exitcode if first.exitcode > 0 else 1
    if first.error_file_data.get("message") == "<NONE>":  # torch's mark for "no error file"
        if first.exitcode < 0:
            signal = first.signal_name()
            hint = " (often the system out of memory)" if signal == "SIGKILL" else ""
            return f"training process {rank} was killed by {signal}{hint}; a rerun resumes from the last checkpoint", 1
        return f"training process {rank} stopped with exit status {status} without a message: see its output", status
    message = first.message
    if isinstance(message, dict):  # written by torch's @record: {"message": ..., "extraInfo": ...}
        message = message.get("message", "")
    return str(message).strip().splitlines()[-1] if message else str(error), status


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
