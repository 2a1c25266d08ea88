"""Diagnostics: fair's module loggers reach stderr in the CLI's style from FAIR_LOG_LEVEL up, and
an error caught to keep a run going is logged, not swallowed."""

import logging
import textwrap

import pytest
from helpers import fair
from test_host import BAD, make_dist

from fair_core import logs
from fair_core.errors import FairError
from fair_core.runs.events import Bus, Message


@pytest.fixture
def level(monkeypatch):
    """Configure fair's logging at a level, and leave it at the default afterwards."""

    def configure(name: str) -> None:
        monkeypatch.setenv("FAIR_LOG_LEVEL", name)
        logs.configure()

    yield configure
    monkeypatch.delenv("FAIR_LOG_LEVEL", raising=False)
    logs.configure()


def test_records_reach_stderr_from_the_level_asked(level, capsys):
    level("info")
    level("INFO")  # configured again: still one line per record
    logging.getLogger("fair_students.gguf").info("converting %s into a transformers folder, once", "x.gguf")
    logging.getLogger("fair_core.host").debug("not shown at INFO")
    assert capsys.readouterr().err == "fair: info: converting x.gguf into a transformers folder, once\n"
    with pytest.raises(FairError, match="FAIR_LOG_LEVEL='loud' is no log level"):
        level("loud")


def test_the_cli_takes_its_level_from_the_environment(tmp_path):
    bad = fair("plugins", env={"FAIR_LOG_LEVEL": "loud"})
    assert bad.returncode == 2 and bad.stderr.startswith("fair: error: FAIR_LOG_LEVEL='loud' is no log level")
    make_dist(
        tmp_path, "fair_raises", "from fair_core.hookspecs import hookimpl\n" + textwrap.dedent(BAD["fair_raises"][0])
    )
    warned = fair("--help", env={"PYTHONPATH": str(tmp_path)})
    assert warned.returncode == 0 and warned.stderr.startswith("fair: warning: plugin 'fair_raises' not loaded")
    quiet = fair("--help", env={"PYTHONPATH": str(tmp_path), "FAIR_LOG_LEVEL": "ERROR"})
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_a_failing_subscriber_is_logged_and_the_others_still_hear(caplog):
    bus, heard = Bus(), []

    def broken(event):
        raise RuntimeError("glitch")

    bus.subscribe(broken)
    bus.subscribe(heard.append)
    with caplog.at_level(logging.DEBUG, logger="fair_core.runs.events"):
        for text in ("a", "b"):
            bus.publish(Message("info", text))
    assert [e.text for e in heard] == ["a", "b"]
    # in full once (a broken subscriber fails on every event), then for debugging only
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.DEBUG]
    assert "RuntimeError: glitch" in caplog.text
