"""A run directory: the resolved config, the store, the event log, rounds' outputs."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..config import RunConfig, dump, load
from ..errors import ConfigError, FairError
from .disk import DiskFull, is_full
from .events import Bus, Event, JsonlSink, drop_torn_line
from .store import Store

if TYPE_CHECKING:
    from ..stages import Pipeline

# Keys that may change between invocations of a run: nothing stored depends on them (more rounds
# start from the last one's student, merged then if it was kept as an adapter; a raised budget
# lets the calls it stopped go out).
FREE_KEYS = (
    "stages",
    "rounds",
    "committee.budget_usd",
    "train.save_steps",
    "train.launcher",
    "train.accelerate_config",
    "train.report_to",
)
# Keys that only later stages read are each stage's ``redo_keys`` (a section stands for all its
# keys): changing one redoes round 0 from that stage on, reusing what came before it, teacher
# calls included. Any other change needs a new run directory.


def __getattr__(name: str) -> Any:
    """REDO_FROM (key -> the stage it redoes from) and TRAINED (what a redone training removes),
    derived from the built-in stages' declarations, for code that read these tables."""
    from ..stages import PIPELINE
    from ..stages.train import TRAINED

    derived = {"REDO_FROM": PIPELINE.redo_from, "TRAINED": lambda: TRAINED}
    if name not in derived:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return derived[name]()


class Run:
    """Opens (or creates) a run directory and wires its event log."""

    def __init__(
        self,
        path: str | Path,
        config: RunConfig | None = None,
        stages: list[str] | None = None,
        pipeline: Pipeline | None = None,
    ) -> None:
        """``stages``: the ones this invocation runs (default: the config's), so that a change
        which redoes a stage they leave out is refused. ``pipeline``: the stages whose
        declarations say what a change redoes (default: the process's plugin host's)."""
        self.path = Path(path)
        config_file = self.path / "config.toml"
        saved = load(config_file) if config_file.exists() else None
        db = self.path / "run.sqlite"
        missing = not db.is_file() or db.stat().st_size == 0
        made = first_output(self.path)
        witness = made or (config_file if saved is not None else None)
        # a store emptied beside a round's outputs is no failed first start either
        if witness is not None and (missing or (made is not None and _empty(db))):
            raise FairError(
                f"{db} is missing or empty, but {witness} says a run was made here: restore "
                f"run.sqlite from a copy, or start again in a new --run-dir"
            )
        changed = changed_keys(saved, config) if config is not None and saved is not None else []
        if changed and _empty(db):
            changed = []  # a first start that failed before storing anything: the new config is the run's
        redo = _redo_stage(pipeline, changed, self.path, config_file)
        self.config = config or saved or RunConfig()
        self.path.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.path / "run.sqlite")
        self.changes: list[str] = []  # what this invocation's config changed, for the user to read
        if redo:
            self._redo(*redo, changed, config_file, self.config.stages if stages is None else stages)
        if saved is None or config is not None:
            write_atomic(config_file, dump(self.config))
        self.bus = Bus()
        if lock_holder(self.path) in (None, os.getpid()):  # no other process appends to it now
            drop_torn_line(self.path / "events.jsonl")  # a killed write's part: the next line starts whole
        self._log = JsonlSink(self.path / "events.jsonl")
        self.bus.subscribe(self._log)
        self._pending: list[dict] = []
        self.bus.subscribe(self._to_store)

    def _redo(
        self, pipeline: Pipeline, stage: str, changed: list[str], config_file: Path, stages: list[str] | None
    ) -> None:
        """Forget round 0 from ``stage`` on: those stages run again with the new settings, and
        each clears what it declares its stale mark does not cover. ``stages``: those this
        invocation runs (None: every stage)."""
        rows = self.store.stages()
        if any(row.round > 0 for row in rows):
            self.store.close()
            raise ConfigError(
                f"run dir {self.path} has later rounds built on the old settings "
                f"({', '.join(changed)} changed): pass a new --run-dir, or run it again "
                f"with its own config ({config_file})"
            )
        redone = pipeline.names()[pipeline.rank(stage) :]
        ran = {row.stage for row in rows}  # all of round 0, as no later round exists
        left_out = [s for s in redone if s in ran and s not in pipeline.ordered(stages)]
        if left_out:  # refused before anything changes: the run stays as it was
            self.store.close()
            raise ConfigError(
                f"{', '.join(changed)} changed, which redoes round 0 from {stage}, but "
                f"--stages leaves out {', '.join(left_out)}: add {'them' if left_out[1:] else 'it'}, or "
                f"run every stage"
            )
        if not self.store.mark_stale(0, redone):
            return  # none of them ran yet: they will run with the new settings anyway
        for name in redone:
            clear = pipeline[name].clear
            if clear is not None:
                clear(self, 0)
        self.changes.append(
            f"{', '.join(changed)} changed: round 0 is redone from {stage} (what came before it is kept)"
        )

    def round_dir(self, round: int) -> Path:
        d = self.path / "rounds" / str(round)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def publish(self, event: Event) -> None:
        self.bus.publish(event)

    def _to_store(self, event: Event) -> None:
        """Events reach the store in batches: one transaction per 200 events or per stage."""
        self._pending.append(event.to_dict())
        if len(self._pending) >= 200 or event.type == "stage_finished":
            self.flush_events()

    def flush_events(self) -> None:
        """Store the events not stored yet; on a full disk they wait for the next try (a log: the
        records they describe are in the store whole, and the disk-full error says so once)."""
        if self._pending:
            with contextlib.suppress(DiskFull):
                self.store.add_events(self._pending)
                self._pending = []

    def close(self) -> None:
        self.flush_events()
        try:
            self._log.close()
        except OSError as e:  # its last line could not be written for want of space: a log's loss
            if not is_full(e):
                raise
        self.store.close()


def first_output(path: Path) -> Path | None:
    """A file a run's rounds left in ``path`` (training data, an adapter, a model), if any: only
    stages that follow stored calls write there, so a store that says nothing ran beside one was
    emptied, and is no failed first start."""
    return next((f for f in (path / "rounds").rglob("*") if f.is_file()), None)


def _empty(db: Path) -> bool:
    """Whether a run's store holds nothing a config produced: no stage ran, no call was made,
    no mistake was loaded."""
    store = Store(db, check=False, readonly=True)  # Run opens it again, checked
    try:
        return not any(store.has_any(table) for table in ("stages", "calls", "mistakes"))
    finally:
        store.close()


def changed_keys(saved: RunConfig, config: RunConfig) -> list[str]:
    """The dotted keys (``train.alpha``, ``task.prompts.explain``; a whole section for lists such
    as ``teachers``) whose values differ, free keys left out."""
    return [k for k in _differ("", _priceless(saved), _priceless(config)) if not set(_prefixes(k)) & set(FREE_KEYS)]


def _differ(key: str, x: Any, y: Any) -> list[str]:
    if isinstance(x, dict) and isinstance(y, dict):
        names = dict.fromkeys([*x, *y])
        return [k for name in names for k in _differ(f"{key}.{name}" if key else name, x.get(name), y.get(name))]
    return [key] if x != y else []


def _prefixes(key: str) -> list[str]:
    """``a.b.c``, ``a.b``, ``a``: a key, then the tables that hold it."""
    parts = key.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _priceless(config: RunConfig) -> dict:
    """``config`` as a dict without the teachers' prices: nothing stored depends on them, so a
    price set once a run has begun counts from its next call on."""
    data = config.model_dump()
    for teacher in data["teachers"]:
        teacher.pop("price")
    return data


def redo_from(key: str, pipeline: Pipeline | None = None) -> str | None:
    """The first stage that reads ``key`` (a dotted key), if a stored run can absorb its change;
    ``pipeline``: whose stages' ``redo_keys`` count (default: the process's plugin host's)."""
    table = (pipeline or _host_pipeline()).redo_from()
    return next((table[k] for k in _prefixes(key) if k in table), None)


def _host_pipeline() -> Pipeline:
    from ..host import get_host

    return get_host().pipeline


def _redo_stage(
    pipeline: Pipeline | None, changed: list[str], path: Path, config_file: Path
) -> tuple[Pipeline, str] | None:
    """The pipeline (default: the host's) and its earliest stage a change makes stale; a change
    no stage can absorb is refused."""
    if not changed:
        return None
    pipeline = pipeline or _host_pipeline()
    stages = []
    for key in changed:
        stage = redo_from(key, pipeline)
        if stage is None:
            raise ConfigError(
                f"run dir {path} was made with another config ({key} differs, and what is "
                f"stored depends on it): pass a new --run-dir, or run it again with its "
                f"own config ({config_file})"
            )
        stages.append(stage)
    return pipeline, min(stages, key=pipeline.rank)


def write_atomic(path: Path, text: str | bytes) -> Path:
    """Write ``text`` (or bytes) to ``path`` (its folder made) so that a reader sees the old file or
    the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def move_into(staging: Path, out: Path) -> list[Path]:
    """Move what ``staging`` (a folder inside ``out``) holds into ``out``, each part replacing its
    older copy whole, and remove ``staging``; the paths moved in."""
    written = []
    for entry in sorted(staging.iterdir()):
        target = out / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
        written.append(target)
    staging.rmdir()
    return written


class RunInUse(FairError):
    """Another process works on the run directory."""


PROBE_WAIT_S = 0.5  # how long RunLock waits for a lock_holder probe (an instant) to let go


def lock_holder(path: str | Path) -> int | None:
    """The pid of the process that works on the run directory ``path`` (0 when it has not said
    yet), or None when none does. It probes the lock for an instant without waiting for it, so a
    UI can follow a run that ``fair run`` drives."""
    import fcntl

    try:
        f = open(Path(path) / ".lock", encoding="utf-8")
    except OSError:  # never locked
        return None
    with f:  # closing releases the probe's lock
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = f.read().strip()
            return int(pid) if pid.isdigit() else 0
    return None


class RunLock:
    """Held while a process works on a run directory: a second ``fair run`` (or the UI) on the
    same directory would train into the same checkpoints and write the same files."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: TextIO | None = None  # the lock file, open while held

    def __enter__(self) -> RunLock:
        import fcntl

        try:
            self.path.mkdir(parents=True, exist_ok=True)
            f = open(self.path / ".lock", "a+", encoding="utf-8")
        except PermissionError:
            raise FairError(
                f"run dir {self.path} is not writable: fix its permissions, or pass another --run-dir"
            ) from None
        deadline = time.monotonic() + PROBE_WAIT_S
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:  # a probe (lock_holder) lets go at once; a run does not
                    time.sleep(0.02)
                    continue
                f.seek(0)
                holder = f.read().strip() or "unknown"
                f.close()
                raise RunInUse(
                    f"run dir {self.path} is in use by another fair process (pid {holder}): "
                    f"wait for it to end, or stop it"
                ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc) -> None:
        assert self._file is not None  # __enter__ opened it
        self._file.close()  # closing releases the lock


def default_run_dir(config_path: str | Path | None) -> Path:
    """runs/<config name>: a rerun of the same config resumes the same run."""
    name = Path(config_path).stem if config_path else "default"
    return Path("runs") / name
