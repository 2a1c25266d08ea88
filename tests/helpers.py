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


def pipeline_screen(run_dir, stage: str) -> tuple[list[str], str]:
    """The TUI's pipeline screen on ``run_dir`` (a Textual pilot): its stage names in order, and
    ``stage``'s state once it reads done (or what it reads when the wait gives up)."""
    import asyncio
    import time

    from fair_tui.app import FairApp

    async def look() -> tuple[list[str], str]:
        app = FairApp(str(run_dir))  # a run directory opens on the pipeline screen
        async with app.run_test(size=(100, 30)) as pilot:
            deadline = time.monotonic() + 600  # only a hung screen waits this long
            while time.monotonic() < deadline:  # the screen draws the run's state on its next refresh
                await pilot.pause(0.05)
                if (
                    app.screen.NAME == "pipeline"
                    and app.screen.query(f"#state-{stage}")
                    and "done" in str(app.screen.query_one(f"#state-{stage}").content)
                ):
                    break
            names = [str(label.content) for label in app.screen.query(".stage-name")]
            return names, str(app.screen.query_one(f"#state-{stage}").content)

    return asyncio.run(look())
