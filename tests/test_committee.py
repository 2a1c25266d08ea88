"""The committee against a real local HTTP server: faults, crashes, secrets, budget, bad input."""

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from committee_setup import committee_config, paper_mistakes
from helpers import fair

from fair_core import config as cfg
from fair_core.host import get_host
from fair_core.results.report import build
from fair_core.runner import Runner
from fair_core.runs.rundir import Run
from fair_core.testing.server import fingerprint, serve_in_thread


def run_in_process(config_path, run_dir):
    run = Run(run_dir, cfg.load(config_path))
    try:
        Runner(run, get_host()).run()
    finally:
        run.close()
    return build(run_dir)


@pytest.mark.slow
def test_faults_cost_no_data(tmp_path, paper_dir):
    """20% injected faults of every kind: every item complete or listed as failed with its reason."""
    mistakes = paper_mistakes(paper_dir, tmp_path, 100)
    faults = {"500": 0.04, "hang": 0.04, "malformed": 0.04, "empty": 0.04, "drop": 0.04}
    with serve_in_thread(faults=faults, seed=3, hang_seconds=30) as server:
        config = committee_config(
            tmp_path, server.url, mistakes, teacher={"options": {"transport": "litellm"}, "timeout_s": 1}
        )
        report = run_in_process(config, tmp_path / "run")
        received = Counter(server.received)
    assert sum(server.faulted.values()) > 150  # the faults really happened
    db = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    assert max(a for (a,) in db.execute("SELECT attempts FROM calls")) <= 4
    assert max(received.values()) <= 4  # no request sent past its retry limit
    failed = {
        (item, teacher, stage, about): reason
        for _, stage, item, teacher, reason, about in db.execute("SELECT * FROM failures")
    }
    assert all(reason for reason in failed.values())
    writings = Counter((i, k) for i, k in db.execute("SELECT item_id, kind FROM writings"))
    reviews = Counter(i for (i,) in db.execute("SELECT item_id FROM reviews"))
    failed_items = {item for item, _, _, _ in failed}
    for m in range(100):
        item = str(json.loads(mistakes.read_text())[m]["id"])
        complete = writings[(item, "feedback")] == 3 and writings[(item, "rationale")] == 3 and reviews[item] == 6
        assert complete or item in failed_items, item
    assert report["failures"] == len(failed)
    assert report["per_teacher"]["t0"]["retries"] > 0


def _results(run):
    db = sqlite3.connect(run / "run.sqlite")
    return (
        sorted(db.execute("SELECT round, item_id, kind, teacher, text FROM writings")),
        sorted(db.execute("SELECT round, item_id, kind, author, reviewer, raw, score FROM reviews")),
        sorted(db.execute("SELECT round, item_id, kind, author, accepted, value FROM verdicts")),
        (run / "rounds" / "0" / "train.jsonl").read_text(),
    )


def _stored(run) -> set:
    db = sqlite3.connect(run / "run.sqlite")
    return {
        fingerprint(model.removeprefix("openai/"), json.loads(request)[1])
        for model, request in db.execute("SELECT model, request FROM calls WHERE response IS NOT NULL")
    }


@pytest.mark.slow
def test_crash_in_review_then_resume(tmp_path, paper_dir):
    """SIGKILL during review, resume: same results as an uninterrupted run, and nothing that was
    answered and stored before the kill is asked again."""
    mistakes = paper_mistakes(paper_dir, tmp_path, 60)
    with serve_in_thread(latency=0.03) as server:
        config = committee_config(tmp_path, server.url, mistakes, teacher={"concurrency": 2})
        clean = tmp_path / "clean"
        assert fair("run", config, "--run-dir", clean, "--quiet").returncode == 0
        server.reset_counts()
        crashed = tmp_path / "crashed"
        proc = subprocess.Popen(
            [sys.executable, "-m", "fair_core.cli", "run", str(config), "--run-dir", str(crashed), "--quiet"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while proc.poll() is None:
            try:
                db = sqlite3.connect(crashed / "run.sqlite")
                if db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] >= 100:
                    break
            except sqlite3.OperationalError:
                pass
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        answered_before = set(server.answered)
        db = sqlite3.connect(crashed / "run.sqlite")
        assert 100 <= db.execute("SELECT COUNT(*) FROM reviews").fetchone()[0] < 360
        stored = _stored(crashed)
        server.reset_counts()
        out = fair("run", config, "--run-dir", crashed, "--quiet")
        assert out.returncode == 0, out.stderr
        resent = set(server.received) & answered_before
    assert not resent & stored  # nothing stored before the kill was asked again
    assert len(resent) <= 6  # only the calls in flight at the kill (3 teachers x concurrency 2)
    assert _results(crashed) == _results(clean)


@pytest.mark.slow
def test_faults_and_two_kills_end_as_an_undisturbed_run(tmp_path, paper_dir):
    """All three teachers behind 20% injected faults; the run is killed (-9) twice at different
    points, then resumed: it ends with the verdicts of a run nobody killed, and no call that was
    answered and stored before a kill is asked again."""
    mistakes = paper_mistakes(paper_dir, tmp_path, 40)
    # answers cut short (finish_reason length or content_filter) are retried, never stored
    faults = {"500": 0.04, "malformed": 0.04, "empty": 0.04, "drop": 0.04, "length": 0.04, "filter": 0.04}
    faults["badusage"] = 0.04  # usage counts as strings: read as numbers, the cost exact
    with serve_in_thread(faults=faults, seed=11, latency=0.02) as server:
        config = committee_config(
            tmp_path, server.url, mistakes, teacher={"concurrency": 3, "max_retries": 10, "retry_base_s": 0.01}
        )
        clean = tmp_path / "clean"
        assert fair("run", config, "--run-dir", clean, "--quiet").returncode == 0
        crashed = tmp_path / "crashed"
        repaid, seen = set(), Counter()
        for table, at_least in (("writings", 90), ("reviews", 120)):  # mid explain/solve, then mid review
            stored = _stored(crashed) if (crashed / "run.sqlite").exists() else set()
            seen.update(server.faulted)
            server.reset_counts()
            proc = subprocess.Popen(
                [sys.executable, "-m", "fair_core.cli", "run", str(config), "--run-dir", str(crashed), "--quiet"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            while proc.poll() is None:
                try:
                    with sqlite3.connect(crashed / "run.sqlite") as db:
                        if db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] >= at_least:
                            break
                except sqlite3.OperationalError:
                    pass
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            assert proc.wait() == -signal.SIGKILL  # killed mid-way, not finished
            repaid |= set(server.received) & stored
        stored = _stored(crashed)
        seen.update(server.faulted)
        server.reset_counts()
        out = fair("run", config, "--run-dir", crashed, "--quiet")
        assert out.returncode == 0, out.stderr[-2000:]
        asked = set(server.received)
    assert stored and not asked & stored and not repaid  # nothing answered and stored before a kill asked again
    assert _results(crashed) == _results(clean)
    assert {"length", "filter", "badusage"} <= set(seen + server.faulted)
    tokens = [
        sqlite3.connect(run / "run.sqlite")
        .execute("SELECT SUM(prompt_tokens + completion_tokens) FROM calls")
        .fetchone()
        for run in (clean, crashed)
    ]
    assert tokens[0][0] and tokens[0] == tokens[1]  # usage read as numbers, one stored answer per call


@pytest.mark.slow
def test_secrets_never_written(tmp_path, paper_dir):
    secret = "sk-test-9f8e7d6c5b4a39281706"
    mistakes = paper_mistakes(paper_dir, tmp_path, 5)
    with serve_in_thread(api_key=secret) as server:
        for transport in ("http", "litellm"):
            config = committee_config(
                tmp_path,
                server.url,
                mistakes,
                teacher={"api_key_env": "FAIR_TEST_KEY", "options": {"transport": transport}},
            )
            run = tmp_path / f"run-{transport}"
            out = fair("run", config, "--run-dir", run, env={"FAIR_TEST_KEY": secret})
            assert out.returncode == 0, out.stderr
            assert secret not in out.stdout + out.stderr
            for fmt in ("paper", "jsonl", "hf"):
                assert (
                    fair("export", run, "--format", fmt, "--out", tmp_path / "export" / transport / fmt).returncode == 0
                )
            # a live run's paper export: the scores as parsed, the reviewers' words beside them
            rationales = json.loads(
                (tmp_path / "export" / transport / "paper" / "fair_task_rationale_round0.json").read_text()
            )
            assert {type(s) for x in rationales for s in x["t0_rationale"][1:]} == {int}
            assert {t for x in rationales for t in x["t0_review_text"]} <= {"[5]", "[2]"}
        assert server.stats()["answered"]  # the key was accepted: the server answered
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 10
    for path in files:
        assert secret.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_budget_stops_new_calls(tmp_path, paper_dir):
    from fair_core.testing.server import BEHAVIOURS

    mistakes = paper_mistakes(paper_dir, tmp_path, 40)
    with serve_in_thread(behaviours={"gpt-4o": BEHAVIOURS["solver"]}) as server:
        config = committee_config(
            tmp_path,
            server.url,
            mistakes,
            models=("gpt-4o", "gpt-4o"),
            teacher={"concurrency": 1},
            committee={"budget_usd": 0.02},
        )
        out = fair("run", config, "--run-dir", tmp_path / "run")
        sent = server.requests
        report = json.loads(fair("report", tmp_path / "run", "--json").stdout)
        db = sqlite3.connect(tmp_path / "run" / "run.sqlite")
        answered = {k for (k,) in db.execute("SELECT key FROM calls WHERE error IS NULL")}
        # the budget is a limit, not a result: raising it goes on, and pays no answered call again
        more = fair("run", config, "--run-dir", tmp_path / "run", "--set", "committee.budget_usd=1")
        assert more.returncode == 0, more.stderr[-2000:]
        asked_again = server.requests - sent
    assert out.returncode == 4  # stopped by the budget, and the last line says how to go on
    assert "budget reached" in out.stderr
    assert "stopped by the budget" in out.stderr.strip().splitlines()[-1]
    most = db.execute(
        f"SELECT MAX(cost_usd) FROM calls WHERE key IN ({','.join('?' * len(answered))})", list(answered)
    ).fetchone()[0]
    # stopped before the budget (each call's worst case, 512 tokens out, is reserved before it is
    # sent), and not long before: within the worst case of the two calls in flight
    assert 0.02 / 2 <= report["cost_usd"] <= 0.02 and most < 0.02 / 10
    assert sent < 80 and report["failures"] > 0 and report["budget_reached"]
    done = json.loads(fair("report", tmp_path / "run", "--json").stdout)
    assert {s["status"] for s in done["stages"]} == {"done"} and done["failures"] == 0 and not done["budget_reached"]
    every = db.execute("SELECT COUNT(*) FROM calls WHERE error IS NULL").fetchone()[0]
    assert every > 100 and asked_again == every - len(answered)  # each unanswered request once, no answered one


@pytest.mark.slow
def test_options_review_feedback_verify_k_and_all(tmp_path, paper_dir):
    mistakes = paper_mistakes(paper_dir, tmp_path, 12)
    with serve_in_thread() as server:
        config = committee_config(
            tmp_path,
            server.url,
            mistakes,
            models=("solver", "noisy-0.5", "noisy-1.0"),
            committee={
                "review_feedback": True,
                "verify_answer": True,
                "assignment": "k",
                "k": 1,
                "compile_mode": "all",
            },
        )
        assert fair("run", config, "--run-dir", tmp_path / "run").returncode == 0
    db = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    per_writing = Counter((i, k, a) for i, k, a in db.execute("SELECT item_id, kind, author FROM reviews"))
    assert set(per_writing.values()) == {1}  # k = 1 reviewer per writing
    assert {k for _, k, _ in per_writing} == {"rationale", "feedback"}
    accepted = list(db.execute("SELECT author FROM verdicts WHERE kind = 'rationale' AND accepted"))
    assert accepted and ("t2",) not in accepted  # a teacher that is always wrong never passes verify_answer
    pairs = [json.loads(line) for line in (tmp_path / "run" / "rounds" / "0" / "train.jsonl").read_text().splitlines()]
    assert len(pairs) >= len({p["item_id"] for p in pairs})


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, needle",
    [
        ({"teacher": {"api_key_env": "FAIR_NO_SUCH_KEY"}}, "FAIR_NO_SUCH_KEY"),
        ({"teacher": {"api_base": None, "model": "frobnicator-9000"}}, "frobnicator-9000"),
        ({"replay": "fair-reference/nope.json"}, "nope.json"),
        ({"committee": {"threshold": 6}}, "committee.threshold"),
    ],
)
def test_bad_committee_input_fails_before_any_call(tmp_path, paper_dir, change, needle):
    mistakes = paper_mistakes(paper_dir, tmp_path, 3)
    with serve_in_thread() as server:
        path = committee_config(tmp_path, server.url, mistakes)
        data = cfg.load(path).model_dump(mode="json")
        for t in data["teachers"]:
            t.update(change.get("teacher", {}))
            if "replay" in change:
                t.update(backend="replay", options={"files": [change["replay"]]})
        data["committee"].update(change.get("committee", {}))
        path.write_text(json.dumps(data).replace("null", '""') if False else "")
        import tomli_w

        path.write_text(tomli_w.dumps(_drop_none(data)))
        out = fair("run", path, "--run-dir", tmp_path / "run")
        assert server.requests == 0
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], out.stderr


def _drop_none(x):
    if isinstance(x, dict):
        return {k: _drop_none(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [_drop_none(v) for v in x]
    return x


def _two_teachers(tmp_path, mistakes, good: dict, bad: dict) -> Path:
    data = {
        "stages": ["explain", "solve", "review"],
        "task": {"name": "svamp", "mistakes_file": str(mistakes)},
        "teachers": [
            {"name": "good", "backend": "litellm", "timeout_s": 60, "retry_base_s": 0.05, **good},
            {"name": "bad", "backend": "litellm", "timeout_s": 60, "retry_base_s": 0.05, **bad},
        ],
    }
    path = tmp_path / "two.toml"
    path.write_text(cfg.dump(cfg.validate(data)))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["http"])  # litellm's errors take the same path: see the unreachable test
def test_a_teacher_that_cannot_answer_is_asked_once(tmp_path, paper_dir, transport):
    """A wrong key (401): the teacher is stopped after its first answer, its other calls fail
    without being sent, the other teacher finishes, and the run exits 3."""
    mistakes = paper_mistakes(paper_dir, tmp_path, 10)
    with serve_in_thread(api_key="right") as server:
        common = {"api_base": server.url, "options": {"transport": transport}, "concurrency": 1}
        config = _two_teachers(
            tmp_path,
            mistakes,
            {"model": "openai/solver", "api_key_env": "GOOD", **common},
            {"model": "openai/noisy-0.3", "api_key_env": "BAD", **common},
        )
        out = fair("run", config, "--run-dir", tmp_path / "run", "--quiet", env={"GOOD": "right", "BAD": "wrong"})
        by_model = server.stats()["by_model"]
    assert out.returncode == 3, out.stderr[-2000:]
    assert by_model["noisy-0.3"] == 1 and by_model["solver"] == 10 + 10  # feedback and rationale per item
    assert "teacher bad stopped: HTTP 401" in out.stderr
    db = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    reasons = {r for (r,) in db.execute("SELECT error FROM calls WHERE teacher = 'bad'")}
    assert reasons and all("HTTP 401" in r for r in reasons)
    assert db.execute("SELECT COUNT(*) FROM writings WHERE teacher = 'good'").fetchone()[0] == 20


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["http", "litellm"])
def test_an_unreachable_teacher_is_given_up_quickly(tmp_path, paper_dir, transport):
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mistakes = paper_mistakes(paper_dir, tmp_path, 20)
    with serve_in_thread() as server:
        config = _two_teachers(
            tmp_path,
            mistakes,
            {"model": "openai/solver", "api_base": server.url},
            {
                "model": "openai/solver",
                "api_base": f"http://127.0.0.1:{port}/v1",
                "max_retries": 7,
                "options": {"transport": transport},
            },
        )
        out = fair("run", config, "--run-dir", tmp_path / "run", "--quiet")
    assert out.returncode == 3, out.stderr[-2000:]
    assert "teacher bad stopped: cannot connect" in out.stderr
    # 40 calls x 8 tries each would take minutes of backoff; a circuit gives up after a few probes
    db = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    assert db.execute("SELECT SUM(attempts) FROM calls WHERE teacher = 'bad'").fetchone()[0] < 40


@pytest.mark.slow
def test_report_figures_agree_with_the_stage_lines(tmp_path, paper_dir):
    """Two teachers that ask the same requests share them, so one failed request is two failed
    calls; the report, its per-teacher table and the stage summaries all count two. A run where
    every call failed has every mistake without a rationale, not none."""
    mistakes = paper_mistakes(paper_dir, tmp_path, 5)
    with serve_in_thread(api_key="right") as server:
        teachers = [
            {"name": n, "model": f"openai/{m}", "api_base": server.url, "api_key_env": env}
            for n, m, env in (("a", "solver", "GOOD"), ("b", "solver", "GOOD"), ("c", "noisy-0.3", "BAD"))
        ]
        for name, env in (("mixed", {"GOOD": "right", "BAD": "wrong"}), ("dead", {"GOOD": "wrong", "BAD": "wrong"})):
            data = {
                "stages": ["explain", "solve", "review"],
                "teachers": teachers,
                "task": {"name": "svamp", "mistakes_file": str(mistakes)},
            }
            (tmp_path / f"{name}.toml").write_text(cfg.dump(cfg.validate(data)))
            out = fair("run", tmp_path / f"{name}.toml", "--run-dir", tmp_path / name, "--quiet", env=env)
            assert out.returncode == 3, out.stderr[-2000:]
    for name in ("mixed", "dead"):
        report = json.loads(fair("report", tmp_path / name, "--json").stdout)
        db = sqlite3.connect(tmp_path / name / "run.sqlite")
        stage_failed = sum(json.loads(s)["failed"] for (s,) in db.execute("SELECT summary FROM stages"))
        assert report["failures"] == stage_failed == sum(t["failures"] for t in report["per_teacher"].values()) > 0
    assert report["items_without_rationale"] == report["items"] == 5  # the dead run


@pytest.mark.slow
def test_refusals_spent_accounts_and_long_waits_fail_fast_and_say_what_to_do(tmp_path, paper_dir):
    """A request the teacher refuses (HTTP 400) fails that call, and three in a row stop the
    teacher; no credit (402) or a spent quota (429 insufficient_quota) stop it at its first
    answer, naming the fix; a Retry-After of an hour fails the call at once instead of waiting.
    The run exits 3 with the stopped teacher's reason on its last line."""
    mistakes = paper_mistakes(paper_dir, tmp_path, 6)
    for model, first_words, requests in (
        ("refuse-400", "HTTP 400", 3),
        ("credit-402", "HTTP 402", 1),
        ("quota-429", "HTTP 429", 1),
    ):
        with serve_in_thread() as server:
            common = {"api_base": server.url, "concurrency": 1}
            config = _two_teachers(
                tmp_path, mistakes, {"model": "openai/solver", **common}, {"model": f"openai/{model}", **common}
            )
            run = tmp_path / model
            out = fair("run", config, "--run-dir", run, "--quiet")
            by_model = server.stats()["by_model"]
        assert out.returncode == 3, out.stderr[-2000:]
        assert by_model[model] == requests, (model, by_model)
        last = out.stderr.strip().splitlines()[-1]
        assert f"teacher bad stopped: {first_words}" in last, last
        if model != "refuse-400":
            assert "add credit or raise the quota" in last, last
    with serve_in_thread(capacity=0, retry_after=3600) as busy, serve_in_thread() as server:
        config = _two_teachers(
            tmp_path,
            mistakes,
            {"model": "openai/solver", "api_base": server.url},
            {"model": "openai/solver", "api_base": busy.url},
        )
        out = fair("run", config, "--run-dir", tmp_path / "busy", "--quiet")
        asked = busy.requests
    assert out.returncode == 3, out.stderr[-2000:]
    db = sqlite3.connect(tmp_path / "busy" / "run.sqlite")
    reasons = [r for (r,) in db.execute("SELECT error FROM calls WHERE teacher = 'bad'")]
    assert reasons and all("asks to wait 3600 s" in r for r in reasons), reasons
    assert asked == len(reasons)  # each call asked once and failed at once: none waited out the hour
