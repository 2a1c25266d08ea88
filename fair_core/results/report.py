"""A run's report: acceptance per teacher, reviewer agreement, cost, failures and accuracy."""

from __future__ import annotations

import os
import socket
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

from ..errors import FairError
from ..host import get_host
from ..inert import inert
from ..runs.records import teacher_of
from ..runs.splits import fingerprint
from ..runs.store import StageRun, StageStatus, Store, damaged
from ..stats import accuracy, describe, describe_test, mcnemar
from ..training.progress import read_records
from .agreement import fleiss_kappa, histogram, krippendorff_alpha, units_of


def _mean(total: float, n: int) -> float | None:
    return round(total / n, 4) if n else None


def _scores(store: Store, r: int, phase: str, scored: set[str]) -> dict[str, bool]:
    """Item id -> correct, for the test items the run scores now (see fair_core.runs.splits)."""
    return {a.item_id: a.correct for a in store.attempts(r, "test", phase) if a.item_id in scored}


def _accuracy(scores: dict[str, bool]) -> dict | None:
    return accuracy(sum(scores.values()), len(scores)) if scores else None


def _round(store: Store, r: int, scored: set[str]) -> dict:
    """One round's figures, counted in SQL where a count will do: a report on 16k mistakes never
    loads their texts."""
    mistakes = store.count_mistakes(r)
    kinds = store.count_writings(r)
    verdicts, accepted, with_rationale = store.count_verdicts(r, "rationale")
    without = store.count_unaccepted(r, "rationale")
    units = units_of(((item_id, author), score) for item_id, author, score in store.review_scores(r, "rationale"))
    start = _scores(store, 0, "before", scored)  # the untrained student: every round's baseline
    before = _accuracy(start if r == 0 else _scores(store, r, "before", scored))
    after_scores = _scores(store, r, "after", scored)
    after = _accuracy(after_scores)
    paired = sorted(start.keys() & after_scores.keys())
    train = store.accuracy(r, "train", "before")
    # Fleiss' kappa needs every unit rated by the same number (>= 2) of reviewers
    width = max((len(u) for u in units), default=0)
    complete = [u for u in units if None not in u and len(u) == width] if width >= 2 else []
    return {
        "round": r,
        "items": mistakes,
        "rationales": kinds.get("rationale", 0),
        "feedback": kinds.get("feedback", 0),
        "accepted_rationales": accepted,
        "items_with_rationale": with_rationale,
        # known once review has run, even if every call failed (then it is every mistake)
        "items_without_rationale": without if verdicts or store.stage_status(r, "review") else None,
        "failures": store.count_failures(r),
        "train_accuracy": round(train[0], 4) if train else None,
        "accuracy_before": before["accuracy"] if before else None,
        "accuracy_after": after["accuracy"] if after else None,
        "test_before": before,
        "test_after": after,
        "paired_test": mcnemar([start[i] for i in paired], [after_scores[i] for i in paired]) if paired else None,
        "agreement": {
            "krippendorff_alpha_interval": _r(krippendorff_alpha(units, "interval")) if units else None,
            "krippendorff_alpha_ordinal": _r(krippendorff_alpha(units, "ordinal")) if units else None,
            "fleiss_kappa": _r(fleiss_kappa(complete)) if len(complete) > 1 else None,
            "histogram": histogram(score for unit in units for score in unit),
        },
    }


def _alive(runner: dict | None) -> bool:
    """Whether the process that last ran the run still lives; one on another host (a run dir on
    a shared disk) is taken to."""
    if not runner:
        return False
    if runner["host"] != socket.gethostname():
        return True
    try:
        os.kill(runner["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _stage(row: StageRun, runner_alive: bool) -> dict:
    status = row.status
    if status == StageStatus.RUNNING and not runner_alive:  # killed without a chance to say so (kill -9)
        status = StageStatus.INTERRUPTED
    out = {"round": row.round, "stage": row.stage, "status": status}
    error = (row.summary or {}).get("error")
    return {**out, "error": error} if error else out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _per_teacher(store: Store) -> dict:
    stats: dict[str, dict] = defaultdict(
        lambda: {
            "written": 0,
            "accepted": 0,
            "given": [0, 0],
            "received": [0, 0],
            "calls": 0,
            "retries": 0,
            "failures": 0,
            "tokens": 0,
            "cost_usd": 0.0,
        }
    )
    for teacher, (calls, retries, tokens, cost) in store.call_totals().items():
        s = stats[teacher]
        s["calls"], s["retries"], s["tokens"], s["cost_usd"] = calls, retries, tokens, cost
    # failures as the stages count them: one per call a stage asked for, shared requests included
    for teacher, n in store.failures_by_teacher().items():
        stats[teacher_of(teacher)]["failures"] += n
    for author, n in store.written_by("rationale").items():
        stats[teacher_of(author)]["written"] += n
    for author, n in store.accepted_by("rationale").items():
        stats[teacher_of(author)]["accepted"] += n
    given, received = store.score_totals("reviewer", "rationale"), store.score_totals("author", "rationale")
    for key, totals in (("given", given), ("received", received)):  # score sums and counts, for means
        for name, (total, n) in totals.items():
            pair = stats[teacher_of(name)][key]
            pair[0], pair[1] = pair[0] + total, pair[1] + n
    out = {}
    for name, s in sorted(stats.items()):
        out[name] = {
            **{k: v for k, v in s.items() if k not in ("given", "received")},
            "acceptance": round(s["accepted"] / s["written"], 4) if s["written"] else None,
            "mean_score_given": _mean(*s["given"]),
            "mean_score_received": _mean(*s["received"]),
            "cost_usd": round(s["cost_usd"], 6),
        }
    return out


def _training(run_dir: Path, r: int) -> dict | None:
    """The end of round ``r``'s fine-tuning as its progress file records it: steps, loss, speed,
    peak memory and time (None before it has finished)."""
    records = read_records(Path(run_dir) / "rounds" / str(r) / "progress.jsonl")
    done = next((record for record in reversed(records) if record.get("type") == "train_done"), None)
    keys = ("step", "loss", "mean_loss", "tokens_per_second", "memory_mb", "runtime_s", "method", "pairs")
    return {key: done.get(key) for key in keys} if done else None


def training_line(r: int, t: dict) -> str:
    """One round's training, as `fair report` prints it."""
    memory = f"peak memory {t['memory_mb'] / 1024:.2f} GiB" if t.get("memory_mb") else "peak memory unknown"
    return (
        f"round {r} training: {t['method']}, {t['pairs']} pairs, {t['step']} steps, final loss {t['loss']}, "
        f"{t['tokens_per_second']:.0f} response tokens/s, {memory}, {t['runtime_s']:.0f} s"
    )


def build(run_dir: Path) -> dict:
    """The report of a run directory, as plain JSON-ready data."""
    db = Path(run_dir) / "run.sqlite"
    if not Path(run_dir).exists():
        raise FairError(f"{run_dir} does not exist: pass the --run-dir of a run")
    if not db.exists():
        raise FairError(f"{run_dir} is not a run directory (no run.sqlite): pass the --run-dir of a run")
    store = Store(db, check=False, readonly=True)  # a full scan of a large store costs more than the report
    try:
        return _build(run_dir, store)
    except sqlite3.DatabaseError as e:
        raise damaged(db, e) from None
    finally:
        store.close()


def _build(run_dir: Path, store: Store) -> dict:
    rounds = store.rounds()
    scored = store.item_ids("test")
    per_round = [{**_round(store, r, set(scored)), "training": _training(run_dir, r)} for r in rounds]
    runner_alive = _alive(store.get_meta("runner"))
    rank = get_host().pipeline.rank  # a plugin's stages in their place
    last = per_round[-1] if per_round else _round(store, 0, set())
    total = lambda key: sum(p[key] or 0 for p in per_round)  # noqa: E731
    return {
        "run": str(run_dir),
        "items": total("items"),
        "accepted_rationales": total("accepted_rationales"),
        "items_without_rationale": None
        if all(p["items_without_rationale"] is None for p in per_round)
        else total("items_without_rationale"),
        "failures": total("failures"),
        "accuracy_before": per_round[0]["accuracy_before"] if per_round else None,
        "accuracy_after": last["accuracy_after"],
        "test": {
            "items": len(scored),
            "set": fingerprint(scored) if scored else None,
            "left_out": dict(Counter(store.left_out().values())),
            "before": per_round[0]["test_before"] if per_round else None,
            "after": last["test_after"],
            "paired_test": last["paired_test"],
        },
        "per_teacher": _per_teacher(store),
        "agreement": last["agreement"],
        "cost_usd": round(store.spent_usd(), 6),
        # calls the budget refused are failures until a rerun with a raised budget makes them
        "budget_reached": store.budget_refused(),
        "stages": [
            _stage(row, runner_alive) for row in sorted(store.stages(), key=lambda row: (row.round, rank(row.stage)))
        ],
        "rounds": per_round,
    }


def usd(amount: float) -> str:
    """Dollars as every cost column and total shows them (this report, the TUI): to a hundredth
    of a cent, as a call to a small model costs about that."""
    return f"{amount:.4f}"


def test_set_line(test: dict) -> str:
    """Which test items the accuracies are on, and how many were left out, and why."""
    if not test["items"]:
        return "test set: nothing scored yet"
    left = test["left_out"]
    why = f": {', '.join(f'{n} {reason}' for reason, n in sorted(left.items()))}" if left else ""
    return f"test set {test['set']}: {test['items']} items scored, {sum(left.values())} left out{why}"


def round_rows(report: dict) -> list[list[str]]:
    """The rounds table's cells (round, mistakes, accepted, without a rationale, failed, accuracy
    before and after, the paired test), as `fair report` and the Results screen both show them."""
    return [
        [
            str(p["round"]),
            str(p["items"]),
            str(p["accepted_rationales"]),
            "-" if p["items_without_rationale"] is None else str(p["items_without_rationale"]),
            str(p["failures"]),
            describe(p["test_before"]),
            describe(p["test_after"]),
            describe_test(p["paired_test"]),
        ]
        for p in report["rounds"]
    ]


def render(report: dict, quiet: bool = False) -> None:
    """Print the report as rich tables. Its texts (teachers' names, stages' errors, the reasons test
    items were left out) may come from a provider, a dataset or a plugin: they are made inert."""
    from functools import partial

    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable

    Table = partial(RichTable, box=box.SIMPLE_HEAD, title_justify="left", collapse_padding=True, pad_edge=False)

    console = Console()
    fmt = lambda x, spec="": "-" if x is None else format(x, spec)  # noqa: E731
    if quiet:
        console.print(
            f"items {report['items']}, accepted rationales {report['accepted_rationales']}, "
            f"items without rationale {report['items_without_rationale']}, "
            f"accuracy {describe(report['test']['before'])} -> {describe(report['test']['after'])}, "
            f"cost ${usd(report['cost_usd'])}; {inert(test_set_line(report['test']))}",
            soft_wrap=True,
            markup=False,
        )
        return
    rounds = Table(
        "round",
        "mistakes",
        "accepted",
        "no rationale",
        "failed",
        "test acc. before [95% CI]",
        "after [95% CI]",
        "vs. untrained",
        title="Rounds",
    )
    for row in round_rows(report):
        rounds.add_row(*row)
    console.print(rounds)
    console.print(inert(test_set_line(report["test"])), markup=False)
    teachers = Table(
        "teacher",
        "accepted",
        "rate",
        "gives",
        "gets",
        "calls",
        "retry",
        "fail",
        "tokens",
        "$",
        title="Committee (scores: mean given to peers / received from peers)",
    )
    for name, s in report["per_teacher"].items():
        teachers.add_row(
            inert(name, markup=True),
            f"{s['accepted']}/{s['written']}",
            fmt(s["acceptance"], ".0%"),
            fmt(s["mean_score_given"], ".2f"),
            fmt(s["mean_score_received"], ".2f"),
            str(s["calls"]),
            str(s["retries"]),
            str(s["failures"]),
            str(s["tokens"]),
            usd(s["cost_usd"]),
        )
    console.print(teachers)
    a = report["agreement"]
    console.print(
        f"reviewer agreement: Krippendorff's alpha {fmt(a['krippendorff_alpha_interval'], '.3f')} "
        f"(interval), {fmt(a['krippendorff_alpha_ordinal'], '.3f')} (ordinal); Fleiss' kappa "
        f"{fmt(a['fleiss_kappa'], '.3f')}; scores 1-5: {list(a['histogram'].values())}"
    )
    console.print(
        f"cost: ${usd(report['cost_usd'])}"
        + (
            " (stopped by the budget: raise committee.budget_usd and rerun to go on)"
            if report["budget_reached"]
            else ""
        )
    )
    for p in report["rounds"]:
        if p.get("training"):
            console.print(training_line(p["round"], p["training"]), markup=False)
    for r in sorted({s["round"] for s in report["stages"]}):
        said = [
            f"{s['stage']} {s['status']}" + (f" ({s['error']})" if s.get("error") else "")
            for s in report["stages"]
            if s["round"] == r
        ]
        console.print(inert(f"round {r} stages: {', '.join(said)}"), markup=False)
