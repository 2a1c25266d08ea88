"""``python -m fair_core.training``: train one round's student; a user mistake is one line, exit 2."""

from __future__ import annotations

import argparse
import sys
import warnings

from ..errors import FairError
from ..logs import configure
from ..runs.disk import DiskFull
from . import DISK_FULL, stop_with_parent, tell_launcher


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fair_core.training", description=__doc__)
    parser.add_argument("--run-dir", required=True, help="the run folder (config.toml, rounds/)")
    parser.add_argument("--round", type=int, required=True, help="the round whose train.jsonl to learn")
    parser.add_argument("--base", required=True, help="local Hugging Face model folder to fine-tune")
    parser.add_argument("--adapter", help="a LoRA adapter to continue training (e.g. the previous round's)")
    parser.add_argument("--merge", action="store_true", help="also write merged/: base + adapter as one model")
    args = parser.parse_args(argv)
    stop_with_parent()
    # peft still reads a property that transformers 5 deprecated; nothing for a user to act on
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
    try:
        configure()
        from .trainer import train

        train(args.run_dir, args.round, args.base, args.adapter, args.merge)
    except (FairError, DiskFull) as e:  # the parent reads the line and exits as fair does: 2, or 3 on a full disk
        print(e, file=sys.stderr)
        tell_launcher(str(e))
        return DISK_FULL if isinstance(e, DiskFull) else 2
    except Exception as e:
        tell_launcher(f"{type(e).__name__}: {e}".splitlines()[0])
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
