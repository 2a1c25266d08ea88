"""Shared fixtures: real data from ../shared/data, and offline settings for every test."""

import os
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
