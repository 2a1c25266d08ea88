"""fair from Python, for scripts and notebooks: load a config, run stages with a progress
callback, and read a run's results as plain records or a ``datasets.Dataset``.

It is the engine the ``fair`` command drives, not a copy of it: :func:`run` is ``fair run``
without the terminal (the same checks before anything is written, the same lock, the same
resume), and :meth:`Results.report` is the dict ``fair report --json`` prints. See docs/api.md.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from .errors import FairError
from .runs.records import Mistake, Review, Verdict, Writing

if TYPE_CHECKING:
    import datasets
    from _typeshed import DataclassInstance

    from .config import RunConfig
    from .runner import Runner
    from .runs.events import Event

__all__ = ["load_config", "run", "open_run", "Control", "Outcome", "Results"]


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> RunConfig:
    """A validated, frozen :class:`~fair_core.config.RunConfig` from a TOML file (None: the
    defaults), with ``overrides`` such as ``"train.alpha=0.3"`` applied as ``fair run --set``
    applies them. A wrong key or type raises :class:`~fair_core.errors.ConfigError` naming it."""
    from .config import load

    return load(path, list(overrides))


@dataclass(frozen=True)
class Outcome:
    """What one :func:`run` did."""

    run_dir: Path
    code: int  # as `fair run` exits: 0 all asked for is done, 3 failed calls or a stage not done, 4 budget
    advice: str | None  # what to do next when code is not 0
    ran: list[tuple[int, str]]  # (round, stage) of the stages this call ran: [] when all was done before
    changes: list[str]  # config changes the run directory absorbed, e.g. "... round 0 is redone from review"

    @property
    def ok(self) -> bool:
        return self.code == 0

    def results(self) -> Results:
        return open_run(self.run_dir)


class Control:
    """Pause, resume or cancel a :func:`run` from another thread, such as a UI's. A cancel asked
    before the run has started stops it as it starts; a cancelled run stays resumable."""

    def __init__(self) -> None:
        self.cancelled = False
        self._runner: Runner | None = None

    def pause(self) -> None:
        """Stop starting teacher calls; those in flight finish. The run's log gets a ``paused``
        event (and ``resumed`` on :meth:`resume`)."""
        if self._runner is not None:
            self._runner.pause()

    def resume(self) -> None:
        if self._runner is not None:
            self._runner.resume()

    def cancel(self) -> None:
        """Stop after the calls in flight, as Ctrl-C would."""
        self.cancelled = True
        if self._runner is not None:
            self._runner.cancel()

    def _attach(self, runner: Runner | None) -> None:
        self._runner = runner
        if runner is not None and self.cancelled:
            runner.cancel()


def run(
    config: RunConfig | str | Path,
    run_dir: str | Path,
    stages: Iterable[str] | None = None,
    rounds: int | None = None,
    on_event: Callable[[Event], None] | None = None,
    control: Control | None = None,
) -> Outcome:
    """Run (or resume) the pipeline of ``config`` (a RunConfig, or a TOML file's path) in
    ``run_dir``, as ``fair run`` does. ``stages``: the ones this call runs (default: the config's);
    the run's config keeps the stages it lists, so a later call, the TUI and the report still see
    the whole pipeline. ``rounds`` overrides the config's.

    ``on_event`` receives every engine event (:mod:`fair_core.runs.events`: StageStarted,
    StageProgress, StageFinished, CallDone, TrainStep, EvalResult, Message, ...) on the
    engine's threads, so it should be quick; an exception it raises is ignored, as any
    subscriber's is, so that a display glitch never stops a paid run. Mistakes the user can fix
    (config, data, plugins, a run directory in use) raise :class:`~fair_core.errors.FairError`
    before anything is written; failed calls do not raise: they show in the outcome's code.
    ``control`` pauses, resumes or cancels the run from another thread (see :class:`Control`)."""
    from .config import RunConfig, validate
    from .host import get_host
    from .runner import Runner, check
    from .runs.events import Message
    from .runs.rundir import Run, RunLock

    run_config = config if isinstance(config, RunConfig) else load_config(config)
    # validated as the config file's key is; check() refuses a stage the pipeline lacks in one line
    asked = None if stages is None else validate({**run_config.model_dump(), "stages": list(stages)}).stages
    if rounds is not None:
        run_config = validate({**run_config.model_dump(), "rounds": rounds})
    host = get_host()
    check(run_config, host, stages=asked)  # before the run directory is written
    path = Path(run_dir)
    fresh = not path.exists()
    with RunLock(path):
        run_ = Run(path, run_config, asked)
        if on_event is not None:
            run_.bus.subscribe(on_event)
        for line in run_.changes:
            run_.publish(Message("info", line))
        try:
            runner = Runner(run_, host, asked)
        except FairError:
            run_.close()
            if fresh:  # a bad config leaves no run dir behind: rerunning with it fixed starts clean
                shutil.rmtree(path, ignore_errors=True)
            raise
        if control is not None:
            control._attach(runner)
        try:
            runner.run()
            code, advice = runner.outcome()
        finally:
            if control is not None:
                control._attach(None)
            run_.close()
    return Outcome(path, code, advice, list(runner.ran), list(run_.changes))


def open_run(run_dir: str | Path) -> Results:
    """The results of a run directory, to read (a finished run, or one still running)."""
    return Results(run_dir)


# A record's field type -> its column type in a Dataset; everything else (str, Kind, dict as
# JSON text) is a string. Declared rather than inferred, so an empty or all-None column keeps its type.
_COLUMN = {"int": "int64", "bool": "bool", "float": "float64"}


class Results:
    """A run directory's records, read-only. Each list method takes ``round`` (None: every
    round, in order) and, where records have one, ``kind`` ("feedback" or "rationale"); the
    records are the frozen dataclasses of :mod:`fair_core.runs.records`. Close it when done, or use
    it as a context manager."""

    def __init__(self, run_dir: str | Path) -> None:
        from .runs.store import Store

        self.path = Path(run_dir)
        db = self.path / "run.sqlite"
        if not db.is_file():
            raise FairError(f"{run_dir} is not a run directory (no run.sqlite): pass the --run-dir of a run")
        # as the report: read-only, beside a writer, and no full integrity scan (it costs more than reading)
        self._store = Store(db, check=False, readonly=True)

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._store.close()

    @property
    def config(self) -> RunConfig:
        """The run's resolved config (its config.toml)."""
        from .config import load

        return load(self.path / "config.toml")

    @property
    def rounds(self) -> list[int]:
        return self._store.rounds()

    def _each(self, round: int | None, read: Callable[[int], list]) -> list:
        return [x for r in (self.rounds if round is None else [round]) for x in read(r)]

    def mistakes(self, round: int | None = None) -> list[Mistake]:
        """The train questions the student got wrong: what the committee worked on."""
        return self._each(round, self._store.mistakes)

    def writings(self, round: int | None = None, kind: str | None = None) -> list[Writing]:
        """The teachers' feedback and rationales."""
        return self._each(round, lambda r: self._store.writings(r, kind))

    def reviews(self, round: int | None = None, kind: str | None = None) -> list[Review]:
        """Every reviewer's reply to every writing it reviewed, with the parsed score (None: none counted)."""
        return self._each(round, lambda r: self._store.reviews(r, kind))

    def verdicts(self, round: int | None = None, kind: str | None = None) -> list[Verdict]:
        """The review policy's accept/reject of each reviewed writing, with its statistic."""
        return self._each(round, lambda r: self._store.verdicts(r, kind))

    def accuracy(self) -> dict:
        """Test accuracy of the untrained student (``before``) and after the last round
        (``after``), each ``{"correct", "n", "accuracy", "ci95"}`` or None until evaluated, and
        ``paired_test``: McNemar's test of the two on the same items (see fair_core.stats)."""
        test = self.report()["test"]
        return {k: test[k] for k in ("before", "after", "paired_test")}

    def report(self) -> dict:
        """The whole report, as ``fair report --json`` prints it."""
        from .results.report import build

        return build(self.path)

    def to_dataset(self, kind: str, round: int | None = None) -> datasets.Dataset:
        """``kind`` ("mistakes", "writings", "reviews" or "verdicts") as a ``datasets.Dataset``,
        one row per record with the record's fields as columns (a mistake's ``extra`` as JSON text)."""
        readers: dict[str, tuple[type[DataclassInstance], Callable[[int | None], Sequence[DataclassInstance]]]] = {
            "mistakes": (Mistake, self.mistakes),
            "writings": (Writing, self.writings),
            "reviews": (Review, self.reviews),
            "verdicts": (Verdict, self.verdicts),
        }
        if kind not in readers:
            raise FairError(f"unknown kind {kind!r}: use one of {', '.join(readers)}")
        import datasets

        record, read = readers[kind]
        rows = read(round)
        columns = {f.name: [getattr(r, f.name) for r in rows] for f in fields(record)}
        if "extra" in columns:
            columns["extra"] = [json.dumps(x, ensure_ascii=False) for x in columns["extra"]]
        features = datasets.Features(
            {f.name: datasets.Value(_COLUMN.get(f.type.split("|")[0].strip(), "string")) for f in fields(record)}
        )
        return datasets.Dataset.from_dict(columns, features=features)
