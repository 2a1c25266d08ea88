"""``fair estimate``: what a committee will cost, before anything is paid.

The calls counted are the very requests the committee stages would send: each committee
stage's declared ``jobs`` (explain's, solve's, review's, a plugin's) run, in pipeline order,
against a scratch copy of the run's store (the run dir is only read). What each call would store
is added to the copy, with its text empty, as it would be, so review's requests follow the
configured assignment, samples and review_feedback exactly; the tokens of those unwritten texts
are added to the prompts that quote them (a stage's ``Purpose.quotes``).

Per teacher and purpose: prompt tokens are counted on the rendered prompts by the teacher's
backend (litellm's tokenizer for a model in its price map), else at 4 characters a token, and
scaled to what the provider counted in the prompts the run dir already sent, where it has some;
completion tokens are the mean measured on calls the run dir already answered, else a typical
length, never above the teacher's ``max_tokens``; and the cost is the teacher's price, as the
gateway charges it during a run (``teachers.NAME.price``, else the backend's own). The range runs
from that estimate (low) to every answer running to ``max_tokens`` (high), which is also what the
gateway reserves against the budget.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections import defaultdict
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from . import config as cfg
from .config import RunConfig
from .errors import ConfigError, FairError
from .gateway import prices
from .gateway.backend import Completion
from .host import Host
from .runs.records import Mistake, Writing
from .runs.rundir import Run, changed_keys, redo_from
from .runs.store import Store, copy_store
from .stages import PIPELINE, Context, Pipeline, examine
from .stages.base import Jobs, Purpose

PILOT_PROMPTS = 200  # a pilot's prompts per teacher re-counted to scale the prompt count to its provider's
DEFAULT_MAX_TOKENS = 512  # what the gateway assumes of a teacher that sets no max_tokens
ASSUMED_ACCURACY = 0.5


def __getattr__(name: str) -> Any:
    """The tables this module once kept, derived from the built-in stages' declarations: PURPOSES,
    JOBS (committee stage -> its jobs), TYPICAL (purpose -> completion tokens assumed) and
    UNWRITTEN (purpose -> (the kind of writing it quotes, whether it quotes the student))."""
    purposes = PIPELINE.purposes()
    derived = {
        "PURPOSES": lambda: tuple(purposes),
        "JOBS": lambda: committee(PIPELINE),
        "TYPICAL": lambda: {p.name: p.typical for p in purposes.values()},
        "UNWRITTEN": lambda: {p.name: (p.quotes, p.student) for p in purposes.values() if p.quotes or p.student},
    }
    if name not in derived:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return derived[name]()


def committee(pipeline: Pipeline) -> dict[str, Jobs]:
    """The stages that call teachers, with their jobs, in pipeline order."""
    return {s.name: s.jobs for s in pipeline if s.jobs is not None}


def estimate(
    config: RunConfig,
    host: Host,
    run_dir: Path | None = None,
    mistakes: int | None = None,
    accuracy: float | None = None,
    pilot: Path | None = None,
) -> dict:
    """The estimate as a plain dict (what ``--json`` prints). ``run_dir``: this config's run (only
    the calls it still has to make are counted) or a pilot run of another config (its answered
    calls only measure answer lengths). ``pilot``: any run dir, finished or not, of any config,
    whose answered calls measure answer lengths instead (``run_dir`` then only says what is left).
    ``mistakes`` / ``accuracy`` replace the assumed mistake count when the mistakes are not known
    (no task.mistakes_file, no examined round 0)."""
    from .runner import Runner

    store = Path(run_dir) / "run.sqlite" if run_dir else None
    pipeline = host.pipeline
    pipeline.check(config.stages)
    if pilot is not None and not (Path(pilot) / "run.sqlite").is_file():
        raise FairError(f"--pilot {pilot} holds no run (no run.sqlite): pass a run directory whose committee ran")
    assumptions: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="fair-estimate-") as tmp,
        ExitStack() as stack,
        _env("LITELLM_OFFLINE_MODE", "true"),
    ):  # count with bundled tokenizers: never download one
        measured: dict = {"completion": {}, "prompts": {}, "accuracy": None}
        resumed = False
        if store is not None and store.is_file():
            resumed = _same_run(store.parent, config, pipeline)
            snapshot = Path(tmp) / "snapshot.sqlite"
            if resumed or pilot is None:  # a copy only where it is counted from or measured
                _copy(store, snapshot)
            measured = _measure(snapshot, config) if pilot is None else measured
            if resumed:
                (Path(tmp) / "run").mkdir()
                os.replace(snapshot, Path(tmp) / "run" / "run.sqlite")
                assumptions.append(f"resumes {run_dir}: only the calls it has not made yet are counted")
            elif pilot is None:
                assumptions.append(
                    f"{run_dir} is a run of another config: its answered calls only measure how long the answers are"
                )
        if pilot is not None:
            _copy(Path(pilot) / "run.sqlite", Path(tmp) / "pilot.sqlite")
            measured = _measure(Path(tmp) / "pilot.sqlite", config)
            assumptions.append(f"pilot {pilot}: its answered calls measure how long the answers are")

        def scratch(name: str) -> Runner:
            run = Run(Path(tmp) / name, config)
            stack.callback(run.close)
            return Runner(run, host)

        runner = scratch("run")
        ctx, backends = runner.context(0), runner.backends
        assumed = _mistakes(ctx, mistakes, accuracy, measured["accuracy"], assumptions)
        purposes = pipeline.purposes()
        expected = _expected(config, purposes, measured["completion"], assumptions)
        student = config.student.max_new_tokens // 2  # an assumed mistake's wrong answer, in tokens
        counted: dict[str, str] = {}
        scale = _scale(backends, measured["prompts"], assumptions)
        lines = _project(ctx, pipeline, backends, expected, assumed, student, counted, scale)
        if config.rounds > 1:
            full = lines
            if resumed:  # a later round is a whole round: count round 0 again from its mistakes alone
                fresh = scratch("full").context(0)
                fresh.store.add_mistakes(ctx.store.mistakes(0))
                full = _project(fresh, pipeline, backends, expected, assumed, student, counted, scale)
            later = config.rounds - 1
            lines = {
                key: (
                    lines.get(key, (0, 0))[0] + later * full.get(key, (0, 0))[0],
                    lines.get(key, (0, 0))[1] + later * full.get(key, (0, 0))[1],
                )
                for key in lines.keys() | full.keys()
            }
            assumptions.append(
                f"rounds = {config.rounds}: each round after the first is assumed to have as "
                f"many mistakes as round 0 (the trained student likely makes fewer)"
            )
        stages = committee(pipeline)
        if not set(stages) & set(pipeline.ordered(config.stages)):
            assumptions.append(f"stages include no committee stage ({', '.join(stages)}): no teacher is called")
        count = ctx.store.count_mistakes(0)
    return _result(config, list(purposes), backends, lines, expected, counted, count, assumptions)


@contextmanager
def _env(name: str, value: str):
    """``name`` set to ``value`` unless the user set it, for the block only."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


def _copy(path: Path, to: Path) -> None:
    """A snapshot of a store (a live run may be writing it); a damaged one is one line."""
    try:
        copy_store(path, to)
    except sqlite3.DatabaseError as e:
        raise FairError(f"{path} cannot be read ({e}): estimate without --run-dir, or fix the run dir") from None


def _measure(db: Path, config: RunConfig) -> dict:
    """From a run's answered calls, for teachers of the same name and model here: mean completion
    tokens per (teacher, purpose), and per teacher up to PILOT_PROMPTS prompts with the tokens its
    provider counted in them; and round 0's train accuracy if the student was examined."""
    models = {t.name: t.model for t in config.teachers}
    store = Store(db, check=False, readonly=True)
    try:
        completion = {
            (t, p): (mean, n) for (t, m, p), (mean, n) in store.completion_means().items() if models.get(t) == m
        }
        prompts: dict[str, list] = defaultdict(list)  # a request is the gateway's [identity, messages, sample]
        for t, m, body, n in store.counted_prompts(PILOT_PROMPTS):
            if models.get(t) == m:
                prompts[t].append((tuple(json.loads(body)[1]), n))
        accuracy = store.accuracy(0, "train", "before")
    finally:
        store.close()
    return {"completion": completion, "prompts": dict(prompts), "accuracy": accuracy}


def _same_run(run_dir: Path, config: RunConfig, pipeline: Pipeline) -> bool:
    """Whether ``fair run`` of ``config`` would resume ``run_dir`` with the requests stored there
    (a changed threshold or policy redoes a later stage, but asks no teacher anything new)."""
    saved = run_dir / "config.toml"
    try:
        return not saved.is_file() or all(redo_from(k, pipeline) for k in changed_keys(cfg.load(saved), config))
    except ConfigError:
        return False


def _mistakes(
    ctx: Context, count: int | None, accuracy: float | None, measured: tuple | None, assumptions: list[str]
) -> set[str]:
    """Put round 0's mistakes in the scratch store, as the run would have them. Returns the ids of
    assumed ones (stand-ins with no student answer yet): none when they are the real ones."""
    config, store = ctx.config, ctx.store
    held = store.count_mistakes(0)
    if held:
        assumptions.append(f"mistakes: the {held} round 0 mistakes the run dir holds")
        return set()
    if config.task.mistakes_file:
        n = examine.load_paper_mistakes(ctx)
        limit = f" (the first task.train_limit = {config.task.train_limit})" if config.task.train_limit else ""
        assumptions.append(f"mistakes: {n} from task.mistakes_file{limit}")
        return set()
    train = examine.train_items(ctx)
    if count is None:
        if accuracy is not None:
            acc, said = accuracy, "--accuracy"
        elif measured is not None:
            acc, said = measured[0], f"measured on {measured[1]} examined train items"
        else:
            acc, said = ASSUMED_ACCURACY, "assumed; --accuracy A or --mistakes N to change it"
        count = round(len(train) * (1 - acc))
        assumptions.append(
            f"ASSUMED mistakes: {count} = {len(train)} train items x (1 - student accuracy {acc:.2f}, {said})"
        )
    elif count > len(train):
        raise FairError(f"--mistakes {count} is more than the {len(train)} train items: give at most {len(train)}")
    else:
        assumptions.append(f"ASSUMED mistakes: {count} (--mistakes)")
    picked = [train[i * len(train) // count] for i in range(count)]  # spread over the split
    store.add_mistakes(Mistake(0, p.id, p.question, p.gold, "", None, {"hint": ctx.task.hint(p)}) for p in picked)
    assumptions.append(
        f"ASSUMED each wrong student answer is {config.student.max_new_tokens // 2} tokens (half "
        f"student.max_new_tokens), on questions like {count} spread over the train items"
    )
    return {p.id for p in picked}


def max_tokens(teacher) -> int:
    return int(teacher.params.get("max_tokens", DEFAULT_MAX_TOKENS))


def _expected(
    config: RunConfig, purposes: dict[str, Purpose], measured: dict, assumptions: list[str]
) -> dict[tuple[str, str], float]:
    """Completion tokens per call, per (teacher, purpose): measured, else typical, capped at max_tokens."""
    expected = {
        (t.name, p): measured[(t.name, p)][0] if (t.name, p) in measured else min(purpose.typical, max_tokens(t))
        for t in config.teachers
        for p, purpose in purposes.items()
    }
    for t in config.teachers:
        if "max_tokens" not in t.params:
            assumptions.append(
                f"teacher {t.name} sets no params.max_tokens: {DEFAULT_MAX_TOKENS} assumed for the "
                f"high end (the provider's own limit may be higher)"
            )
    if measured:
        said = ", ".join(f"{t} {p} {mean:.0f} ({n} calls)" for (t, p), (mean, n) in sorted(measured.items()))
        assumptions.append(f"completion tokens measured on the run dir's answered calls: {said}")
    if len(measured) < len(expected):
        assumptions.append(
            "completion tokens not measured are typical lengths: "
            + ", ".join(f"{p} {purpose.typical}" for p, purpose in purposes.items())
            + " (capped at max_tokens)"
        )
    return expected


def _scale(backends: dict, prompts: dict[str, list], assumptions: list[str]) -> dict[str, float]:
    """Per teacher, what its provider counted in a run's prompts over what :func:`_tokens` counts
    in them: the prompt count of a model with no known tokenizer (4 characters a token) is then
    its provider's, and a chat template's tokens are in it."""
    scale = {}
    for teacher, measured in prompts.items():
        ours = sum(_tokens(backends[teacher], messages, {}) for messages, _ in measured)
        if ours:
            scale[teacher] = sum(n for _, n in measured) / ours
    if scale:
        said = ", ".join(f"{t} x{x:.2f} ({len(prompts[t])} prompts)" for t, x in sorted(scale.items()))
        assumptions.append(f"prompt tokens scaled to what the provider counted in the run's prompts: {said}")
    return scale


def _project(
    ctx: Context,
    pipeline: Pipeline,
    backends: dict,
    expected: dict,
    assumed: set[str],
    student: int,
    counted: dict[str, str],
    scale: dict[str, float],
) -> dict[tuple[str, str], tuple[int, int]]:
    """(calls, prompt tokens) per (teacher, purpose) of the committee stages this config runs,
    in order; what each stage's calls would store is added to the scratch store, its texts
    empty, before the next stage lists its calls."""
    lines: dict[tuple[str, str], tuple[int, int]] = defaultdict(lambda: (0, 0))
    purposes = pipeline.purposes()
    # (item, kind, author) -> its tokens; a request that quotes no writing looks up kind None
    unwritten: dict[tuple[str, str | None, str | None], float] = {}
    for stage, jobs in committee(pipeline).items():
        if stage not in pipeline.ordered(ctx.config.stages):
            continue
        written = []
        for teacher, make in jobs(ctx):
            request, records = make()
            purpose = purposes.get(request.purpose)
            quoted, quotes_student = (purpose.quotes, purpose.student) if purpose else (None, False)
            extra = (student if quotes_student and request.item_id in assumed else 0) + unwritten.get(
                (request.item_id, quoted, request.meta.get("author")), 0
            )
            calls, tokens = lines[(teacher, request.purpose)]
            lines[(teacher, request.purpose)] = (
                calls + 1,
                tokens
                + round(_tokens(backends[teacher], request.messages, counted) * scale.get(teacher, 1.0))
                + round(extra),
            )
            for record in records(""):
                written.append(record)
                if isinstance(record, Writing):
                    expected_tokens = expected.get((teacher, request.purpose), 0)
                    unwritten[(record.item_id, record.kind, record.author)] = expected_tokens
        ctx.store.add_records(written)
    return lines


def _tokens(backend, messages: tuple[dict, ...], counted: dict[str, str]) -> int:
    """The backend's count of the prompt, else 4 characters a token (and 4 a message, for its role)."""
    n = backend.count_tokens(messages)
    counted[backend.config.name] = "chars/4" if n is None else "tokenizer"
    return n if n is not None else sum(len(m.get("content") or "") + 16 for m in messages) // 4


def _result(
    config: RunConfig,
    purposes: list[str],
    backends: dict,
    lines: dict,
    expected: dict,
    counted: dict,
    mistakes: int,
    assumptions: list[str],
) -> dict:
    """Per teacher and in total: calls, tokens, and dollars as each backend prices them."""
    per_teacher = {}
    for t in config.teachers:
        mine = {p: lines[(t.name, p)] for p in purposes if lines.get((t.name, p), (0, 0))[0]}
        prompt = sum(tokens for _, tokens in mine.values())
        completion = round(sum(calls * expected[(t.name, p)] for p, (calls, _) in mine.items()))
        completion_high = sum(calls for calls, _ in mine.values()) * max_tokens(t)
        backend = backends[t.name]
        low = prices.cost(backend, Completion("", prompt, completion))
        high = prices.cost(backend, Completion("", prompt, completion_high))
        per_teacher[t.name] = {
            "backend": t.backend,
            "model": t.model,
            "calls": {p: calls for p, (calls, _) in mine.items()},
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "completion_tokens_high": completion_high,
            "usd": round(low or 0.0, 6),
            "usd_low": round(low or 0.0, 6),
            "usd_high": round(high or 0.0, 6),
            "priced": low is not None,
            "tokens_counted_by": counted.get(t.name, "-"),
            "note": _note(backend, config.committee.budget_usd is not None),
        }
    total = lambda key: round(sum(x[key] for x in per_teacher.values()), 6)  # noqa: E731
    result = {
        "total_usd": total("usd"),
        "total_usd_low": total("usd_low"),
        "total_usd_high": total("usd_high"),
        "calls": sum(sum(x["calls"].values()) for x in per_teacher.values()),
        "prompt_tokens": total("prompt_tokens"),
        "completion_tokens": total("completion_tokens"),
        "mistakes": mistakes,
        "rounds": config.rounds,
        "per_teacher": per_teacher,
        "purposes": [p for p in purposes if any(p in t["calls"] for t in per_teacher.values())],
        "budget_usd": config.committee.budget_usd,
        "unpriced": [t.name for t in config.teachers if prices.unpriced(backends[t.name])],
        "assumptions": assumptions,
    }
    if config.committee.budget_usd is not None:
        result["fits_budget"] = result["total_usd"] <= config.committee.budget_usd
        result["fits_budget_high"] = result["total_usd_high"] <= config.committee.budget_usd
    return result


def _note(backend, budget: bool) -> str:
    """Why a teacher costs nothing, when it does: from its price, as the run charges it, not from
    what is left to pay (a finished run's teachers cost nothing more, and are still priced)."""
    t = backend.config
    unit = prices.cost(backend, prices.MILLION)
    if unit is None and not backend.local():
        so = "the run would refuse to start with committee.budget_usd set" if budget else "it is counted as $0"
        return prices.unpriced_line(backend, so)
    if unit is None:
        where = "a local server" if t.backend == "litellm" else f"the {t.backend} backend"
        return f"no price, counted as $0: {where} bills nothing (set teachers.{t.name}.price if it does)"
    if unit == 0:
        return "priced at $0 by " + (f"teachers.{t.name}.price" if t.price else "litellm's price map (a local model)")
    return ""


def render(est: dict) -> None:
    """The estimate as a table, a total line, the budget's verdict, and what it assumed."""
    import sys

    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 120)  # a log keeps whole rows
    teachers = est["per_teacher"]
    purposes = est["purposes"]
    table = Table(
        "teacher",
        "model",
        *purposes,
        "prompt tok",
        "completion tok",
        "$ estimate",
        "$ high",
        title="Estimated committee cost (calls per purpose)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for name, t in teachers.items():
        table.add_row(
            name,
            t["model"],
            *(str(t["calls"].get(p, 0)) for p in purposes),
            f"{t['prompt_tokens']:,}",
            f"{t['completion_tokens']:,}",
            f"{t['usd']:.4f}",
            f"{t['usd_high']:.4f}",
        )
    console.print(table)
    say = lambda text: console.print(text, markup=False, soft_wrap=True)  # noqa: E731
    say(
        f"total: {est['calls']:,} calls on {est['mistakes']} mistakes x {est['rounds']} round(s): "
        f"${est['total_usd']:.4f} (range ${est['total_usd_low']:.4f} - ${est['total_usd_high']:.4f}; the high "
        f"end if every answer runs to max_tokens)"
    )
    budget = est["budget_usd"]
    if budget is not None:
        say(
            f"committee.budget_usd ${budget:g}: "
            + (
                f"the run would refuse to start: {', '.join(est['unpriced'])} without a price (see below)"
                if est["unpriced"]
                else "fits, even at the high end"
                if est["fits_budget_high"]
                else "fits at the estimate, not at the high end"
                if est["fits_budget"]
                else "does not fit: the run would stop at it (exit 4)"
            )
        )
    for name, t in teachers.items():
        if t["note"]:
            say(f"  {name}: {t['note']}")
    say("assumptions:")
    for line in est["assumptions"]:
        say(f"  - {line}")
