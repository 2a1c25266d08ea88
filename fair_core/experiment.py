"""Experiments: named variants of one base config, compared on the same items.

An experiment config is a run config plus an ``[experiment]`` table (``seeds``, ``base``,
``references``) and ``[[variants]]``, each a ``name``, an optional built-in ``ablation`` (see
ABLATIONS) and a ``set`` table of dotted overrides, optionally with its own ``seeds`` (each sets
``train.seed`` and ``committee.seed``: a replicate draws its rationales and trains anew). Round
0's committee (examine, explain, solve, review) runs once, in ``<dir>/committee``. Each variant's
run directory starts as a copy of it, and its run redoes round 0 from the first stage its changes
reach (fair_core.runs.rundir.REDO_FROM), reusing the stored teacher calls: a variant that differs only
after the committee (policy, threshold, compile, training) makes no new call. A variant that
changes the committee itself is refused. With ``references``, the teachers' rationales on held-out
items (``<dir>/references``) score every arm's student and the untrained one (fair_core.results.likelihood).
Every run directory resumes as a run does, so an experiment does.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any, Callable, ContextManager, Iterator

from pydantic import Field

from . import config as cfg
from .config import RunConfig, Strict
from .errors import FairError
from .results import likelihood
from .runs.rundir import REDO_FROM, changed_keys, first_output, redo_from, write_atomic
from .runs.splits import fingerprint
from .runs.store import StageStatus, Store, copy_store
from .stages import Pipeline
from .stats import (
    accuracy,
    bootstrap_ci,
    describe_score,
    interval,
    mcnemar,
    paired_permutation,
    seed_interval,
    welch,
)

# The paper's ablations, as overrides. single-teacher also keeps only its teacher's writings.
ABLATIONS: dict[str, dict[str, Any]] = {
    "fair": {},
    "no-review": {"committee.policy": "accept-all"},
    "size-matched": {"committee.selection": "size-matched"},  # no-review, as many pairs as review keeps
    "no-feedback": {"train.alpha": 0.0},
    "feedback-only": {"train.alpha": 1.0},
    "single-teacher": {"committee.policy": "accept-all"},
}
COPY_START = "experiment_seed"  # meta key (stored under this name): the calls and cost a variant's copy started with
SHARED = ("committee", "references", "untrained")  # folders and rows of the experiment's own
SCORES = "likelihood.json"  # in each run directory: its student's scores of the references
SHARE_POLL_S = 5.0  # how often a process waiting on runs that another holds looks again


class VariantConfig(Strict):
    name: str = Field(pattern=r"^[\w.-]+$")
    ablation: str | None = None
    teacher: str | None = None  # single-teacher's teacher
    set: dict[str, Any] = {}
    seeds: list[int] | None = None


class ExperimentConfig(Strict):
    seeds: list[int] | None = None  # for every variant without its own
    base: str | None = None  # the variant the others are tested against (default: the first)
    # Held-out references (fair_core.results.likelihood): the teachers' rationales on this many train
    # items after those the variants train on, scored under every arm's student and the untrained one
    references: int | None = Field(default=None, ge=1)


@dataclass(frozen=True)
class Arm:
    """One variant at one seed: one run directory."""

    variant: str
    seed: int | None
    config: RunConfig

    @property
    def folder(self) -> str:
        return self.variant if self.seed is None else f"{self.variant}-seed{self.seed}"


@dataclass(frozen=True)
class Experiment:
    base: RunConfig
    arms: list[Arm]
    variants: list[str]
    reference: str
    references: int | None = None


def load(path: str | Path) -> Experiment:
    """An experiment config, every variant validated as a run config before anything runs."""
    data = cfg.read(path)
    options = cfg.validate(data.pop("experiment", {}), ExperimentConfig, "experiment.")
    raw_variants = data.pop("variants", None)
    if not isinstance(raw_variants, list) or not raw_variants:
        raise FairError(
            f'{path} has no [[variants]]: add one table per variant, e.g. name = "fair" '
            f'and name = "no-review" with ablation = "no-review"'
        )
    base = cfg.validate(data)
    arms, names = [], []
    for i, raw in enumerate(raw_variants):
        v = cfg.validate(raw, VariantConfig, f"variants[{i}].")
        if v.name in names or v.name in SHARED:
            raise FairError(f"variant name {v.name!r} is used twice or reserved: give each variant its own name")
        names.append(v.name)
        overrides = dict(_ablation(v))
        overrides.update(v.set)
        for seed in v.seeds or options.seeds or [None]:
            raw_config = copy.deepcopy(data)
            for key, value in overrides.items():
                cfg.set_key(raw_config, key, value)
            if seed is not None:  # a seed is a replicate: which rationale each item gets, and training
                cfg.set_key(raw_config, "train.seed", seed)
                cfg.set_key(raw_config, "committee.seed", seed)
            config = cfg.validate(raw_config, RunConfig, f"variant {v.name!r}: ")
            arms.append(Arm(v.name, seed, config))
    shared = committee_config(base)
    for arm in arms:
        reaches = [k for k in changed_keys(shared, arm.config) if redo_from(k) is None]
        if reaches:
            raise FairError(
                f"variant {arm.variant!r} changes {reaches[0]}, which the shared committee depends on: "
                f"variants may differ only in {', '.join(REDO_FROM)}, stages and rounds"
            )
    reference = options.base or names[0]
    if reference not in names:
        raise FairError(f"experiment.base names {reference!r}, which is not a variant: use one of {', '.join(names)}")
    if options.references and not base.task.train_limit:
        raise FairError(
            "experiment.references holds out the train items after those trained on, but every one is "
            "trained on: set task.train_limit (say 120) to hold the rest out"
        )
    return Experiment(base, arms, names, reference, options.references)


def _ablation(v: VariantConfig) -> dict[str, Any]:
    if v.ablation is None:
        return {}
    if v.ablation not in ABLATIONS:
        raise FairError(f"variant {v.name!r}: unknown ablation {v.ablation!r}: use one of {', '.join(ABLATIONS)}")
    if (v.ablation == "single-teacher") != (v.teacher is not None):
        raise FairError(f'variant {v.name!r}: teacher = "NAME" goes with ablation = "single-teacher", and only there')
    extra = {"committee.distil_from": [v.teacher]} if v.teacher else {}
    return {**ABLATIONS[v.ablation], **extra}


# running ------------------------------------------------------------------------------------------
def committee_config(base: RunConfig) -> RunConfig:
    """The shared committee's run: round 0 of the base config."""
    return base.model_copy(update={"rounds": 1})


def done(path: Path, config: RunConfig, stages: list[str]) -> bool:
    """Whether ``stages`` are done in every round of the run in ``path``, with ``config`` (an
    edited variant is not done: its run redoes what the edit reaches)."""
    if not _whole(path) or changed_keys(cfg.load(path / "config.toml"), config):
        return False
    store = Store(path / "run.sqlite", readonly=True)
    try:
        return all(store.stage_status(r, s) == StageStatus.DONE for r in range(config.rounds) for s in stages)
    finally:
        store.close()


def _whole(path: Path) -> bool:
    """Whether ``path`` holds a run to resume: its config.toml (which :func:`copy_committee` writes last) and
    a store that is not missing, empty or left mid-copy (an older fair wrote a variant's config
    first, then copied the committee's store without a lock: a kill left a hot journal)."""
    db = path / "run.sqlite"
    return (
        (path / "config.toml").is_file()
        and db.is_file()
        and db.stat().st_size > 0
        and not db.with_name(db.name + "-journal").exists()
    )


def copy_committee(committee: Path, path: Path) -> None:
    """Make a variant's run directory a copy of the committee's, unless it holds a run already
    (or a round's outputs: Run judges a store missing beside them). The store is copied under a
    temporary name (SQLite's backup, consistent even with a WAL; the calls and cost it starts
    from noted) and renamed, then the config written: with the caller holding the run lock, a
    kill at any point leaves a directory that is copied again, never a half-made run."""
    if _whole(path) or first_output(path):
        return
    for name in ("run.sqlite", "run.sqlite.tmp"):  # what a cut copy left, the store itself first
        for end in ("", "-journal", "-wal", "-shm"):
            (path / f"{name}{end}").unlink(missing_ok=True)
    tmp = path / "run.sqlite.tmp"
    copy_store(committee / "run.sqlite", tmp)
    store = Store(tmp)
    try:
        calls, cost = store.calls_made()
        store.set_meta(COPY_START, {"calls": calls, "cost_usd": cost})
    finally:
        store.close()  # the last connection: its WAL is folded in and removed
    os.replace(tmp, path / "run.sqlite")
    write_atomic(path / "config.toml", (committee / "config.toml").read_text())


def references_config(exp: Experiment) -> RunConfig:
    """The references' run: the teachers' rationales (examine and solve only) on the
    ``experiment.references`` train items after those the variants train on."""
    t = exp.base.task
    task = t.model_copy(update={"train_offset": t.train_offset + (t.train_limit or 0), "train_limit": exp.references})
    return exp.base.model_copy(update={"rounds": 1, "task": task, "stages": ["examine", "solve"]})


def plan(exp: Experiment, root: Path, pipeline: Pipeline) -> list[tuple[str, Path, RunConfig, list[str]]]:
    """(label, run directory, config, stages run there) in order: the committee, the references'
    run where the experiment has one, then each arm. ``pipeline``: the host's (plugins' stages in)."""
    committee = committee_config(exp.base)
    shared = pipeline.names()[: pipeline.rank("compile")]  # what every variant shares: all before compile
    first = [s for s in pipeline.ordered(committee.stages) if s in shared]
    steps = [("committee", root / "committee", committee, first)]
    if exp.references:
        held_out = references_config(exp)
        steps.append(("references", root / "references", held_out, pipeline.ordered(held_out.stages)))
    return steps + [
        (
            a.variant + ("" if a.seed is None else f" (seed {a.seed})"),
            root / a.folder,
            a.config,
            pipeline.ordered(a.config.stages),
        )
        for a in exp.arms
    ]


def run(
    exp: Experiment,
    root: Path,
    host,
    watch: Callable[[str, Any], ContextManager],
    say: Callable[[str], None] = lambda line: None,
) -> dict:
    """Runs what is not done yet (the committee, the references, then each arm), scores the
    references under each arm's student, and writes the comparison. ``watch(label, run)`` wraps
    each run that has work left (a console sink, a UI's); a run left unfinished (failed calls, a
    partial stage) stops the experiment, resumable. ``say`` hears a line per scoring and per run
    left to another process: several processes on one experiment share its runs (each run is
    locked while one works on it), which on a CPU is faster than one process on every core."""
    from .runner import Runner, check
    from .runs.rundir import Run

    for arm in exp.arms:  # everything knowable wrong, before a call is paid for
        check(arm.config, host)

    def work(step: tuple[str, Path, RunConfig, list[str]]) -> bool:
        label, path, config, stages = step
        if done(path, config, stages):
            return True
        with _turn(path, label, say) as mine:
            if not mine:
                return False
            if label not in SHARED:
                copy_committee(root / "committee", path)
            r = Run(path, config)
            try:
                with watch(label, r):
                    Runner(r, host, stages).run()
            finally:
                r.close()
        if not done(path, config, stages):
            raise Unfinished(f"{label} did not finish (see `fair report {path}`): rerun the experiment to resume it")
        return True

    committee, *rest = plan(exp, root, host.pipeline)
    _share([committee], work)  # every arm starts from it
    _share(rest, work)
    if exp.references:
        measure(exp, root, host, say)
    result = compare(exp, root)
    write(result, root)
    return result


@contextlib.contextmanager
def _turn(path: Path, label: str, say: Callable[[str], None]) -> Iterator[bool]:
    """Holds the run's lock and yields True, or yields False (saying so) where another process holds it."""
    from .runs.rundir import RunInUse, RunLock

    with contextlib.ExitStack() as held:
        try:
            held.enter_context(RunLock(path))
        except RunInUse:
            say(f"{label}: another process is working on it; going on with the next")
            yield False
            return
        yield True


def _share(steps: list, work: Callable[[Any], bool]) -> None:
    """Does ``work`` on each step, coming back to those another process held until every one is
    done (by that process, or here if it let go unfinished)."""
    while steps := [s for s in steps if not work(s)]:
        time.sleep(SHARE_POLL_S)


class Unfinished(FairError):
    """A run of the experiment ended with failed calls or a stage not done: rerun to resume."""


def measure(exp: Experiment, root: Path, host, say: Callable[[str], None]) -> None:
    """The untrained student and each arm's trained one score the references
    (fair_core.results.likelihood), each once: the scores stay beside its run (SCORES) and a rerun with
    the same references reads them."""
    from .runner import Runner
    from .runs.rundir import Run

    refs = likelihood.read(root / "references", host.task(exp.base.task))

    def score(job: tuple[str, Path, bool]) -> bool:
        label, path, trained = job
        if likelihood.load(path / SCORES, refs) is not None:
            return True
        with _turn(path, label, say) as mine:
            if not mine:
                return False
            r = Run(path)
            runner = Runner(r, host, [])
            try:
                student = runner.load_student(r.config.rounds - 1 if trained else 0, trained)
                say(f"{label}: scoring {len(refs)} held-out references ({len({x.item_id for x in refs})} items)")
                scored = likelihood.score(student, refs)
            finally:
                runner.release_student()
                r.close()
            write_atomic(path / SCORES, json.dumps(scored) + "\n")
        return True

    _share([("untrained", root / "committee", False)] + [(a.folder, root / a.folder, True) for a in exp.arms], score)


# comparing ----------------------------------------------------------------------------------------
def compare(exp: Experiment, root: Path) -> dict:
    """The table: per variant and measure (the references' rationale score and margin where the
    experiment has references; accuracy where the arms were evaluated), the mean on the items
    every arm has, its 95% interval and a test against the reference variant, with the calls and
    cost its own runs added to the shared committee's. With two seeds or more on both sides the
    seeds are the unit (per-seed means, a t interval, Welch's test), so training's noise is inside
    the interval; otherwise the test is over items and says so ("items only")."""
    values: dict[str, dict[str, dict[str, float]]] = {}  # measure -> run folder -> item -> value
    spend: dict[str, tuple[int, float]] = {}
    before: dict[str, bool] = {}
    for arm in exp.arms:
        store = Store(root / arm.folder / "run.sqlite", readonly=True)
        try:
            attempts = store.attempts(arm.config.rounds - 1, "test", "after")
            if attempts:
                values.setdefault("accuracy", {})[arm.folder] = {a.item_id: float(a.correct) for a in attempts}
            before = before or {a.item_id: a.correct for a in store.attempts(0, "test", "before")}
            calls, cost = store.calls_made()
            start = store.get_meta(COPY_START) or {"calls": 0, "cost_usd": 0}
            spend[arm.folder] = (calls - start["calls"], cost - start["cost_usd"])
        finally:
            store.close()
    if exp.references:
        for folder in [a.folder for a in exp.arms] + ["untrained"]:
            path = root / ("committee" if folder == "untrained" else folder) / SCORES
            scored = json.loads(path.read_text())
            for name, of in likelihood.METRICS.items():
                values.setdefault(name, {})[folder] = of(scored)
    if "accuracy" in values and len(values["accuracy"]) < len(exp.arms):
        del values["accuracy"]  # some arm was not evaluated: no accuracy to compare
    measures = {name: _measure(exp, runs, binary=name == "accuracy") for name, runs in values.items()}
    rows = []
    for v in exp.variants + (["untrained"] if exp.references else []):
        arms = [a for a in exp.arms if a.variant == v]
        rows.append(
            {
                "variant": v,
                "seeds": [a.seed for a in arms],
                **{name: m.get(v) for name, m in measures.items()},
                "new_calls": sum(spend[a.folder][0] for a in arms),
                "new_cost_usd": round(sum(spend[a.folder][1] for a in arms), 6),
            }
        )
    committee = Store(root / "committee" / "run.sqlite", readonly=True)
    try:
        calls, cost = committee.calls_made()
    finally:
        committee.close()
    items = sorted(set.intersection(*(set(s) for s in values["accuracy"].values()))) if "accuracy" in values else []
    untrained = [before[i] for i in items if i in before]
    return {
        "reference": exp.reference,
        "measures": list(measures),
        "items": {name: m["items"] for name, m in measures.items()},
        "test_set": fingerprint(items) if items else None,
        "before": accuracy(sum(untrained), len(untrained)) if items and len(untrained) == len(items) else None,
        "committee": {"calls": calls, "cost_usd": round(cost, 6)},
        "variants": rows,
    }


def _measure(exp: Experiment, runs: dict[str, dict[str, float]], binary: bool) -> dict:
    """One measure's figures per variant (see compare); ``runs`` maps a run folder ("untrained"
    included, for the references) to its per-item values, 0 or 1 where ``binary`` (accuracy)."""
    items = sorted(set.intersection(*(set(s) for s in runs.values())))
    groups = {v: [a.folder for a in exp.arms if a.variant == v] for v in exp.variants}
    if "untrained" in runs:
        groups["untrained"] = ["untrained"]
    if not items:  # margins where every teacher's reference rationale was right: nothing to compare
        return {"items": 0, **dict.fromkeys(groups)}
    per_seed = {v: [fmean(runs[f][i] for i in items) for f in folders] for v, folders in groups.items()}
    per_item = {v: [fmean(runs[f][i] for f in folders) for i in items] for v, folders in groups.items()}
    ref = exp.reference
    out: dict[str, Any] = {"items": len(items)}
    for v in groups:
        by_seeds = len(per_seed[v]) > 1
        row: dict[str, Any] = {
            "mean": round(fmean(per_seed[v]), 4) if items else None,
            "per_seed": [round(x, 4) for x in per_seed[v]],
            "ci95": seed_interval(per_seed[v]) if by_seeds else bootstrap_ci(per_item[v]),
            "unit": "seeds" if by_seeds else "items",
            "vs_reference": None,
        }
        if v != ref and items:
            if len(per_seed[ref]) > 1 and (by_seeds or v == "untrained"):
                row["vs_reference"] = {**welch(per_seed[ref], per_seed[v]), "test": "Welch t over seeds"}
            elif binary and len(per_seed[ref]) == len(per_seed[v]) == 1:
                test = mcnemar([per_item[ref][k] == 1 for k in range(len(items))], [x == 1 for x in per_item[v]])
                row["vs_reference"] = {**test, "test": "McNemar, items only"}
            else:
                test = paired_permutation(per_item[ref], per_item[v])
                row["vs_reference"] = {**test, "test": "permutation, items only"}
        out[v] = row
    return out


def _cell(name: str, m: dict | None) -> str:
    if not m or m["mean"] is None:
        return "-"
    if name == "accuracy":
        return f"{m['mean']:.1%} {interval(m['ci95'])}"
    return describe_score(m["mean"], m["ci95"])


def _versus(name: str, m: dict | None) -> str:
    test = m and m["vs_reference"]
    if not test:
        return "reference" if m else "-"
    if "gained" in test:
        return f"+{test['gained']} -{test['lost']}, p={test['p_value']:.3g}"
    diff = f"{test['difference'] * 100:+.1f} pts" if name == "accuracy" else f"{test['difference']:+.3f}"
    return f"{diff}, p={test['p_value']:.3g}"


def headers(result: dict) -> list[str]:
    """The comparison's columns: per measure its mean [95% CI] and the test against the reference."""
    cols = ["variant", "seeds"]
    for name in result["measures"]:
        cols += [f"{name} [95% CI]", f"vs. {result['reference']}"]
    return cols + ["new calls", "cost $"]


def table_rows(result: dict) -> list[list[str]]:
    """The comparison as text cells, in the order of :func:`headers`."""
    out = []
    for row in result["variants"]:
        cells = [row["variant"], ",".join(str(s) for s in row["seeds"] if s is not None) or "-"]
        for name in result["measures"]:
            cells += [_cell(name, row.get(name)), _versus(name, row.get(name))]
        out.append(cells + [str(row["new_calls"]), f"{row['new_cost_usd']:.4f}"])
    return out


def summary_line(result: dict) -> str:
    parts = []
    for name, n in result["items"].items():
        units = {r[name]["unit"] for r in result["variants"] if r.get(name) and r["variant"] != "untrained"}
        unit = "seeds as the unit" if units == {"seeds"} else "item-level only (one seed)"
        parts.append(f"{name}: {n} items, {unit}")
    if result["test_set"]:
        parts.append(f"test set {result['test_set']}")
    before = result["before"]
    if before:
        parts.append(f"untrained student {before['accuracy']:.1%} {interval(before['ci95'])}")
    c = result["committee"]
    parts.append(f"shared committee: {c['calls']} calls, ${c['cost_usd']:.4f}")
    return "; ".join(parts)


def plot(result: dict, path: Path) -> Path:
    """A panel per measure, a bar per variant with its 95% interval, saved as an image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = result["measures"] or ["accuracy"]
    fig, axes = plt.subplots(1, len(names), figsize=(len(names) * (1.2 + 1.1 * len(result["variants"])), 3.6))
    for ax, name in zip(list(getattr(axes, "flat", [axes])), names):
        rows = [r for r in result["variants"] if r.get(name) and r[name]["mean"] is not None]
        k = 100 if name == "accuracy" else 1
        means = [r[name]["mean"] * k for r in rows]
        err = [
            [m - (r[name]["ci95"] or [r[name]["mean"]] * 2)[0] * k for m, r in zip(means, rows)],
            [(r[name]["ci95"] or [r[name]["mean"]] * 2)[1] * k - m for m, r in zip(means, rows)],
        ]
        ax.bar(range(len(rows)), means, yerr=err, capsize=4, color="#4c78a8")
        if name == "accuracy" and result["before"]:
            ax.axhline(result["before"]["accuracy"] * 100, color="grey", linestyle="--", label="untrained")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xticks(list(range(len(rows))), [r["variant"] for r in rows], rotation=20, fontsize=8)
        ax.set_ylabel("test accuracy (%)" if name == "accuracy" else f"{name} (log-prob per token)")
        ax.set_title(f"{name}: {result['items'].get(name, 0)} items, 95% CI", fontsize=9)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=120)
    plt.close(fig)
    return write_atomic(path, image.getvalue())  # a kill mid-write leaves the last whole image


def write(result: dict, root: Path) -> list[Path]:
    """experiment.json and experiment.png in the experiment's folder."""
    return [
        write_atomic(root / "experiment.json", json.dumps(result, indent=2) + "\n"),
        plot(result, root / "experiment.png"),
    ]


def is_experiment(folder: Path) -> bool:
    """Whether ``folder`` holds an experiment: its shared committee's run, and one per variant."""
    return (folder / "committee" / "run.sqlite").is_file()


def read_result(folder: Path) -> dict | None:
    """The comparison an experiment in ``folder`` last wrote, if any."""
    path = folder / "experiment.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if "measures" not in result:  # an older fair's table, of accuracy alone: the runs are all still there
        raise FairError(
            f"{path} was written by an older fair: rerun `fair experiment CONFIG --dir {folder}` to "
            "compare again (it reruns nothing)"
        )
    return result
