"""``python -m fair_core.training.launch ARGS``: ``accelerate launch ARGS`` that stops with fair.

The launcher is the training processes' parent, and they stop with it; asking for SIGTERM when
the launcher's own parent dies makes a killed ``fair`` take the whole launch down.

When a process of several fails, torchrun ends with a summary block of ``=`` lines; the launch
ends instead with the cause that process reported (see :func:`fair_core.training.tell_launcher`)
and its exit status, so a user mistake on any rank is still one last line and exit 2; a process
that could say nothing (killed by the system out of memory, say) is named with how it ended.
"""

import runpy
import signal
import sys

from . import stop_with_parent


def _order(failure) -> tuple[int, int]:
    """Causes first: a process killed from outside (out of memory, a segfault), which the others
    then lose (their errors say that a peer closed the connection); then one that exited with an
    error; last the ones torchrun stopped (SIGTERM) because of it. Earlier ones first."""
    killed = failure.exitcode < 0 and -failure.exitcode != signal.SIGTERM
    return (0 if killed else 1 if failure.exitcode > 0 else 2), failure.timestamp


def cause(error) -> tuple[str, int]:
    """The message and exit status of the process that failed first (see :func:`_order`), from
    torchrun's ``ChildFailedError``. A process that left no message (killed, or gone by
    ``os._exit``) is named with how it ended: torch's own line for it is advice to enable tracebacks."""
    rank, first = min(error.failures.items(), key=lambda kv: _order(kv[1]))
    status = first.exitcode if first.exitcode > 0 else 1
    if first.error_file_data.get("message") == "<NONE>":  # torch's mark for "no error file"
        if first.exitcode < 0:
            name = first.signal_name()
            hint = " (often the system out of memory)" if name == "SIGKILL" else ""
            return f"training process {rank} was killed by {name}{hint}; a rerun resumes from the last checkpoint", 1
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
