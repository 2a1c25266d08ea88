"""Small helpers the tests share: running the real `fair` CLI in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fair(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 600):
    """Run `fair ARGS` as a user would; returns the CompletedProcess. The timeout only stops a hung
    run: a busy machine may take many times a run's usual seconds."""
    return subprocess.run(
        [sys.executable, "-m", "fair_core.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd or REPO,
        timeout=timeout,
    )
