"""The FAIR terminal UI: runs, setup, the live pipeline, the committee's reviews, training and results.

The app owns at most one open run (a :class:`~fair_tui.session.Session`). Its runner works on a
Textual thread worker; engine events are buffered by the session and drained here every
``DRAIN_S`` seconds into the live state that the screen on show redraws. Quitting cancels the
runner and waits for the calls in flight, so the run directory stays resumable by ``fair run``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerError, WorkerState

from fair_core.errors import FairError

from .session import Session, is_run_dir

logger = logging.getLogger(__name__)

DRAIN_S = 0.05
QUIT_WAIT_S = 30.0
SCREENS = ("runs", "setup", "pipeline", "committee", "training", "results")


class FairApp(App):
    """``fair tui [CONFIG | RUN_DIR | RUNS_FOLDER]``."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses may live elsewhere
    TITLE = "FAIR"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        *(Binding(str(i), f"go('{name}')", name.capitalize(), show=False) for i, name in enumerate(SCREENS, 1)),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, target: str | None = None) -> None:
        super().__init__()
        self.target = Path(target) if target else None
        self.runs_root = Path("runs")
        self.session: Session | None = None
        self.runner_worker: Worker | None = None
        self.quitting = False
        self._bindings_state: tuple | None = None

    # screens -------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        from .screens import SCREEN_TYPES

        for name, cls in SCREEN_TYPES.items():
            self.install_screen(cls(), name)
        self.set_interval(DRAIN_S, self.drain)
        first = "runs"
        target = self.target
        if target is not None and target.is_dir() and is_run_dir(target):
            self.runs_root = target.parent
            first = "pipeline" if self.open_run(target) else "runs"
        elif target is not None and (target.suffix == ".toml" or target.is_file()):
            self.get_screen("setup").load_file(target)
            first = "setup"
        elif target is not None:
            self.runs_root = target
        self.push_screen(first)

    def action_go(self, name: str) -> None:
        if getattr(self.screen, "NAME", None) == name or self.screen.is_modal:
            return
        self.switch_screen(name)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name in SCREENS:
            yield SystemCommand(f"Go to {name}", f"show the {name} screen", lambda n=name: self.action_go(n))
        yield SystemCommand("New config", "a new run config in the setup form", self.new_config)
        if self.session is not None:
            s = self.session
            if not s.active:
                yield SystemCommand("Start run", f"run or resume {s.name}",
                                    lambda: (self.action_go("pipeline"), self.start_run()))
            if s.state == "running":
                yield SystemCommand("Pause run", "stop starting teacher calls; those in flight finish",
                                    self.pause_run)
            if s.state == "paused":
                yield SystemCommand("Resume run", "start teacher calls again", self.resume_run)
            if s.active:
                yield SystemCommand("Cancel run", "stop after the calls in flight; resumable later",
                                    self.cancel_run)

    def new_config(self) -> None:
        self.get_screen("setup").load_config(None, None)
        self.action_go("setup")

    # the open run ----------------------------------------------------------------------------------
    def open_run(self, path: Path, session: Session | None = None) -> bool:
        """Make ``path`` the open run; False (and a notice) when another run is still working."""
        if self.session is not None and self.session.path.resolve() == path.resolve() and session is None:
            return True
        if self.session is not None and self.session.active:
            self.notify(f"{self.session.name} is still running: cancel it first (x on the pipeline)",
                        severity="warning")
            return False
        try:
            new = session or Session(path)
        except FairError as e:
            self.notify(str(e), severity="error")
            return False
        if self.session is not None:
            self.session.close()
        self.session = new
        return True

    def start_run(self) -> None:
        s = self.session
        if s is None or s.active:
            return
        s.start()
        self.runner_worker = self.run_worker(s.execute, name="runner", group="runner", thread=True,
                                             exit_on_error=False)
        self.refresh_view()

    def pause_run(self) -> None:
        if self.session is not None:
            self.session.pause()
            self.refresh_view()

    def resume_run(self) -> None:
        if self.session is not None:
            self.session.resume()
            self.refresh_view()

    def cancel_run(self) -> None:
        if self.session is not None:
            self.session.cancel()
            self.refresh_view()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is self.runner_worker and event.state in (WorkerState.SUCCESS, WorkerState.ERROR,
                                                                  WorkerState.CANCELLED):
            s = self.session
            if s is not None:
                self.drain()
                s.live.seed(s.run)  # the store's word on each stage (a cancelled one, say)
                if s.state == "finished":
                    self.notify(f"{s.name}: finished")
                elif s.state == "failed":
                    self.notify(s.error or "the run failed", severity="error", timeout=10)
            self.refresh_view()

    # events ----------------------------------------------------------------------------------------
    def drain(self) -> list:
        """Fold the buffered events into the live state and redraw the screen on show."""
        if self.session is None:
            return []
        events = self.session.drain()
        if events:
            self.refresh_view(events)
        return events

    def refresh_view(self, events: list | None = None) -> None:
        show = getattr(self.screen, "show_live", None)
        if show is not None:
            show(events or [])
        s = self.session
        state = (id(s), s.state if s else None, s.live.round if s else None,
                 tuple(st.status for st in s.live.stages.values()) if s else ())
        if state != self._bindings_state:  # the footer's keys depend on these; redrawing it is not free
            self._bindings_state = state
            self.refresh_bindings()

    # quitting --------------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """Cancel a working run and wait for its calls in flight, then leave."""
        s = self.session
        if s is not None and s.active and self.runner_worker is not None and not self.quitting:
            self.quitting = True
            s.cancel()
            self.refresh_view()
            self.notify("cancelling: waiting for the calls in flight to finish", timeout=QUIT_WAIT_S)
            try:
                await asyncio.wait_for(asyncio.shield(self.runner_worker.wait()), QUIT_WAIT_S)
            except (asyncio.TimeoutError, WorkerError):  # a slow or failed runner must not keep the user here
                logger.debug("quitting without waiting longer for the runner", exc_info=True)
        self.exit()

    async def on_unmount(self) -> None:
        if self.session is not None:
            if self.session.active:
                self.session.cancel()
            if self.runner_worker is None or self.runner_worker.is_finished:
                self.session.close()
