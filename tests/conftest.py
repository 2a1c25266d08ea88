"""Shared fixtures: real data from ../shared/data, and offline settings for every test."""

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
    deadline = time.time() + 5
    while running.in_flight and time.time() < deadline:  # an earlier test's abandoned request
        time.sleep(0.01)
    running.reset_counts()
    running.faults, running.latency, running.capacity = {}, 0.0, None
    yield running
    running.faults, running.latency, running.capacity = {}, 0.0, None
