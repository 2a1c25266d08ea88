"""docs/plugin-authoring.md's example package, taken from the page's text alone, installed into a
fresh environment and run headless: the page works as written."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest
from helpers import REPO

# One file of the example: a paragraph that is only its path in backticks and a colon, then a blank
# line and the fenced block that holds the file.
FILE = re.compile(r"^`([\w./-]+)`:\n\n```[a-z]*\n(.*?)^```$", re.M | re.S)


def example_files() -> dict[str, str]:
    return dict(FILE.findall((REPO / "docs" / "plugin-authoring.md").read_text(encoding="utf-8")))


def environment(path):
    """A new virtual environment that sees this one's packages (fair, its dependencies, pip,
    setuptools) beneath its own. ``--system-site-packages`` would show the base interpreter's
    packages, not those of the environment the tests run in, so a .pth file adds them."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    (path / site / "fair_parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return python


@pytest.mark.slow
def test_the_example_plugin_installs_and_runs_headless(tmp_path):
    files = example_files()
    assert {
        "fair-acme/pyproject.toml",
        "fair-acme/fair_acme/__init__.py",
        "fair-acme/fair_acme/data/sums.jsonl",
        "fair-acme/tests/test_acme.py",
        "acme.toml",
        "mistakes.json",
    } <= set(files)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    python = environment(tmp_path / "env")
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}

    def run(*args):
        out = subprocess.run(
            [str(python), *map(str, args)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
        )
        assert out.returncode == 0, f"{args}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
        return out

    run("-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet", "./fair-acme")
    shutil.rmtree(tmp_path / "fair-acme" / "fair_acme")  # from here on only the installed copy exists, data included

    plugins = run("-m", "fair_core.cli", "plugins", "--json")
    acme = next(p for p in json.loads(plugins.stdout) if p["name"] == "acme")
    assert acme["version"] == "0.1.0" and "warning" not in plugins.stderr
    assert acme["registered"] == {
        "tasks": ["acme-sums"],
        "teachers": ["acme-calculator"],
        "policies": ["acme-mean-at-least"],
    }
    run("-m", "pytest", "-q", "-p", "no:cacheprovider", "fair-acme/tests")
    data = run("-m", "fair_core.cli", "data", "acme-sums").stdout
    assert "acme-sums train: 4 items" in data and "acme-sums test: 2 items" in data

    run("-m", "fair_core.cli", "run", "acme.toml", "--run-dir", "runs/acme", "--quiet")
    report = json.loads(run("-m", "fair_core.cli", "report", "runs/acme", "--json").stdout)
    assert report["items"] == 3 and report["failures"] == 0 and report["items_without_rationale"] == 0
    teachers = report["per_teacher"]
    assert teachers["ann"]["acceptance"] == teachers["bob"]["acceptance"] == 1 and teachers["sam"]["acceptance"] == 0
    # ann and bob share each answer through the cache; sam, whose options differ, has its own
    # (per item: explain, solve, and reviews of the careful and of the slipped writings)
    assert teachers["sam"]["calls"] == 3 * 4 and sum(t["calls"] for t in teachers.values()) == 3 * 10
    golds = {str(m["id"]): m["gold_answer"] for m in json.loads(files["mistakes.json"])}
    pairs = [json.loads(line) for line in (tmp_path / "runs/acme/rounds/0/train.jsonl").read_text().splitlines()]
    assert sorted(p["item_id"] for p in pairs) == sorted(golds)
    for p in pairs:  # only accepted writings are distilled: the careful teachers'
        for kind in ("feedback", "rationale"):
            assert p[kind]["response"].endswith(f"The answer is {golds[p['item_id']]}.")


def test_the_page_and_the_hookspecs_state_the_same_calls():
    """What fair calls, word for word in the hookspecs' docstrings and in the page's contract table."""
    from fair_core import hookspecs

    rows: dict[str, str] = {}  # hook -> its rows of the table (reviewers have two)
    for line in (REPO / "docs" / "plugin-authoring.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `register_"):
            hook = line.split("|")[1].strip(" `")
            rows[hook] = rows.get(hook, "") + line.replace("\\|", "|")
    calls = {
        "register_tasks": ["factory(data_dir=None, prompts=None, seed=0)"],
        "register_teachers": ["factory(config)"],
        "register_reviewers": ["parse(text) -> int | None", "policy(threshold)"],
        "register_students": ["factory(config, adapter=None)", "local_path(config)"],
        "register_commands": ["configure(parser)", "handler(args) -> int"],
        "register_stages": ["run(ctx)", "jobs(ctx)"],
    }
    for hook, said in calls.items():
        spec = " ".join(getattr(hookspecs, hook).__doc__.split())
        for text in said:
            assert f"``{text}``" in spec and f"`{text}`" in rows[hook], (hook, text)
