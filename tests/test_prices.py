"""Prices for any teacher: ``teachers.NAME.price`` is what the gateway charges, what the budget
counts and what ``fair estimate`` predicts, for a model litellm's price map does not list; a paid
teacher without a price is named before a run with a budget starts."""

import asyncio
import io
import json
import sqlite3
import tomllib
from contextlib import closing

import pytest
import tomli_w
from committee_setup import committee_config, paper_mistakes
from helpers import fair
from rich.console import Console

from fair_core import config as cfg
from fair_core.errors import ConfigError
from fair_core.gateway.gateway import Gateway
from fair_core.host import get_host
from fair_core.results.report import build, usd
from fair_core.runs.events import Message
from fair_core.runs.store import Store
from fair_core.testing.server import serve_in_thread
from fair_tui.screens import results

PER_MILLION = {"input": 3.0, "output": 15.0}  # t0's price, USD per million tokens
PER_TOKEN = {"input_cost_per_token": 2e-6, "output_cost_per_token": 1e-5}  # t1's, as litellm writes it


def priced_config(tmp_path, url, mistakes, committee: dict | None = None):
    """Two teachers on models litellm has no price for: t0 over the lean HTTP
    transport priced per million tokens, t1 over litellm priced per token."""
    path = committee_config(tmp_path, url, mistakes, models=("solver", "noisy-0.3"), committee=committee)
    data = tomllib.loads(path.read_text())
    t0, t1 = data["teachers"]
    t0["price"] = PER_MILLION
    t1.update(price=PER_TOKEN, options={"transport": "litellm"})
    path.write_text(tomli_w.dumps(data))
    return path


def charged(db) -> tuple[float, float]:
    """(the spend stored, tokens x the configured prices) over a run's answered calls."""
    prices = {"t0": (3e-6, 15e-6), "t1": (2e-6, 1e-5)}
    with closing(sqlite3.connect(db)) as con:
        rows = con.execute(
            "SELECT teacher, prompt_tokens, completion_tokens, cost_usd FROM calls WHERE error IS NULL"
        ).fetchall()
    spent = priced = 0.0
    for teacher, prompt, completion, cost in rows:
        assert prompt > 0 and completion > 0  # the server reports usage on both transports
        spent += cost
        priced += prompt * prices[teacher][0] + completion * prices[teacher][1]
    return spent, priced


@pytest.mark.slow
def test_a_self_priced_teachers_spend_budget_and_estimate_agree(tmp_path, paper_dir):
    """The run stores tokens x price; a budget stops it in time; the estimate made with the
    finished run as its pilot comes within 30% of what the run spent."""
    mistakes = paper_mistakes(paper_dir, tmp_path, 8)
    with serve_in_thread() as server:
        config = priced_config(tmp_path, server.url, mistakes)
        run = tmp_path / "run"
        out = fair("run", config, "--run-dir", run, "--quiet")
        assert out.returncode == 0, out.stderr[-2000:]
        assert "no price" not in out.stderr
        report = json.loads(fair("report", run, "--json").stdout)
        printed = fair("report", run).stdout
        server.reset_counts()
        est = json.loads(fair("estimate", config, "--pilot", run, "--run-dir", tmp_path / "new", "--json").stdout)
        left = json.loads(fair("estimate", config, "--run-dir", run, "--json").stdout)
        assert server.requests == 0  # estimating asks no teacher anything
        budget = report["cost_usd"] * 0.75
        capped = tmp_path / "capped"
        stopped = fair("run", config, "--run-dir", capped, "--quiet", "--set", f"committee.budget_usd={budget}")
    spent, priced = charged(run / "run.sqlite")
    assert spent == pytest.approx(priced, rel=1e-9) and spent == pytest.approx(report["cost_usd"], rel=1e-6)
    assert {t: s["cost_usd"] > 0 for t, s in report["per_teacher"].items()} == {"t0": True, "t1": True}
    # `fair report` and the TUI's results show each teacher's cost alike, to a hundredth of a cent
    tui = io.StringIO()
    Console(file=tui, width=200).print(results.render(build(run), None))
    for s in report["per_teacher"].values():
        assert usd(s["cost_usd"]) in printed and usd(s["cost_usd"]) in tui.getvalue()
    print(f"estimate ${est['total_usd']:.6f} (high ${est['total_usd_high']:.6f}) vs spent ${spent:.6f}")
    assert est["calls"] == 8 * 6 and all(t["priced"] for t in est["per_teacher"].values())
    assert abs(est["total_usd"] - spent) <= 0.3 * spent and est["total_usd_high"] >= spent
    assert any(line.startswith(f"pilot {run}") for line in est["assumptions"])
    assert any(line.startswith("prompt tokens scaled") for line in est["assumptions"])
    # a finished run has nothing left to pay, and its teachers are still priced, not "$0"
    assert left["calls"] == 0 and {t["note"] for t in left["per_teacher"].values()} == {""}
    # the budget: stopped before it (each call's worst case is held back while in flight), and no
    # sooner than one call's worst case before it, though each teacher has 16 calls at a time
    assert stopped.returncode == 4, stopped.stderr[-2000:]
    capped_spent, capped_priced = charged(capped / "run.sqlite")
    assert capped_spent == pytest.approx(capped_priced, rel=1e-9)
    with closing(sqlite3.connect(run / "run.sqlite")) as con:
        longest = con.execute("SELECT MAX(LENGTH(request)) FROM calls").fetchone()[0]
    worst = (longest / 3 + 16) * 3e-6 + 512 * 15e-6  # the gateway's reserve for t0's longest prompt
    print(f"budget ${budget:.6f}, spent ${capped_spent:.6f}, a call's worst case ${worst:.6f}")
    assert budget - worst <= capped_spent <= budget


def test_price_keys_are_checked():
    ok = cfg.validate({"teachers": [{"name": "a", "model": "m", "price": PER_MILLION}]})
    assert ok.teachers[0].price.per_token() == (3e-6, 15e-6)
    litellm_keys = cfg.validate({"teachers": [{"name": "a", "model": "m", "price": PER_TOKEN}]})
    assert litellm_keys.teachers[0].price.per_token() == (2e-6, 1e-5)
    bad = {
        "inputs": 1,  # not a key
        "input": -1,  # negative
        "output": "cheap",  # not a number
    }
    for key, value in bad.items():
        price = {**PER_MILLION, key: value}
        with pytest.raises(ConfigError) as e:
            cfg.validate({"teachers": [{"name": "a", "model": "m", "price": price}]})
        assert "teachers.0.price" in str(e.value) and "\n" not in str(e.value)
    for price in ({"input": 1}, {**PER_MILLION, "input_cost_per_token": 1e-6}, 2.5):
        with pytest.raises(ConfigError, match="input.*output"):
            cfg.validate({"teachers": [{"name": "a", "model": "m", "price": price}]})


def test_a_priced_config_validates_again_from_its_own_dump():
    """`fair run --stages` and `--rounds` validate the loaded config's model_dump() again, whose price
    holds all four keys (two of them None): a priced teacher made either a config error."""
    for price in (PER_MILLION, PER_TOKEN):
        config = cfg.validate({"teachers": [{"name": "a", "model": "m", "price": price}]})
        again = cfg.validate({**config.model_dump(), "stages": ["explain"]})
        assert again.teachers[0].price == config.teachers[0].price


def test_a_price_set_later_resumes_the_run(tmp_path):
    """Nothing stored depends on a price: setting one does not ask for a new run dir."""
    from fair_core.runs.rundir import changed_keys

    base = {"teachers": [{"name": "a", "model": "m"}]}
    priced = {"teachers": [{"name": "a", "model": "m", "price": PER_MILLION}]}
    assert changed_keys(cfg.validate(base), cfg.validate(priced)) == []


PAID = {  # a hosted model litellm has no price for: never called here, the check comes first
    "name": "acme",
    "model": "openai/acme-large",
    "api_base": "https://llm.example.com/v1",
    "api_key_env": "ACME_KEY",
}


@pytest.mark.slow
def test_an_unpriced_paid_teacher_with_a_budget_is_refused_before_the_run(tmp_path, paper_dir):
    mistakes = paper_mistakes(paper_dir, tmp_path, 2)
    data = {
        "stages": ["explain", "solve", "review"],
        "task": {"name": "svamp", "mistakes_file": str(mistakes)},
        "teachers": [PAID],
        "committee": {"budget_usd": 1},
    }
    config = tmp_path / "paid.toml"
    config.write_text(tomli_w.dumps(data))
    env = {"ACME_KEY": "k"}
    out = fair("run", config, "--run-dir", tmp_path / "run", env=env)
    assert out.returncode == 2 and not (tmp_path / "run").exists()
    line = out.stderr.strip()
    assert "\n" not in line and "teacher 'acme' has no price" in line and "teachers.acme.price" in line
    assert "committee.budget_usd" in line
    est = json.loads(fair("estimate", config, "--run-dir", tmp_path / "none", "--json", env=env).stdout)
    assert est["per_teacher"]["acme"]["priced"] is False
    assert "teachers.acme.price" in est["per_teacher"]["acme"]["note"]
    assert "refuse to start" in est["per_teacher"]["acme"]["note"]
    assert est["unpriced"] == ["acme"]
    verdict = fair("estimate", config, "--run-dir", tmp_path / "none", env=env).stdout
    assert "committee.budget_usd $1: the run would refuse to start: acme without a price" in verdict
    priced = fair(
        "estimate", config, "--run-dir", tmp_path / "none", "--json", "--set", "teachers.acme.price={input=1, output=2}"
    )
    acme = json.loads(priced.stdout)["per_teacher"]["acme"]
    assert acme["priced"] and acme["usd"] > 0 and acme["note"] == ""
    assert json.loads(priced.stdout)["unpriced"] == []


def test_without_a_budget_an_unpriced_paid_teacher_is_a_warning(tmp_path):
    """The run goes on (its spend is then a floor): the gateway says so once, with the fix; a
    local server, a recorded committee or a priced teacher is not named."""
    local = {"name": "vllm", "model": "openai/my-model", "api_base": "http://localhost:8000/v1"}
    ollama = {"name": "ollama", "model": "ollama/qwen2.5"}  # not in litellm's map; litellm's default base is local
    replay = {"name": "t0", "backend": "replay"}
    priced = {**PAID, "name": "priced", "price": PER_MILLION}
    config = cfg.validate({"teachers": [PAID, local, ollama, replay, priced]})
    host = get_host()
    backends = {t.name: host.get("teachers", t.backend)(t) for t in config.teachers}
    said: list = []

    async def build() -> None:
        gateway = Gateway(Store(tmp_path / "run.sqlite"), said.append, backends)
        await gateway.aclose()

    asyncio.run(build())
    warnings = [e.text for e in said if isinstance(e, Message) and e.level == "warning"]
    assert len(warnings) == 1 and "teacher 'acme' has no price" in warnings[0]
    assert "its calls count as $0" in warnings[0] and "teachers.acme.price" in warnings[0]


def test_a_configured_price_wins_over_litellms_map():
    from fair_core.gateway import prices
    from fair_core.gateway.backend import Completion

    host = get_host()
    listed = {"name": "gpt", "model": "openai/gpt-4o-mini", "api_key_env": "K"}
    mapped, own = (
        host.get("teachers", "litellm")(t)
        for t in cfg.validate({"teachers": [listed, {**listed, "name": "own", "price": PER_MILLION}]}).teachers
    )
    used = Completion("x", 1000, 100)
    assert prices.cost(mapped, used) == mapped.cost(used) > 0  # litellm's map
    assert prices.cost(own, used) == pytest.approx(1000 * 3e-6 + 100 * 15e-6) != mapped.cost(used)
