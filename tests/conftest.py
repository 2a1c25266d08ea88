"""Shared fixtures: real data from ../shared/data (tests that need it skip where it is absent), and
offline settings for every test."""

import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "FAIR_DATA_DIR" not in os.environ:
    candidate = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if candidate.is_dir():
        os.environ["FAIR_DATA_DIR"] = str(candidate)

DATA = Path(os.environ.get("FAIR_DATA_DIR", "."))
PAPER = DATA / "fair-reference"
HAVE_DATA = all((DATA / folder).is_dir() for folder in ("fair-reference", "gsm8k", "svamp", "strategyqa", "logiqa"))


@pytest.hookimpl(tryfirst=True)  # before `-m` selects by marker
def pytest_collection_modifyitems(items):
    """A test that takes the data fixtures needs the data, whether or not it says so."""
    for item in items:
        if {"data_dir", "paper_dir"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.needs_data)


def pytest_runtest_setup(item):
    """Every test that needs the data is skipped the same way where it is absent, never failed."""
    if item.get_closest_marker("needs_data") and not HAVE_DATA:
        pytest.skip("needs ../shared/data: set FAIR_DATA_DIR to the folder that holds it")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def paper_dir() -> Path:
    return PAPER


@pytest.fixture(scope="module")
def running():
    """The local OpenAI-compatible server, one per test module."""
    from fair_core.testing.server import serve_in_thread

    with serve_in_thread() as server:
        yield server


@pytest.fixture
def server(running):
    """The module's server with clean counters, no faults, no latency, no capacity limit."""
    deadline = time.time() + 600  # only a hung request waits this long; a busy machine takes seconds
    while running.in_flight and time.time() < deadline:  # an earlier test's abandoned request
        time.sleep(0.01)
    running.reset_counts()
    running.faults, running.latency, running.capacity = {}, 0.0, None
    yield running
    running.faults, running.latency, running.capacity = {}, 0.0, None
