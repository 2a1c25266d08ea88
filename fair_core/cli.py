"""The ``fair`` command: thin argparse front over the engine, with lazy imports.

User mistakes (:class:`FairError`) print one line and exit 2; everything heavy is imported
inside the command that needs it, so ``fair --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

from . import __version__, logs
from .errors import FairError
from .host import get_host, one_line
from .inert import inert
from .redact import shown
from .runs.disk import DiskFull, is_full


def _err(msg: str) -> None:
    """The last line: it may quote a provider, a dataset or a plugin, so no escape sequence and no
    known key reaches the terminal (or a CI log) through it."""
    print(f"fair: error: {shown(msg)}", file=sys.stderr)


def _positive(text: str) -> int:
    """argparse type: a whole number >= 1 (a limit of 0 or -1 means nothing a user wants)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be: a run stops the same way, and exits 143."""


def _terminate(signum, frame) -> None:
    raise Terminated


# commands ------------------------------------------------------------------------------------
# each command is two functions side by side: add_NAME declares its arguments (COMMANDS lists the
# add_ functions), cmd_NAME handles it
def add_plugins(sub) -> None:
    p = sub.add_parser("plugins", help="list the loaded plugins and what they register")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=cmd_plugins)


def cmd_plugins(args) -> int:
    infos = [p.as_dict() for p in get_host().plugins]
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("plugin", "version", "status", "hooks", "registered, or why not")
    for p in infos:
        what = "; ".join(f"{k}: {', '.join(v)}" for k, v in p["registered"].items())
        status = "ok" if p["status"] == "ok" else f"[red]{inert(p['status'], markup=True)}[/]"
        cells = (p["name"], p["version"] or "-", ", ".join(p["hooks"]), what or p["error"] or "")
        name, version, hooks, said = (inert(cell, markup=True) for cell in cells)
        table.add_row(name, version, status, hooks, said)
    Console().print(table)
    return 0


def _task_config(named: str, data_dir: str | None = None, overrides: list[str] | None = None):
    """The [task] that ``named`` means: a task's name, or a run config whose [task] reads your own data."""
    from .config import TaskConfig, load

    if named.endswith(".toml") or Path(named).is_file():
        task = load(named, overrides or ()).task
        return task.model_copy(update={"data_dir": data_dir}) if data_dir else task
    return TaskConfig(name=named, data_dir=data_dir)


def add_data(sub) -> None:
    p = sub.add_parser("data", help="load a task's train and test splits and show a few items")
    p.add_argument("task", help="a task name (see `fair plugins`), or a run config whose [task] reads your own data")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. task.seed=1")
    p.add_argument("--data-dir", help="folder with the upstream files (default: $FAIR_DATA_DIR)")
    p.add_argument("--show", type=int, default=2, help="items to show per split")
    p.set_defaults(handler=cmd_data)


def cmd_data(args) -> int:
    task_config = _task_config(args.task, args.data_dir, args.set)
    task = get_host().task(task_config)
    kind = getattr(task, "kind", None)
    print(
        inert(f"task {task_config.name}" + (f", answers read as {kind}" if kind else "") + f", licence {task.license}")
    )
    for split in ("train", "test"):
        problems = task.load(split)
        print(f"{task_config.name} {split}: {len(problems)} items")
        for p in problems[: args.show]:
            print(inert(f"  [{p.id}] {p.question[:100]!r} -> {p.gold}"))
    return 0


EXIT_CODES = """exit status:
  0    every stage asked for is done
  2    bad input (config, data, plugin, run dir): the message names it and the fix
  3    failed calls, a stage not done or a full disk: rerun the same command to retry them
  4    stopped by committee.budget_usd: raise it and rerun to go on
  130  interrupted (Ctrl-C), 143 terminated (SIGTERM): rerun to resume"""


def add_run(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run (or resume) the FAIR pipeline from a TOML config",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("config", help="the run's TOML config (see configs/)")
    p.add_argument("--run-dir", help="where the run lives (default: runs/<config name>)")
    p.add_argument("--stages", help="comma-separated subset: examine,explain,solve,review,compile,train,evaluate")
    p.add_argument("--rounds", type=_positive, help="number of FAIR rounds")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. train.alpha=0.3")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--events",
        metavar="PATH",
        help="also write every event as a JSON line to PATH; '-' for "
        "stdout, which then holds nothing else (see docs/events.md)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the committee's cost estimate (as `fair estimate` does) and run nothing",
    )
    p.set_defaults(handler=cmd_run)


def cmd_run(args) -> int:
    with _event_stream(args.events) as stream:
        return _run(args, stream)


@contextlib.contextmanager
def _event_stream(target: str | None):
    """The JSONL sink ``--events`` asks for, if any: ``-`` is stdout, which then carries the events
    alone (the report and any print go to stderr, so a CI step can pipe it); a path is appended to."""
    from .runs.events import JsonlSink

    if target is None:
        yield None
    elif target == "-":
        stream = JsonlSink(sys.stdout)
        with contextlib.redirect_stdout(sys.stderr):
            yield stream
    else:
        try:
            stream = JsonlSink(target)
        except OSError as e:
            raise FairError(
                f"--events {target}: cannot write it ({e.strerror}): pass a writable file, or - for stdout"
            ) from None
        try:
            yield stream
        finally:
            stream.close()


def _run(args, stream) -> int:
    from . import api
    from .console import ConsoleSink
    from .results.report import build, render
    from .runs.events import Event
    from .runs.rundir import default_run_dir

    overrides = list(args.set or [])
    if args.rounds:
        overrides.append(f"rounds={args.rounds}")
    # the stages this invocation runs: not written into the run's config, which keeps its own list
    stages = None if args.stages is None else [s.strip() for s in args.stages.split(",") if s.strip()]
    if Path(args.config, "config.toml").is_file():
        raise FairError(
            f"{args.config} is a run directory: resume it with "
            f"`fair run {Path(args.config, 'config.toml')} --run-dir {args.config}`"
        )
    path = Path(args.run_dir or default_run_dir(args.config))
    if args.dry_run:  # the estimate alone, of the stages asked for: no key needed, nothing written, no call made
        asked = [] if stages is None else ["stages=" + json.dumps(stages)]
        return _estimate(api.load_config(args.config, overrides + asked), get_host(), path)
    config = api.load_config(args.config, overrides)
    if threading.current_thread() is threading.main_thread():  # a job scheduler's stop: as Ctrl-C
        signal.signal(signal.SIGTERM, _terminate)
    sinks = [s for s in (ConsoleSink(quiet=args.quiet), stream) if s]

    def on_event(e: Event) -> None:
        for sink in sinks:
            sink(e)

    with sinks[0]:
        outcome = api.run(config, path, stages, on_event=on_event)
    if not outcome.ran:
        print("fair: nothing to run: every stage asked for is done", file=sys.stderr)
    render(build(path), args.quiet)
    print(f"outputs: {path}")
    if outcome.advice:
        _err(outcome.advice)
    return outcome.code


def add_estimate(sub) -> None:
    p = sub.add_parser(
        "estimate", help="estimate the committee's calls, tokens and cost before paying (see docs/estimate.md)"
    )
    p.add_argument("config", help="the run's TOML config (see configs/)")
    p.add_argument(
        "--run-dir",
        help="this config's run, to count only what it has left, or a pilot run whose "
        "answered calls measure answer lengths (default: runs/<config name>)",
    )
    p.add_argument(
        "--pilot",
        type=Path,
        metavar="DIR",
        help="any run dir, finished too, whose answered calls measure answer lengths (instead of --run-dir's)",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, as `fair run` does")
    p.add_argument(
        "--mistakes",
        type=_positive,
        metavar="N",
        help="assume N mistakes (when neither task.mistakes_file nor an examined run says how many)",
    )
    p.add_argument(
        "--accuracy",
        type=_share,
        metavar="A",
        help="assume the student gets a share A of the train "
        "items right (default: measured in --run-dir if it examined, else 0.5)",
    )
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=cmd_estimate)


def cmd_estimate(args) -> int:
    from . import config as cfg
    from .runs.rundir import default_run_dir

    config = cfg.load(args.config, list(args.set or []))
    return _estimate(
        config,
        get_host(),
        Path(args.run_dir or default_run_dir(args.config)),
        args.mistakes,
        args.accuracy,
        args.json,
        args.pilot,
    )


def _estimate(
    config,
    host,
    run_dir: Path,
    mistakes: int | None = None,
    accuracy: float | None = None,
    as_json: bool = False,
    pilot: Path | None = None,
) -> int:
    from .estimate import estimate, render

    est = estimate(config, host, run_dir, mistakes, accuracy, pilot)
    if as_json:
        print(json.dumps(est, indent=2))
    else:
        render(est)
    return 0


def _share(text: str) -> float:
    """argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number from 0 to 1")
    return value


def add_import_paper(sub) -> None:
    p = sub.add_parser("import-paper", help="load the FAIR paper's released JSON into a run")
    p.add_argument("--run", required=True, help="run directory to fill (created when missing)")
    p.add_argument("--task", help="task name (default: read from the file names)")
    p.add_argument("files", nargs="+", help="*_false_round0.json, *_feedback_round0.json, *_rationale_round0.json")
    p.add_argument("--merge", action="store_true", help="add to a run that already holds other committee records")
    p.set_defaults(handler=cmd_import_paper)


def cmd_import_paper(args) -> int:
    from .config import TaskConfig
    from .paper import import_files, parse_name, read
    from .results.report import build, render
    from .runs.rundir import Run, RunLock
    from .stages.review import judge, scorer

    files = [Path(f) for f in args.files]
    for f in files:  # every file named and readable before the run dir is touched
        parse_name(f)
        read(f)
    host = get_host()
    task_name = args.task or parse_name(files[0])["task"].lower()
    task = host.task(TaskConfig(name=task_name))
    with RunLock(args.run):
        run = Run(args.run)
        try:
            held = sorted({w.author for w in run.store.writings(0)})
            before = (run.store.get_meta("paper") or {}).get("files", {})
            if held and not args.merge and sorted(before.values()) != sorted(f.name for f in files):
                raise FairError(
                    f"run {args.run} already holds committee records (teachers {', '.join(held)}): "
                    f"import into a new --run, or pass --merge to add these to them"
                )
            info = import_files(run.store, files, task.extract, scorer(host, run.config.committee))
            judge(run.store, info["round"], run.config.committee, host, task)
        finally:
            run.close()
    print(
        inert(
            f"imported {info['items']} items from {', '.join(info['files'])} "
            f"(teachers: {', '.join(info['teachers'])}) into {args.run}"
        )
    )
    render(build(Path(args.run)), quiet=False)
    return 0


def add_experiment(sub) -> None:
    p = sub.add_parser("experiment", help="run (or resume) the variants of an experiment config and compare them")
    p.add_argument("config", help="a run config with [[variants]] (see configs/ablation-svamp.toml)")
    p.add_argument("--dir", help="where the experiment lives (default: runs/<config name>)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=cmd_experiment)


def cmd_experiment(args) -> int:
    from contextlib import contextmanager

    from . import experiment
    from .console import ConsoleSink

    exp = experiment.load(args.config)
    root = Path(args.dir or Path("runs") / Path(args.config).stem)

    @contextmanager
    def watch(label, run):
        print(f"fair: {label}: {run.path}", file=sys.stderr)
        for line in run.changes:
            print(f"fair: {line}", file=sys.stderr)
        sink = ConsoleSink(quiet=args.quiet)
        run.bus.subscribe(sink)
        with sink:
            yield

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        result = experiment.run(exp, root, get_host(), watch, lambda line: print(f"fair: {line}", file=sys.stderr))
    except experiment.Unfinished as e:
        _err(str(e))
        return 3
    _print_experiment(result, root, args.json)
    return 0


def _print_experiment(result: dict, root: Path, as_json: bool) -> None:
    from . import experiment

    if as_json:
        print(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*experiment.headers(result), title=f"experiment {root}", title_justify="left")
    for row in experiment.table_rows(result):
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 120).print(table)  # a log keeps whole rows
    print(experiment.summary_line(result))
    print(f"outputs: {root / 'experiment.json'}, {root / 'experiment.png'}")


def add_export(sub) -> None:
    from .results.export import FORMATS

    p = sub.add_parser(
        "export",
        help="write a run's compiled training data for a trainer (hf, TRL, LLaMA-Factory), "
        "its committee data (paper JSON, JSONL), its split (see docs/exports.md), or its "
        "trained student as one model folder or GGUF with an Ollama Modelfile (see docs/use.md)",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--format", choices=list(FORMATS), default="paper")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--round", type=int, help="which round's (default: 0; merged and gguf: the last trained)")
    p.set_defaults(handler=cmd_export)


def cmd_export(args) -> int:
    from .results.export import export

    for path in export(Path(args.run), args.format, Path(args.out), args.round):
        print(path)
    return 0


def _run_student(args):
    from .use import RunStudent

    settings = {"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}
    return RunStudent(Path(args.run), args.round, **settings)


def add_chat(sub) -> None:
    p = sub.add_parser(
        "chat",
        help="talk to a run's trained student, asked as it was trained (see docs/use.md)",
        description="A prompt loop with a run's trained student: each line is one question, "
        "answered on its own in the task's student prompt. Ctrl-D ends it.",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--round", type=int, help="which round's student (default: the last trained)")
    p.add_argument("--prompt", metavar="TEXT", help="answer TEXT once, print it, exit")
    p.add_argument("--raw", action="store_true", help="send the text as it is, without the task's prompt")
    p.add_argument("--max-new-tokens", type=_positive, help="the answer's length limit (default: the run's)")
    p.set_defaults(handler=cmd_chat)


def cmd_chat(args) -> int:
    from .use import utf8

    if args.prompt is not None and not utf8(args.prompt, "--prompt").strip():
        raise FairError("--prompt is empty: pass the question to ask, or leave --prompt out to chat")
    with _run_student(args) as rs:
        if args.prompt is not None:
            print(inert(rs.answer([args.prompt], args.raw)[0]))
            return 0
        with contextlib.suppress(ImportError):  # line editing and history for input(), where there is readline
            import readline  # noqa: F401

        print(
            f"fair chat: {rs.task.name} student of {rs.path}, round {rs.round}"
            f"{' (raw)' if args.raw else ''}; one question a line, Ctrl-D to end",
            file=sys.stderr,
        )
        rs.student()  # loaded before the first question, not after it
        line = 0
        while True:
            line += 1
            try:
                text = input(">>> " if sys.stdin.isatty() else "")  # piped in: the answers alone
            except EOFError:
                print(file=sys.stderr)
                return 0
            if utf8(text, f"line {line} of the input").strip():
                output = rs.answer([text], args.raw)[0]
                print(inert(output))
                said = None if args.raw else rs.task.extract(output)
                if said is not None:
                    print(f"[answer: {inert(said)}]", file=sys.stderr)


def add_generate(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="answer a file of questions with a run's trained student, as JSON lines (resumable)",
        description="Answer each question of --input (a .jsonl file of objects with a "
        '"question" and an optional "id", or any other text file with one question a line) and '
        "append one JSON line per question to --out: id, question, output, answer (the "
        "final answer as the task reads it). A rerun skips the rows --out holds.",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--input", required=True, help="questions: .jsonl, or plain text one a line")
    p.add_argument("--out", dest="output", required=True, help="the JSONL file to append answers to")
    p.add_argument("--round", type=int, help="which round's student (default: the last trained)")
    p.add_argument("--raw", action="store_true", help="send each question as it is, without the task's prompt")
    p.add_argument("--max-new-tokens", type=_positive, help="the answer's length limit (default: the run's)")
    p.set_defaults(handler=cmd_generate)


def cmd_generate(args) -> int:
    from .use import generate

    with _run_student(args) as rs, _counter(f"generate {Path(args.input).name}") as tick:
        written, before = generate(rs, Path(args.input), Path(args.output), args.raw, tick)
    print(f"{written} answers written to {args.output}" + (f" ({before} were there already)" if before else ""))
    return 0


@contextlib.contextmanager
def _counter(label: str):
    """A ``tick(done, total)`` for a long job on stderr: rich's bar on a terminal, else a plain
    line every ``FAIR_PROGRESS_EVERY`` seconds at most (as a run's) and at the end, which a log
    file keeps."""
    import time

    from .console import progress_every

    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(label, total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)
        return
    start, first, last, every = time.monotonic(), -1, 0.0, progress_every()

    def tick(done: int, total: int) -> None:
        nonlocal first, last
        now = time.monotonic()
        if first < 0:
            first = done  # what an earlier run wrote does not count in the rate
        if done < total and now - last < every:
            return
        last = now
        new, spent = done - first, now - start
        pace = f", {new / spent:.2f}/s, ETA {(total - done) * spent / new:.0f} s" if new and done < total else ""
        print(f"fair: {label}: {done}/{total} ({spent:.0f} s{pace})", file=sys.stderr, flush=True)

    yield tick


def add_push(sub) -> None:
    p = sub.add_parser(
        "push",
        help="upload a run's dataset, LoRA adapter or merged model to the Hugging Face "
        "hub, with its card (needs network and a token: HF_TOKEN or `hf auth login`)",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--repo", required=True, metavar="OWNER/NAME", help="the hub repo (created when missing)")
    p.add_argument(
        "--what",
        choices=["dataset", "adapter", "model"],
        default="dataset",
        help="dataset: the hf export; adapter: rounds/N/adapter; model: rounds/N/merged",
    )
    p.add_argument("--round", type=int, help="which round's (default: the last that has it)")
    p.add_argument("--public", action="store_true", help="make a new repo public (default: private)")
    p.set_defaults(handler=cmd_push)


def cmd_push(args) -> int:
    from .results.hub import push

    print(push(Path(args.run), args.repo, args.what, args.public, args.round))
    return 0


def add_report(sub) -> None:
    p = sub.add_parser(
        "report", help="print a run's report (acceptance, agreement, cost, accuracy), or an experiment's comparison"
    )
    p.add_argument("run", help="run directory, or an experiment's folder")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=cmd_report)


def cmd_report(args) -> int:
    from . import experiment
    from .results.report import build, render

    if experiment.is_experiment(Path(args.run)):
        result = experiment.read_result(Path(args.run))
        if result is None:
            raise FairError(
                f"experiment {args.run} has not finished yet: run `fair experiment CONFIG --dir {args.run}`"
            )
        _print_experiment(result, Path(args.run), args.json)
        return 0
    report = build(Path(args.run))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        render(report, quiet=False)
    return 0


def add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate any student model on a task's split")
    p.add_argument("--student", required=True, help="hub id, local folder, GGUF file, or 'smollm2'")
    p.add_argument("--task", help="a task name, or a run config whose [task] reads your own data")
    p.add_argument(
        "--references",
        help="a run directory: score its teachers' rationales teacher-forced (mean log-prob per token), no generation",
    )
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--limit", type=_positive, help="only the first N items")
    p.add_argument("--adapter", help="a LoRA adapter folder to load on top")
    p.add_argument("--max-new-tokens", type=_positive, default=256)
    p.set_defaults(handler=cmd_eval)


def cmd_eval(args) -> int:
    from .results.evaluate import evaluate_model, score_references
    from .results.likelihood import METRICS
    from .stats import describe, describe_score
    from .student import local_adapter

    if (args.task is None) == (args.references is None):
        _err("fair eval needs one of --task (accuracy, by generating) or --references RUN (scores, no generation)")
        return 2
    adapter = local_adapter(args.adapter) if args.adapter else None  # a folder, or a pushed adapter's repo id
    if args.references:
        scored = score_references(get_host(), args.student, args.references, adapter)
        for name in METRICS:
            m = scored[name]
            print(f"{name} {describe_score(m['mean'], m['ci95'])} on {m['items']} items (95% CI)")
        print(f"of {scored['texts']} teacher rationales in {args.references} (references {scored['references']})")
        return 0
    task = _task_config(args.task)
    acc = evaluate_model(get_host(), args.student, task, args.split, args.limit, adapter, args.max_new_tokens)
    print(f"accuracy {describe(acc)} {task.name} {args.split} items (95% CI), {acc['correct']} correct")
    return 0


COMPLETION_SHELLS = ("bash", "zsh", "fish")
# Arguments (by dest) that name a path: completion offers files or folders for them.
PATH_ARGS = {
    "config": "FILE",
    "files": "FILE",
    "run": "DIRECTORY",
    "run_dir": "DIRECTORY",
    "dir": "DIRECTORY",
    "out": "DIRECTORY",
    "data_dir": "DIRECTORY",
    "adapter": "DIRECTORY",
    "references": "DIRECTORY",
    "events": "FILE",
    "target": "FILE",  # fair tui: a config, a run directory or a folder of runs
    "input": "FILE",
    "output": "FILE",
}


def add_completion(sub) -> None:
    p = sub.add_parser(
        "completion",
        help="print the shell completion script for bash, zsh or fish",
        description="Print a completion script; install it with e.g. "
        "`fair completion bash > ~/.local/share/bash-completion/completions/fair` "
        "(see README.md for zsh and fish).",
    )
    p.add_argument("shell", choices=COMPLETION_SHELLS)
    p.set_defaults(handler=cmd_completion)


def cmd_completion(args) -> int:
    import shtab

    parser = build_parser()  # plugins' commands included
    kinds = {"FILE": shtab.FILE, "DIRECTORY": shtab.DIRECTORY}
    # names offered where one is expected (the parser itself keeps accepting a config for `fair data`)
    names = {"task": get_host().names("tasks"), "stages": get_host().pipeline.names()}
    for action in _actions(parser):
        if action.dest in PATH_ARGS:
            action.complete = kinds[PATH_ARGS[action.dest]]
        elif action.dest in names:
            action.choices = names[action.dest]
    print(shtab.complete(parser, shell=args.shell))
    return 0


def _actions(parser: argparse.ArgumentParser):
    """Every argument of ``parser`` and of its subcommands."""
    for action in parser._actions:
        yield action
        if isinstance(action.choices, dict):  # the subcommands' parsers, by name
            for command in action.choices.values():
                yield from _actions(command)


# parser ----------------------------------------------------------------------------------------
# fair's own commands, in the order `fair --help` lists them (the plugins' follow)
COMMANDS = (
    add_plugins,
    add_data,
    add_run,
    add_estimate,
    add_experiment,
    add_import_paper,
    add_export,
    add_push,
    add_report,
    add_eval,
    add_completion,
    add_chat,
    add_generate,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fair", description="FAIR: distil reasoning from a committee of LLMs into a small model."
    )
    parser.add_argument("--version", action="version", version=f"fair {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    add_plugin_commands(sub)
    return parser


def add_plugin_commands(sub) -> None:
    """The plugins' commands, after fair's own. A plugin whose command takes the name of one of
    fair's, or whose ``configure`` fails, is unloaded with a warning: every other command works."""
    host = get_host()
    for name, entry in list(host.registry["commands"].items()):
        if name in sub.choices:
            host.unload(entry.plugin, "skipped", f"its command {name!r} is one of fair's own: rename it")
            continue
        try:  # on a scratch parser first: a failure leaves nothing half-added in fair's
            entry.obj.configure(argparse.ArgumentParser(prog=f"fair {name}"))
        except BaseException as e:  # noqa: BLE001 - the plugin's own code: anything may come out, even sys.exit()
            host.unload(entry.plugin, "error", f"its command {name!r} failed to configure: {one_line(e)}")
    for name, entry in host.registry["commands"].items():
        q = sub.add_parser(name, help=entry.obj.help)
        entry.obj.configure(q)
        q.set_defaults(handler=entry.obj.handler)


def main(argv: list[str] | None = None) -> int:
    # our own progress bars say what is happening; the libraries' would only interleave with them
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    warnings.filterwarnings("ignore", category=FutureWarning)  # libraries' notes to their developers
    args = None
    try:
        logs.configure()  # before the plugins load: their problems are logged as they are found
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "handler", None):
            parser.print_help()
            return 0
        return args.handler(args)
    except FairError as e:
        _err(str(e))
        return 2
    except DiskFull as e:
        _err(str(e))
        return 3  # as for a stage not done: the rerun resumes
    except OSError as e:  # a full disk where no writer says more (a config, a lock, an export)
        if not is_full(e):
            raise
        _err(str(DiskFull.at(e.filename, None)) if e.filename else "disk full: free some space, then rerun")
        return 3
    except KeyboardInterrupt as e:
        resumable = getattr(args, "handler", None) in (cmd_run, cmd_experiment, cmd_generate, cmd_import_paper)
        _err("interrupted" + (": rerun the same command to resume" if resumable else ""))
        return 143 if isinstance(e, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
