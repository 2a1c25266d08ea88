"""Diagnostics: every module logs to ``logging.getLogger(__name__)``; the ``fair`` command and the
training process show fair's records on stderr as ``fair: warning: ...`` (the CLI's own style),
from the level ``FAIR_LOG_LEVEL`` names up. The default, INFO, also says what a slow first use
is doing (downloading SmolLM2, converting a GGUF), so a silent minute never looks like a hang.

What a user asked for (tables, reports, progress bars) is output, not logging, and stays as it is.
"""

from __future__ import annotations

import logging
import os
import sys

from .errors import FairError
from .redact import shown

# fair's own packages; a third-party plugin's records go wherever its own logging sends them
PACKAGES = ("fair_core", "fair_tui", "fair_tasks", "fair_teachers", "fair_reviewers", "fair_students")


class StderrHandler(logging.Handler):
    """Writes to ``sys.stderr`` as it is at each record, not as it was when configured: rich's live
    progress display swaps it so that a line lands above its bars instead of through them. A record
    may quote a provider or a plugin: its text is made inert and any known key redacted."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"fair: {record.levelname.lower()}: {record.getMessage()}"
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            print(shown(text), file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 - logging's own contract: a failed record is reported by handleError, never raised
            self.handleError(record)


def configure() -> None:
    """Send fair's records to stderr from ``$FAIR_LOG_LEVEL`` up; calling it again changes only the level."""
    raw = os.environ.get("FAIR_LOG_LEVEL", "INFO")
    level = logging.getLevelName(raw.strip().upper())
    if not isinstance(level, int):
        raise FairError(f"FAIR_LOG_LEVEL={raw!r} is no log level: use DEBUG, INFO, WARNING or ERROR")
    for package in PACKAGES:
        logger = logging.getLogger(package)
        logger.setLevel(level)
        if not any(isinstance(h, StderrHandler) for h in logger.handlers):
            logger.addHandler(StderrHandler())
