"""`fair estimate` and `fair run --dry-run`: the calls, tokens and cost of a committee before it is
paid for, checked against what a run against the local server (which reports usage) then spends."""

import json
from pathlib import Path

import pytest
from committee_setup import committee_config, paper_mistakes
from helpers import REPO, fair

from fair_core.testing.server import BEHAVIOURS, serve_in_thread

PRICED = ("gpt-4o-mini", "gpt-4o")  # names litellm's bundled price map lists: the server answers as "solver"


def estimate(*args) -> dict:
    out = fair("estimate", *args, "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.slow
@pytest.mark.needs_data
def test_the_estimate_is_within_30_percent_of_what_the_run_spends(tmp_path, paper_dir):
    """A pilot on 5 mistakes measures how long the answers are; the estimate for 40 mistakes then
    lands within 30% of what the run of those 40 costs, call counts exact."""
    mistakes = paper_mistakes(paper_dir, tmp_path, 40)
    with serve_in_thread(behaviours={m: BEHAVIOURS["solver"] for m in PRICED}) as server:
        config = committee_config(tmp_path, server.url, mistakes, models=PRICED)
        pilot = tmp_path / "pilot"
        out = fair("run", config, "--run-dir", pilot, "--quiet", "--set", "task.train_limit=5")
        assert out.returncode == 0, out.stderr[-2000:]
        server.reset_counts()
        est = estimate(config, "--run-dir", pilot)
        assert server.requests == 0  # estimating asks no teacher anything
        run = tmp_path / "run"
        out = fair("run", config, "--run-dir", run, "--quiet")
        assert out.returncode == 0, out.stderr[-2000:]
        report = json.loads(fair("report", run, "--json").stdout)
        left = estimate(config, "--run-dir", run)  # a finished run has nothing left to pay
    actual = report["cost_usd"]
    print(f"estimate ${est['total_usd']:.6f} (high ${est['total_usd_high']:.6f}) vs actual ${actual:.6f}")
    assert est["calls"] == server.requests == 40 * (2 + 2 + 2)  # explain, solve, review by the other one
    assert {t: x["calls"] for t, x in est["per_teacher"].items()} == {
        t: {"explain": 40, "solve": 40, "review": 40} for t in ("t0", "t1")
    }
    assert actual > 0 and abs(est["total_usd"] - actual) <= 0.3 * actual
    assert est["total_usd_low"] <= actual * 1.3 and est["total_usd_high"] >= actual
    assert any("measure" in line for line in est["assumptions"])
    assert left["calls"] == 0 and left["total_usd"] == 0


@pytest.mark.needs_data
@pytest.mark.slow
def test_json_keys_and_a_dry_run_makes_no_call(tmp_path, paper_dir):
    mistakes = paper_mistakes(paper_dir, tmp_path, 6)
    with serve_in_thread(behaviours={m: BEHAVIOURS["solver"] for m in PRICED}) as server:
        config = committee_config(
            tmp_path,
            server.url,
            mistakes,
            models=PRICED,
            teacher={"params": {"max_tokens": 100}},
            committee={"budget_usd": 0.5},
        )
        est = estimate(config, "--run-dir", tmp_path / "none")
        dry = fair("run", config, "--run-dir", tmp_path / "dry", "--dry-run")
        assert server.requests == 0
        half = tmp_path / "half"  # explain done: the estimate counts what the run has left
        assert fair("run", config, "--run-dir", half, "--stages", "explain", "--quiet").returncode == 0
        rest = estimate(config, "--run-dir", half)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "total:" in dry.stdout and "fits" in dry.stdout
    assert not (tmp_path / "dry").exists() and not (tmp_path / "none").exists()  # nothing written
    assert {
        "total_usd",
        "total_usd_low",
        "total_usd_high",
        "per_teacher",
        "assumptions",
        "calls",
        "mistakes",
        "fits_budget",
        "fits_budget_high",
    } <= est.keys()
    t0 = est["per_teacher"]["t0"]
    assert {"calls", "prompt_tokens", "completion_tokens", "usd", "usd_low", "usd_high"} <= t0.keys()
    assert t0["calls"] == {"explain": 6, "solve": 6, "review": 6} and t0["tokens_counted_by"] == "tokenizer"
    assert 0 < t0["usd_low"] == t0["usd"] <= t0["usd_high"]
    assert t0["completion_tokens"] == 6 * (100 + 100 + 100)  # typical lengths, capped at max_tokens
    assert est["fits_budget"] is True
    assert rest["per_teacher"]["t0"]["calls"] == {"solve": 6, "review": 6}
    assert any("resumes" in a for a in rest["assumptions"])


@pytest.mark.needs_data
@pytest.mark.slow
def test_assumed_mistakes_and_overrides(tmp_path):
    """No mistakes file and no examined run: the count is assumed from the train split and an
    assumed accuracy, both overridable, and said so."""
    config = REPO / "configs" / "teachers-gemini.toml"
    base = estimate(config, "--run-dir", tmp_path / "none", "--set", "task.train_limit=40")
    assert base["mistakes"] == 20 and any("ASSUMED mistakes" in a for a in base["assumptions"])
    assert (
        estimate(config, "--run-dir", tmp_path / "none", "--set", "task.train_limit=40", "--accuracy", "0.75")[
            "mistakes"
        ]
        == 10
    )
    fixed = estimate(config, "--run-dir", tmp_path / "none", "--set", "task.train_limit=40", "--mistakes", "5")
    assert fixed["mistakes"] == 5 and fixed["total_usd"] < base["total_usd"]


CONFIGS = {
    "teachers-ollama.toml": "free",
    "teachers-vllm.toml": "free",
    "teachers-openrouter.toml": "priced",
    "teachers-anthropic.toml": "priced",
    "teachers-gemini.toml": "priced",
}


@pytest.mark.needs_data
@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.slow
def test_example_teacher_configs_estimate_offline(tmp_path, name):
    """Each example config estimates with no key and no network: $0 for a local server, more than
    $0 for a hosted model litellm's bundled price map lists."""
    est = estimate(REPO / "configs" / name, "--run-dir", tmp_path / "none", "--set", "task.train_limit=20")
    assert est["calls"] > 0 and est["mistakes"] == 10
    if CONFIGS[name] == "free":
        assert est["total_usd"] == est["total_usd_high"] == 0
        assert all(t["note"] for t in est["per_teacher"].values())  # says why it costs nothing
    else:
        assert all(t["priced"] and t["usd"] > 0 for t in est["per_teacher"].values())
        assert 0 < est["total_usd"] < est["total_usd_high"]
    text = Path(REPO / "configs" / name).read_text()
    assert "api_key =" not in text  # keys come from the environment only
