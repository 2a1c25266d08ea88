"""A run directory: the resolved config, the store, the event log, rounds' outputs."""

from __future__ import annotations

import os
from pathlib import Path

from . import config as cfg
from .errors import ConfigError
from .events import Bus, Event, JsonlSink
from .store import Store

# The keys that may change between invocations of the same run without starting a new one.
RESUMABLE_KEYS = ("stages",)


class Run:
    """Opens (or creates) a run directory and wires its event log."""

    def __init__(self, path: str | Path, config: cfg.RunConfig | None = None) -> None:
        self.path = Path(path)
        config_file = self.path / "config.toml"
        saved = cfg.load(config_file) if config_file.exists() else None
        if config is not None and saved is not None and _comparable(saved) != _comparable(config):
            raise ConfigError(f"run dir {self.path} was made with another config: pass a new "
                              f"--run-dir, or run it again with its own config ({config_file})")
        self.config = config or saved or cfg.RunConfig()
        self.path.mkdir(parents=True, exist_ok=True)
        if saved is None or config is not None:
            _write_atomic(config_file, cfg.dump(self.config))
        self.store = Store(self.path / "run.sqlite")
        self.bus = Bus()
        self._log = JsonlSink(self.path / "events.jsonl")
        self.bus.subscribe(self._log)
        self._pending: list[dict] = []
        self.bus.subscribe(self._to_store)

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
        batch, self._pending = self._pending, []
        if batch:
            self.store.add_events(batch)

    def close(self) -> None:
        self.flush_events()
        self._log.close()
        self.store.close()


def _comparable(config: cfg.RunConfig) -> dict:
    return config.model_dump(exclude=set(RESUMABLE_KEYS))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def default_run_dir(config_path: str | Path | None) -> Path:
    """runs/<config name>: a rerun of the same config resumes the same run."""
    name = Path(config_path).stem if config_path else "default"
    return Path("runs") / name
