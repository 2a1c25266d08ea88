"""A committee stage from a plugin package, with no file of fair touched: the package declares it
(its own kind of writing, its own prompt kind with its template, a redo key, its calls) and
registers it with ``register_stages``; it then runs, resumes, redoes when its key changes, and
shows in `fair estimate`, `fair report` and the TUI's pipeline screen. The teachers are the local
server's echo model (each answer is its prompt), the mistakes a small file: no data, no model."""

import json
import re
import sys

import pytest
from helpers import REPO, pipeline_screen

from fair_core import cli, load_config, run
from fair_core.errors import ConfigError, FairError
from fair_core.hookspecs import hookimpl
from fair_core.host import Host, get_host, reset_host
from fair_core.runs.events import CallDone
from fair_core.runs.store import Store
from fair_core.stages import PIPELINE, Need, Prompt, Stage

# the plugin is docs/plugin-authoring.md's example, taken from the page's text: the page works as written
PLUGIN = re.search(
    r"^## Pipeline stages\n.*?^```python\n(.*?)^```$", (REPO / "docs" / "plugin-authoring.md").read_text(), re.M | re.S
)[1]
STAGES = ["explain", "solve", "digest", "review", "compile"]
QUESTIONS = ["Tom has 3 apples and buys 4. How many?", "A box holds 6 eggs; 2 break. How many?"]


@pytest.fixture
def plugin():
    """The plugin's source (a test parametrizes ``plugin`` for a variant)."""
    return PLUGIN


@pytest.fixture
def digest(tmp_path, monkeypatch, plugin):
    """The plugin installed as a package (a module and its dist-info with a "fair" entry point)
    and found by the process's host; the host, and the module cache, without it again after the test."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "fair_digest.py").write_text(plugin)
    info = root / "fair_digest-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fair-digest\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[fair]\ndigest = fair_digest\n")
    monkeypatch.syspath_prepend(str(root))
    reset_host()
    yield
    reset_host()
    sys.modules.pop("fair_digest", None)  # a variant's test imports its own


@pytest.fixture
def config(tmp_path, server, digest):
    """A config of two echo teachers on two mistakes, running the plugin's stage among the committee's."""
    mistakes = tmp_path / "sums_svamp_false_round0.json"
    wrong = {"gold_answer": "7", "student_wrong_pred": "5", "student_wrong_final_answer": "5"}
    mistakes.write_text(json.dumps([{"id": i, "question": q, **wrong} for i, q in enumerate(QUESTIONS)]))
    teachers = "".join(
        f'[[teachers]]\nname = "t{i}"\nbackend = "litellm"\nmodel = "openai/echo"\napi_base = "{server.url}"\n'
        f"max_retries = 0\nparams = {{ temperature = 0.{i}, max_tokens = 64 }}\n"  # two teachers, not one call
        "price = { input = 1.0, output = 2.0 }\n"
        for i in range(2)
    )
    path = tmp_path / "digest.toml"
    path.write_text(f'stages = {json.dumps(STAGES)}\n[task]\nname = "svamp"\nmistakes_file = "{mistakes}"\n{teachers}')
    return path


def digests(run_dir) -> list[str]:
    """The run's digests; review judged none of them (they are no rationale), compile kept none."""
    store = Store(run_dir / "run.sqlite", readonly=True)
    try:
        assert {v.kind for v in store.verdicts(0)} == {"rationale"}
        return sorted(w.text for w in store.writings(0, "digest"))
    finally:
        store.close()


def test_a_plugins_committee_stage_runs_resumes_redoes_and_shows_everywhere(config, server, tmp_path, capsys):
    assert get_host().pipeline.names() == [
        "examine",
        "explain",
        "solve",
        "digest",
        "review",
        "compile",
        "train",
        "evaluate",
    ]
    plugin = next(p for p in get_host().plugins if p.name == "digest")
    assert plugin.status == "ok" and plugin.registered == {"stages": ["digest"]}

    # the estimate counts its calls, with its purpose, before anything is paid
    assert cli.main(["estimate", str(config), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["purposes"] == ["explain", "solve", "digest", "review"]
    assert est["per_teacher"]["t0"]["calls"] == {"explain": 2, "solve": 2, "digest": 2, "review": 2}
    assert cli.main(["estimate", str(config)]) == 0  # the table has a column for its calls
    header = next(line for line in capsys.readouterr().out.splitlines() if "teacher" in line)
    assert header.split()[:6] == ["teacher", "model", "explain", "solve", "digest", "review"]
    assert server.requests == 0

    run_dir = tmp_path / "run"
    first = run(load_config(config), run_dir)
    assert first.ok and first.ran == [(0, s) for s in STAGES]
    assert server.requests == 2 * (2 + 2 + 2 + 2)  # two teachers: explain, solve, digest, review by the other
    # its own prompt kind, rendered from the template its stage brings; its own kind of writing
    assert digests(run_dir) == sorted(f"Sum up in one line: {q}" for q in QUESTIONS for _ in range(2))
    assert est["calls"] == server.requests  # the estimate counted the very calls

    events = []
    second = run(load_config(config), run_dir, on_event=events.append)  # resumed: everything is done
    assert second.ok and second.ran == [] and not any(isinstance(e, CallDone) for e in events)

    # its redo key: a new template for its prompt redoes it (and what follows), not what precedes it
    changed = load_config(config, ["task.prompts.digest=IN SHORT {question}"])
    calls = server.requests
    third = run(changed, run_dir)
    assert third.ok and third.ran == [(0, s) for s in ("digest", "review", "compile")]
    assert server.requests == calls + 4  # the new digests; the reviews are the cached ones
    assert digests(run_dir) == sorted(f"IN SHORT {q}" for q in QUESTIONS for _ in range(2))

    assert cli.main(["report", str(run_dir), "--json"]) == 0
    stages = json.loads(capsys.readouterr().out)["stages"]
    assert [(s["stage"], s["status"]) for s in stages] == [(s, "done") for s in STAGES]
    assert cli.main(["report", str(run_dir)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "round 0 stages: explain done, solve done, digest done, review done, compile done" in text

    names, state = pipeline_screen(run_dir, "digest")
    assert names == STAGES and "done" in state


UNDECLARED = PLUGIN.replace("    records=(Writing,),\n", "")  # its author forgot the line


@pytest.mark.parametrize("plugin", [UNDECLARED], ids=["records-line-left-out"])
def test_a_stage_that_stores_a_record_it_did_not_declare_fails_naming_it(config, server, tmp_path, capsys):
    assert UNDECLARED != PLUGIN
    run_dir = tmp_path / "run"
    assert cli.main(["run", str(config), "--run-dir", str(run_dir), "--quiet"]) == 2
    error = (
        "stage 'digest' made a Writing record, which its records do not declare: add Writing to its Stage(records=...)"
    )
    assert capsys.readouterr().err.splitlines()[-1] == f"fair: error: {error}"
    store = Store(run_dir / "run.sqlite", readonly=True)
    try:
        assert [store.stage_status(0, s) for s in STAGES[:3]] == ["done", "done", "failed"]
        assert next(s.summary for s in store.stages() if s.stage == "digest") == {"error": error}
        assert store.writings(0, "digest") == []  # nothing of the undeclared kind stored
    finally:
        store.close()

    # its author adds the line back: the rerun pays no digest again, its answers were kept
    paid = server.requests
    (tmp_path / "site" / "fair_digest.py").write_text(PLUGIN)
    sys.modules.pop("fair_digest")
    reset_host()
    assert run(load_config(config), run_dir).ok
    assert digests(run_dir) == sorted(f"Sum up in one line: {q}" for q in QUESTIONS for _ in range(2))
    assert server.requests == paid + 4  # the reviews only


def test_a_stage_or_prompt_kind_the_pipeline_lacks_is_refused_by_the_runs_check(tmp_path):
    reset_host()  # without the plugin
    try:
        config = load_config(None, ['stages=["explain", "digest"]'])  # the schema does not know the pipeline
        with pytest.raises(ConfigError, match="unknown stage 'digest'"):
            run(config, tmp_path / "run")
        with pytest.raises(FairError, match="unknown prompt kind 'digest' for task svamp: use one of student, "):
            run(load_config(None, ["task.prompts.digest=x", 'stages=["compile"]']), tmp_path / "run")
        assert not (tmp_path / "run").exists()
    finally:
        reset_host()


def noop(ctx):
    return {}


@pytest.mark.parametrize(
    "stage, after, error",
    [
        (Stage("lost", noop, Need.NOTHING, reads="", writes=""), "teach", "no stage 'teach' to put 'lost' after"),
        (Stage("review", noop, Need.NOTHING, reads="", writes=""), "compile", "a stage named 'review' exists already"),
        (
            Stage("echo", noop, Need.NOTHING, reads="", writes="", prompts=(Prompt("solve", ("question",)),)),
            "compile",
            "stage 'echo' declares 'solve', which another stage has",
        ),
        ("not a stage", "compile", "failed in register_stages: TypeError: register_stages takes a fair_core.stages"),
    ],
)
def test_a_stage_that_cannot_join_the_pipeline_keeps_its_plugin_out(stage, after, error):
    class Plugin:
        @hookimpl
        def register_stages(self, register):
            register(stage, after=after)

    host = Host()
    info = host.add(Plugin(), "bad-stage")
    assert info.status == "error" and info.error.startswith(error) and info.registered == {}
    assert host.pipeline.names() == PIPELINE.names()
