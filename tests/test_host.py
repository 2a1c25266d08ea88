"""The plugin host: built-ins through entry points, third-party packages, broken plugins."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import REPO, fair

from fair_core.hookspecs import hookimpl
from fair_core.host import Host


def make_dist(root, name, module_source, plugin=None):
    """A throwaway installed distribution: a module plus a dist-info with a "fair" entry point
    named ``plugin`` (default: the module's name)."""
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[fair]\n{plugin or name} = {name}\n")


def test_builtins_load_through_entry_points():
    out = fair("plugins", "--json")
    assert out.returncode == 0, out.stderr
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert {"tasks", "teachers", "reviewers", "students"} <= set(plugins)
    assert set(plugins["tasks"]["registered"]["tasks"]) == {"dataset", "gsm8k", "svamp", "strategyqa", "logiqa"}
    assert {"litellm", "replay", "hf"} <= set(plugins["teachers"]["registered"]["teachers"])
    assert {"mean", "median", "min", "majority", "trimmed-mean"} <= set(plugins["reviewers"]["registered"]["policies"])
    assert "paper" in plugins["reviewers"]["registered"]["parsers"]
    assert "hf" in plugins["students"]["registered"]["students"]
    assert all(p["version"] == "0.1.0" and p["hooks"] and p["builtin"] for p in plugins.values())
    assert all(p["status"] == "ok" and p["error"] is None for p in plugins.values())


def test_third_party_plugin_loads_and_broken_one_is_skipped(tmp_path):
    make_dist(
        tmp_path,
        "fair_arith",
        """
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
    """,
    )
    make_dist(tmp_path, "fair_broken", "raise ImportError('missing dependency frobnicate')\n")
    env = {"PYTHONPATH": str(tmp_path)}
    out = fair("plugins", "--json", env=env)
    assert out.returncode == 0
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert plugins["fair_arith"]["version"] == "0.3" and plugins["fair_arith"]["status"] == "ok"
    assert plugins["fair_arith"]["registered"] == {"tasks": ["arith"], "commands": ["hello"]}
    assert plugins["fair_broken"]["status"] == "error" and "frobnicate" in plugins["fair_broken"]["error"]
    assert plugins["fair_broken"]["registered"] == {}
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


# Plugins that break the contract, each installed with a real entry point. Each is reported as its
# own problem, keeps nothing it registered, and leaves fair (--help, the built-ins, the others) working.
BAD = {
    "fair_misspelt": (
        """
        @hookimpl
        def register_teacher(register):
            register("calc", object)
    """,
        "error",
        "unknown hook 'register_teacher' (did you mean 'register_teachers'?): fair's hooks are "
        "register_commands, register_reviewers, register_stages, register_students, register_tasks, register_teachers",
    ),
    "fair_wrapper": (
        """
        @hookimpl(wrapper=True)
        def register_tasks(register):
            register("wrapped", object)
            return (yield)
    """,
        "error",
        "register_tasks is declared as a wrapper: a register hook must be a plain @hookimpl function",
    ),
    "fair_task_clash": (
        """
        @hookimpl
        def register_tasks(register):
            register("mine", object)
            register("svamp", object)
    """,
        "skipped",
        "its task 'svamp' is already registered by the built-in plugin 'tasks'",
    ),
    "fair_command_clash": (
        """
        @hookimpl
        def register_commands(register):
            register("hi", "say hi", lambda parser: None, lambda args: 0)
            register("run", "not fair's run", lambda parser: None, lambda args: 0)
    """,
        "skipped",
        "its command 'run' is one of fair's own",
    ),
    "fair_configure_fails": (
        """
        @hookimpl
        def register_commands(register):
            register("twice", "adds -h again", lambda parser: parser.add_argument("-h"), lambda args: 0)
    """,
        "error",
        "its command 'twice' failed to configure: ArgumentError: argument -h: conflicting option string: -h",
    ),
    "fair_raises": (
        """
        @hookimpl
        def register_teachers(register):
            register("early", object)
            raise RuntimeError("boom")
    """,
        "error",
        "failed in register_teachers: RuntimeError: boom",
    ),
    "fair_exits_at_import": ("raise SystemExit(7)\n", "error", "failed to import: SystemExit: 7"),
    "fair_interrupts_at_import": ("raise KeyboardInterrupt\n", "error", "failed to import: KeyboardInterrupt"),
    "fair_exits_in_hook": (
        """
        import sys

        @hookimpl
        def register_tasks(register):
            sys.exit("no licence")
    """,
        "error",
        "failed in register_tasks: SystemExit: no licence",
    ),
    "fair_configure_exits": (
        """
        @hookimpl
        def register_commands(register):
            register("quits", "calls parser.error", lambda parser: parser.error("bad"), lambda args: 0)
    """,
        "error",
        "its command 'quits' failed to configure: SystemExit: 2",
    ),
    "fair_z_second": (
        """
        @hookimpl
        def register_tasks(register):
            register("mine", object)
    """,
        "ok",
        None,
    ),  # "mine" is free: the clashing plugin above kept nothing
    "fair_zz_third": (
        """
        @hookimpl
        def register_tasks(register):
            register("mine", object)
    """,
        "skipped",
        "its task 'mine' is already registered by plugin 'fair_z_second'",
    ),  # the first loaded wins
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The bad plugins installed, and what `fair --help` and `fair plugins --json` say with them."""
    root = tmp_path_factory.mktemp("bad")
    for name, (source, _, _) in BAD.items():
        make_dist(root, name, "from fair_core.hookspecs import hookimpl\n" + textwrap.dedent(source))
    make_dist(root, "fair_named_tasks", "", plugin="tasks")  # a plugin named like a built-in
    env = {"PYTHONPATH": str(root)}
    return fair("--help", env=env), fair("plugins", "--json", env=env), fair("run", "--help", env=env)


@pytest.mark.parametrize("name", BAD)
def test_a_bad_plugin_is_its_own_problem(installed, name):
    helped, listed, _ = installed
    assert helped.returncode == 0 and "\n    run " in helped.stdout and "\n    hi " not in helped.stdout
    assert listed.returncode == 0
    plugins = json.loads(listed.stdout)
    mine = next(p for p in plugins if p["name"] == name)
    _, status, error = BAD[name]
    assert (mine["status"], mine["error"] and mine["error"][: len(error)]) == (status, error)
    if status != "ok":
        assert mine["registered"] == {}
        warned = [line for line in listed.stderr.splitlines() if f"plugin {name!r}" in line]
        assert len(warned) == 1 and warned[0].startswith("fair: warning: ") and error in warned[0]
    builtin = {p["name"]: p for p in plugins if p["builtin"]}
    assert builtin["tasks"]["status"] == "ok" and "svamp" in builtin["tasks"]["registered"]["tasks"]


def test_a_plugin_named_like_a_builtin_is_skipped_and_fairs_run_stays(installed):
    _, listed, run_help = installed
    named = [p for p in json.loads(listed.stdout) if p["name"] == "tasks"]
    assert [(p["builtin"], p["status"]) for p in named] == [(True, "ok"), (False, "skipped")]
    assert named[1]["error"].startswith("the name 'tasks' is taken by the built-in plugin 'tasks'")
    assert run_help.returncode == 0 and "the run's TOML config" in run_help.stdout
    assert not any(
        "hi" in p["registered"].get("commands", []) for p in json.loads(listed.stdout)
    )  # nothing of it stays


def test_ctrl_c_while_plugins_load_stops_fair(tmp_path):
    """A Ctrl-C that lands while a plugin's import runs is the user's, not the plugin's failure:
    fair stops (130), and does not go on without that plugin (a run would then fail with a wrong
    reason, or go on paying calls after the user asked it to stop)."""
    source = "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(60)\n"
    make_dist(tmp_path, "fair_slow_import", source)
    out = subprocess.run(
        [sys.executable, "-m", "fair_core.cli", "plugins"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])},
        capture_output=True,
        text=True,
        # SIGINT as a terminal sends it (a background job starts with it ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert out.returncode == 130, out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == ["fair: error: interrupted"]


class Clash:
    @hookimpl
    def register_tasks(self, register):
        register("arith", object)
        register("svamp", object)


class Raises:
    @hookimpl
    def register_teachers(self, register):
        raise RuntimeError("boom")


def test_a_clash_keeps_the_builtin_and_nothing_of_the_other_plugin():
    host = Host().load_entry_points(["tasks"])
    info = host.add(Clash(), "other")
    assert info.status == "skipped" and "'svamp'" in info.error and "built-in plugin 'tasks'" in info.error
    assert host.registry["tasks"]["svamp"].plugin == "tasks" and "arith" not in host.registry["tasks"]
    assert host.pm.get_plugin("other") is None


def test_plugin_raising_in_hook_is_reported_once(caplog):
    host = Host()
    host.add(Raises(), "raiser")
    assert host.problems == ["plugin 'raiser' not loaded: failed in register_teachers: RuntimeError: boom"]
    assert [r.getMessage() for r in caplog.records] == host.problems


# A teacher plugin whose `async def complete` makes a synchronous call (a blocking SDK): it holds the
# event loop, so neither asyncio's timeout nor Ctrl-C could reach it. It marks when it starts blocking.
SLEEPY = """
import os
import time
from pathlib import Path

from fair_core.gateway.backend import Backend, Completion
from fair_core.hookspecs import hookimpl

class Sleepy(Backend):
    async def complete(self, request):
        Path(os.environ["SLEEPY_MARK"]).touch()
        try:
            time.sleep(3600)
        except Exception:  # a backend that swallows errors must not swallow the timeout
            pass
        return Completion("The answer is 5.")

@hookimpl
def register_teachers(register):
    register("sleepy", Sleepy)
"""


@pytest.fixture
def sleepy(tmp_path):
    """(config, env) of a run whose one teacher blocks the loop in every call."""
    make_dist(tmp_path, "fair_sleepy", SLEEPY)
    item = {"question": "2+3?", "gold_answer": "5", "student_wrong_pred": "6", "student_wrong_final_answer": "6"}
    mistakes = tmp_path / "x_svamp_false_round0.json"
    mistakes.write_text(json.dumps([{"id": i, **item} for i in range(3)]))
    config = tmp_path / "sleepy.toml"
    config.write_text(
        f'stages = ["explain"]\n[task]\nname = "svamp"\nmistakes_file = "{mistakes}"\n'
        '[[teachers]]\nname = "slow"\nbackend = "sleepy"\nmodel = "m"\ntimeout_s = 1\nmax_retries = 0\n'
        "price = { input = 0, output = 0 }\n"
    )
    path = os.pathsep.join([str(tmp_path), str(REPO), str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")])
    return config, {"PYTHONPATH": path, "SLEEPY_MARK": str(tmp_path / "blocking")}


@pytest.mark.slow
@pytest.mark.needs_data
def test_a_backend_that_blocks_the_event_loop_still_times_out(sleepy, tmp_path):
    config, env = sleepy
    out = fair("run", config, "--run-dir", tmp_path / "run", "--quiet", env=env)
    assert out.returncode == 3, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("fair: error: round 0 explain is partial, 3 failed calls; teacher slow stopped: "), last
    assert "timeout after 1 s: the backend held the event loop" in last


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_and_sigterm_stop_a_run_whose_backend_blocks_the_event_loop(sleepy, tmp_path, sig, code):
    config, env = sleepy
    config.write_text(config.read_text().replace("timeout_s = 1\n", "timeout_s = 3600\n"))  # only the signal ends it
    proc = subprocess.Popen(
        [sys.executable, "-m", "fair_core.cli", "run", str(config), "--run-dir", str(tmp_path / "run"), "--quiet"],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT as a terminal sends it (a background job starts with it ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    mark = tmp_path / "blocking"
    while not mark.exists() and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(sig)
    stderr = proc.communicate(timeout=600)[1]
    assert proc.returncode == code, stderr[-2000:]
    assert stderr.strip().splitlines() == ["fair: error: interrupted: rerun the same command to resume"], stderr
    stages = json.loads(fair("report", tmp_path / "run", "--json").stdout)["stages"]
    assert [s["status"] for s in stages] == ["interrupted"]
