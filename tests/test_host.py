"""The plugin host: built-ins through entry points, third-party packages, broken plugins."""

import json
import textwrap

from fair_core.hookspecs import hookimpl
from fair_core.host import Host

from helpers import fair


def make_dist(root, name, module_source):
    """A throwaway installed distribution: a module plus a dist-info with a "fair" entry point."""
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[fair]\n{name} = {name}\n")


def test_builtins_load_through_entry_points():
    out = fair("plugins", "--json")
    assert out.returncode == 0, out.stderr
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert {"tasks", "teachers", "reviewers", "students"} <= set(plugins)
    assert set(plugins["tasks"]["registered"]["tasks"]) == {"gsm8k", "svamp", "strategyqa", "logiqa"}
    assert {"litellm", "replay", "hf"} <= set(plugins["teachers"]["registered"]["teachers"])
    assert {"mean", "median", "min", "majority", "trimmed-mean"} <= set(plugins["reviewers"]["registered"]["policies"])
    assert "paper" in plugins["reviewers"]["registered"]["parsers"]
    assert "hf" in plugins["students"]["registered"]["students"]
    assert all(p["version"] == "0.1.0" and p["hooks"] for p in plugins.values())


def test_third_party_plugin_loads_and_broken_one_is_skipped(tmp_path):
    make_dist(tmp_path, "fair_arith", """
        from fair_core.hookspecs import hookimpl
        from fair_core.task import Problem, Task

        class Arith(Task):
            name = "arith"
            hub_id = "none"
            default_prompts = {"student": "{question}"}
            def load(self, split):
                return [Problem("1", "1+1?", "2")]
            def extract(self, text):
                return text.strip() or None

        @hookimpl
        def register_tasks(register):
            register("arith", Arith)

        @hookimpl
        def register_commands(register):
            def configure(parser):
                parser.add_argument("--n", type=int, default=1)
            register("hello", "say hello", configure, lambda args: print("hello" * args.n) or 0)
    """)
    make_dist(tmp_path, "fair_broken", "raise ImportError('missing dependency frobnicate')\n")
    env = {"PYTHONPATH": str(tmp_path)}
    out = fair("plugins", "--json", env=env)
    assert out.returncode == 0
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["fair_arith"]["version"] == "0.3"
    assert plugins["fair_arith"]["registered"] == {"tasks": ["arith"], "commands": ["hello"]}
    assert "fair_broken" not in plugins
    warnings = [line for line in out.stderr.splitlines() if "fair_broken" in line]
    assert len(warnings) == 1 and "frobnicate" in warnings[0]
    hello = fair("hello", "--n", "2", env=env)
    assert hello.returncode == 0 and hello.stdout.strip() == "hellohello"
    data = fair("data", "arith", env=env)
    assert "arith train: 1 items" in data.stdout


def test_fair_plugins_env_selects(tmp_path):
    only = json.loads(fair("plugins", "--json", env={"FAIR_PLUGINS": "tasks"}).stdout)
    assert [p["name"] for p in only] == ["tasks"]
    none = json.loads(fair("plugins", "--json", env={"FAIR_PLUGINS": ""}).stdout)
    assert none == []


class Clash:
    @hookimpl
    def register_tasks(self, register):
        register("svamp", object)


class Raises:
    @hookimpl
    def register_teachers(self, register):
        raise RuntimeError("boom")


def test_name_clash_names_both_plugins():
    host = Host().load_entry_points(["tasks"])
    try:
        host.add(Clash(), "other")
    except Exception as e:
        assert "'tasks'" in str(e) and "'other'" in str(e)
    else:
        raise AssertionError("a clash must be an error")


def test_plugin_raising_in_hook_is_reported_once():
    host = Host()
    host.add(Raises(), "raiser")
    assert host.problems == ["plugin 'raiser' failed in register_teachers: RuntimeError: boom"]
