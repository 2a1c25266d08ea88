"""Experiments: named variants of one base config, compared on the same test items.

An experiment config is a run config plus an ``[experiment]`` table (``seeds``, ``base``) and
``[[variants]]``, each a ``name``, an optional built-in ``ablation`` (see ABLATIONS) and a
``set`` table of dotted overrides, optionally with its own ``seeds`` (each one sets
``train.seed``). Round 0's committee (examine, explain, solve, review) runs once, in
``<dir>/committee``. Each variant's run directory starts as a copy of it, and its run redoes
round 0 from the first stage its changes reach (fair_core.rundir.REDO_FROM), reusing the
stored teacher calls: a variant that differs only after the committee (policy, threshold,
compile, training) makes no new call. A variant that changes the committee itself is refused.
Every run directory resumes as a run does, so an experiment does.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager

from pydantic import Field

from . import config as cfg
from .config import RunConfig, Strict
from .errors import FairError
from .rundir import REDO_FROM, changed_keys, first_output, redo_from, write_atomic
from .splits import fingerprint
from .stages import PIPELINE
from .stats import accuracy, bootstrap_ci, interval, mcnemar, paired_permutation
from .store import StageStatus, Store, copy_store

# The paper's ablations, as overrides. single-teacher also keeps only its teacher's writings.
ABLATIONS: dict[str, dict[str, Any]] = {
    "fair": {},
    "no-review": {"committee.policy": "accept-all"},
    "no-feedback": {"train.alpha": 0.0},
    "feedback-only": {"train.alpha": 1.0},
    "single-teacher": {"committee.policy": "accept-all"},
}
SEEDED = "experiment_seed"  # meta key: the calls and cost a variant's copy started with


class VariantConfig(Strict):
    name: str = Field(pattern=r"^[\w.-]+$")
    ablation: str | None = None
    teacher: str | None = None  # single-teacher's teacher
    set: dict[str, Any] = {}
    seeds: list[int] | None = None


class ExperimentConfig(Strict):
    seeds: list[int] | None = None  # for every variant without its own
    base: str | None = None  # the variant the others are tested against (default: the first)


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
        if v.name in names or v.name == "committee":
            raise FairError(f"variant name {v.name!r} is used twice or reserved: give each variant its own name")
        names.append(v.name)
        overrides = dict(_ablation(v))
        overrides.update(v.set)
        for seed in v.seeds or options.seeds or [None]:
            raw_config = copy.deepcopy(data)
            for key, value in overrides.items():
                cfg.set_key(raw_config, key, value)
            if seed is not None:
                cfg.set_key(raw_config, "train.seed", seed)
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
    return Experiment(base, arms, names, reference)


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
    """Whether ``path`` holds a run to resume: its config.toml (which :func:`seed` writes last) and
    a store that is not missing, empty or left mid-copy (an older fair wrote a variant's config
    first, then copied the committee's store without a lock: a kill left a hot journal)."""
    db = path / "run.sqlite"
    return (
        (path / "config.toml").is_file()
        and db.is_file()
        and db.stat().st_size > 0
        and not db.with_name(db.name + "-journal").exists()
    )


def seed(committee: Path, path: Path) -> None:
    """Make a variant's run directory a copy of the committee's, unless it holds a run already
    (or a round's outputs: Run judges a store missing beside them). The store is copied under a
    temporary name (SQLite's backup, consistent even with a WAL; the calls and cost it starts
    from noted) and renamed, then the config written: with the caller holding the run lock, a
    kill at any point leaves a directory that is seeded again, never a half-made run."""
    if _whole(path) or first_output(path):
        return
    for name in ("run.sqlite", "run.sqlite.tmp"):  # what a cut seeding left, the store itself first
        for end in ("", "-journal", "-wal", "-shm"):
            (path / f"{name}{end}").unlink(missing_ok=True)
    tmp = path / "run.sqlite.tmp"
    copy_store(committee / "run.sqlite", tmp)
    store = Store(tmp)
    try:
        calls, cost = store.calls_made()
        store.set_meta(SEEDED, {"calls": calls, "cost_usd": cost})
    finally:
        store.close()  # the last connection: its WAL is folded in and removed
    os.replace(tmp, path / "run.sqlite")
    write_atomic(path / "config.toml", (committee / "config.toml").read_text())


def plan(exp: Experiment, root: Path) -> list[tuple[str, Path, RunConfig, list[str]]]:
    """(label, run directory, config, stages run there) in order: the committee, then each arm."""
    committee = committee_config(exp.base)
    shared = PIPELINE.names()[: PIPELINE.rank("compile")]  # what every variant shares: all before compile
    steps = [("committee", root / "committee", committee, [s for s in committee.stages if s in shared])]
    return steps + [
        (a.variant + ("" if a.seed is None else f" (seed {a.seed})"), root / a.folder, a.config, a.config.stages)
        for a in exp.arms
    ]


def run(exp: Experiment, root: Path, host, watch: Callable[[str, Any], ContextManager]) -> dict:
    """Runs what is not done yet (the committee, then each arm) and writes the comparison.
    ``watch(label, run)`` wraps each run that has work left (a console sink, a UI's); a run
    left unfinished (failed calls, a partial stage) stops the experiment, resumable."""
    from .rundir import Run, RunLock
    from .runner import Runner, check

    for arm in exp.arms:  # everything knowable wrong, before a call is paid for
        check(arm.config, host)
    for label, path, config, stages in plan(exp, root):
        if done(path, config, stages):
            continue
        with RunLock(path):
            if label != "committee":
                seed(root / "committee", path)
            r = Run(path, config)
            try:
                with watch(label, r):
                    Runner(r, host, stages).run()
            finally:
                r.close()
        if not done(path, config, stages):
            raise Unfinished(f"{label} did not finish (see `fair report {path}`): rerun the experiment to resume it")
    result = compare(exp, root)
    write(result, root)
    return result


class Unfinished(FairError):
    """A run of the experiment ended with failed calls or a stage not done: rerun to resume."""


# comparing ----------------------------------------------------------------------------------------
def compare(exp: Experiment, root: Path) -> dict:
    """The table: per variant, accuracy on the items every arm scored (a mean over its seeds),
    a 95% bootstrap interval, a paired test against the reference variant, and the calls and
    cost its own runs added to the shared committee's."""
    scored: dict[str, dict[str, bool]] = {}
    spend: dict[str, tuple[int, float]] = {}
    before: dict[str, bool] = {}
    for arm in exp.arms:
        store = Store(root / arm.folder / "run.sqlite", readonly=True)
        try:
            last = arm.config.rounds - 1
            scored[arm.folder] = {a.item_id: a.correct for a in store.attempts(last, "test", "after")}
            before = before or {a.item_id: a.correct for a in store.attempts(0, "test", "before")}
            calls, cost = store.calls_made()
            start = store.get_meta(SEEDED) or {"calls": 0, "cost_usd": 0}
            spend[arm.folder] = (calls - start["calls"], cost - start["cost_usd"])
        finally:
            store.close()
    items = sorted(set.intersection(*(set(s) for s in scored.values()))) if scored else []
    per_item = {v: [[scored[a.folder][i] for a in exp.arms if a.variant == v] for i in items] for v in exp.variants}
    means = {v: [sum(x) / len(x) for x in rows] for v, rows in per_item.items()}
    reference = means[exp.reference]
    rows = []
    for v in exp.variants:
        arms = [a for a in exp.arms if a.variant == v]
        test = None
        if v != exp.reference and items:
            if len(per_item[v][0]) == len(per_item[exp.reference][0]) == 1:  # one seed each
                test = {
                    **mcnemar([x[0] for x in per_item[exp.reference]], [x[0] for x in per_item[v]]),
                    "test": "McNemar",
                }
            else:
                test = {**paired_permutation(reference, means[v]), "test": "paired permutation"}
        acc = sum(means[v]) / len(items) if items else None
        rows.append(
            {
                "variant": v,
                "seeds": [a.seed for a in arms],
                "items": len(items),
                "accuracy": None if acc is None else round(acc, 4),
                "ci95": bootstrap_ci(means[v]),
                "vs_reference": test,
                "new_calls": sum(spend[a.folder][0] for a in arms),
                "new_cost_usd": round(sum(spend[a.folder][1] for a in arms), 6),
            }
        )
    committee = Store(root / "committee" / "run.sqlite", readonly=True)
    try:
        calls, cost = committee.calls_made()
    finally:
        committee.close()
    untrained = [before[i] for i in items if i in before]
    return {
        "reference": exp.reference,
        "items": len(items),
        "test_set": fingerprint(items) if items else None,
        "before": accuracy(sum(untrained), len(untrained)) if len(untrained) == len(items) else None,
        "committee": {"calls": calls, "cost_usd": round(cost, 6)},
        "variants": rows,
    }


def table_rows(result: dict) -> list[list[str]]:
    """The comparison as text cells, in the order of HEADERS."""
    out = []
    for row in result["variants"]:
        acc = "-" if row["accuracy"] is None else f"{row['accuracy']:.1%} {interval(row['ci95'])}"
        test = row["vs_reference"]
        if test is None:
            versus, p = "reference", ""
        elif test["test"] == "McNemar":
            versus, p = f"+{test['gained']} -{test['lost']}", f"McNemar p={test['p_value']:.3g}"
        else:
            versus, p = f"{test['difference'] * 100:+.1f} pts", f"permutation p={test['p_value']:.3g}"
        seeds = ",".join(str(s) for s in row["seeds"] if s is not None) or "-"
        out.append([row["variant"], seeds, acc, versus, p, str(row["new_calls"]), f"{row['new_cost_usd']:.4f}"])
    return out


HEADERS = ["variant", "seeds", "accuracy [95% CI]", "vs. reference", "paired test", "new calls", "cost $"]


def summary_line(result: dict) -> str:
    before = result["before"]
    said = f"; untrained student {before['accuracy']:.1%} {interval(before['ci95'])}" if before else ""
    c = result["committee"]
    return (
        f"{result['items']} test items, the same for every variant (test set {result['test_set']}){said}; "
        f"shared committee: {c['calls']} calls, ${c['cost_usd']:.4f}"
    )


def plot(result: dict, path: Path) -> Path:
    """A bar per variant with its 95% interval, saved as an image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["variants"] if r["accuracy"] is not None]
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(rows), 3.6))
    xs = range(len(rows))
    acc = [r["accuracy"] * 100 for r in rows]
    err = [[a - r["ci95"][0] * 100 for a, r in zip(acc, rows)], [r["ci95"][1] * 100 - a for a, r in zip(acc, rows)]]
    ax.bar(xs, acc, yerr=err, capsize=4, color="#4c78a8")
    if result["before"]:
        ax.axhline(result["before"]["accuracy"] * 100, color="grey", linestyle="--", label="untrained")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xticks(list(xs), [r["variant"] for r in rows], rotation=20, fontsize=8)
    ax.set_ylabel("test accuracy (%), 95% CI")
    ax.set_title(f"{result['items']} test items", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    return json.loads(path.read_text()) if path.is_file() else None
