"""The FAIR terminal UI: runs, setup, the live pipeline, the committee's reviews, training and results.

The app owns at most one open run (a :class:`~fair_tui.session.Session`). Its runner works on a
Textual thread worker; the first engine event of a batch posts the app an :class:`EventsArrived`
message, whose handler drains the session's buffer into its state and log (at most once per
``DRAIN_S``) and redraws the screen on show; the others draw from the session when shown. Quitting
asks first when the setup form has unsaved edits, then cancels the runner and waits for the calls
in flight, so the run directory stays resumable by ``fair run``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, cast

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.reactive import var
from textual.screen import Screen
from textual.worker import Worker, WorkerError, WorkerState

from fair_core.errors import FairError
from fair_core.inert import inert

from .screens import SCREEN_TYPES
from .screens.base import View
from .screens.quit import QuitScreen
from .screens.setup import SetupScreen
from .session import Session, is_run_dir

if TYPE_CHECKING:
    from fair_core.config import RunConfig

logger = logging.getLogger(__name__)

DRAIN_S = 0.05
FOLLOW_S = 0.5  # how often an open run that this UI does not run is checked for another process's work
QUIT_WAIT_S = 30.0


class EventsArrived(Message):
    """The open run's engine published events: posted from the engine's thread by the first event
    of a batch; the handler folds in every event buffered by then."""


class FairApp(App):
    """``fair tui [CONFIG | RUN_DIR | RUNS_FOLDER]``."""

    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses may live elsewhere
    TITLE = "FAIR"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    # the screens' names in the order of their number keys, which the nav bar shows (Textual's own
    # SCREENS would build them lazily; they are installed at mount instead)
    SCREEN_NAMES = tuple(SCREEN_TYPES)
    BINDINGS = [
        *(Binding(str(i), f"go('{name}')", name.capitalize(), show=False) for i, name in enumerate(SCREEN_NAMES, 1)),
        Binding("q", "quit", "Quit"),
    ]
    # the open run's state, round and stage statuses: the footer's keys depend on them, and
    # redrawing it is not free, so it is redrawn only when they change
    run_status: var[tuple] = var(())

    def __init__(self, target: str | None = None) -> None:
        super().__init__()
        self.target = Path(target) if target else None
        self.runs_root = Path("runs")
        self.session: Session | None = None
        self.runner_worker: Worker | None = None
        self.quitting = False
        self._drained_at = 0.0

    # screens -------------------------------------------------------------------------------------
    def on_mount(self) -> None:
        for name, cls in SCREEN_TYPES.items():
            self.install_screen(cls(), name)
        first = "runs"
        target = self.target
        if target is not None and target.is_dir() and is_run_dir(target):
            self.runs_root = target.parent
            first = "pipeline" if self.open_run(target) else "runs"
        elif target is not None and (target.suffix == ".toml" or target.is_file()):
            self.setup_screen().load_file(target)
            first = "setup"
        elif target is not None:
            self.runs_root = target
        self.push_screen(first)
        self.set_interval(FOLLOW_S, self.follow)

    def setup_screen(self) -> SetupScreen:
        """The setup form, as its own type (Textual's lookup by name says only Screen)."""
        return cast(SetupScreen, self.get_screen("setup"))

    def action_go(self, name: str) -> None:
        if getattr(self.screen, "NAME", None) == name or self.screen.is_modal:
            return
        self.switch_screen(name)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name in self.SCREEN_NAMES:
            yield SystemCommand(f"Go to {name}", f"show the {name} screen", lambda n=name: self.action_go(n))
        yield SystemCommand("New config", "a new run config in the setup form", self.new_config)
        if self.session is not None:
            s = self.session
            if not s.busy:

                def start() -> None:
                    self.action_go("pipeline")
                    self.start_run()

                yield SystemCommand("Start run", f"run or resume {s.name}", start)
            if s.state == "running":
                yield SystemCommand("Pause run", "stop starting teacher calls; those in flight finish", self.pause_run)
            if s.state == "paused":
                yield SystemCommand("Resume run", "start teacher calls again", self.resume_run)
            if s.active:
                yield SystemCommand("Cancel run", "stop after the calls in flight; resumable later", self.cancel_run)

    def new_config(self, config: RunConfig | None = None) -> None:
        """The setup form on a new config: the defaults, or a copy of ``config`` (a run's)."""
        self.setup_screen().load_config(config, None)
        self.action_go("setup")

    # the open run ----------------------------------------------------------------------------------
    def open_run(self, path: Path, session: Session | None = None) -> bool:
        """Make ``path`` the open run; False (and a notice) when another run is still working."""
        if self.session is not None and self.session.path.resolve() == path.resolve() and session is None:
            return True
        if self.session is not None and self.session.active:
            self.notify(
                f"{self.session.name} is still running: cancel it first (x on the pipeline)", severity="warning"
            )
            return False
        try:
            new = session or Session(path)
        except FairError as e:
            self.notify(inert(str(e)), severity="error", markup=False)
            return False
        if self.session is not None:
            self.session.close()
        self.session = new
        new.wake = lambda: self.post_message(EventsArrived())  # thread-safe
        new.follow()
        return True

    def follow(self) -> None:
        """Follow the open run while another process works on it (see Session.follow)."""
        if self.session is not None and self.session.follow():
            self.refresh_view()

    def start_run(self) -> None:
        s = self.session
        if s is None or s.active:
            return
        if s.state == "watching":
            self.notify(f"{s.name} is in use by another fair process (pid {s.driver}): it is followed here")
            return
        s.start()
        self.runner_worker = self.run_worker(s.execute, name="runner", group="runner", thread=True, exit_on_error=False)
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
        if event.worker is self.runner_worker and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            s = self.session
            if s is not None:
                self.drain()
                s.live.seed(s.run)  # the store's word on each stage (a cancelled one, say)
                if s.state == "finished":
                    self.notify(f"{s.name}: finished")
                elif s.state == "failed":
                    self.notify(inert(s.error or "the run failed"), severity="error", timeout=10, markup=False)
                elif s.error:  # refused: another process works on the run, and is followed instead
                    self.notify(inert(s.error), severity="warning", markup=False)
                    self.follow()
            self.refresh_view()

    # events ----------------------------------------------------------------------------------------
    def on_events_arrived(self, message: EventsArrived) -> None:
        wait = self._drained_at + DRAIN_S - time.monotonic()
        if wait > 0:  # a burst is drained once per DRAIN_S: events keep coming, the UI keeps up
            self.set_timer(wait, self.drain)
        else:
            self.drain()

    def drain(self) -> list:
        """Fold the buffered events into the session and redraw the screen on show."""
        self._drained_at = time.monotonic()
        if self.session is None:
            return []
        events = self.session.drain()
        if events:
            self.refresh_view()
        return events

    def refresh_view(self) -> None:
        """Redraw the screen on show from the session (a hidden one redraws when shown again)."""
        if isinstance(self.screen, View):
            self.screen.show_live()
        s = self.session
        self.run_status = (
            (id(s), s.state, s.paused, s.live.round, tuple(st.status for st in s.live.stages.values())) if s else ()
        )

    def watch_run_status(self) -> None:
        self.refresh_bindings()

    # quitting --------------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        """Ask first when the setup form has unsaved edits; then leave."""
        if isinstance(self.screen, QuitScreen):
            return
        if self.setup_screen().unsaved():
            self.push_screen(QuitScreen(), self.quit_answered)
        else:
            await self.leave()

    async def quit_answered(self, answer: str | None) -> None:
        if answer == "save" and self.setup_screen().action_save() is None:
            return  # the form does not validate: its error is on show, and the user stays to fix it
        if answer in ("save", "discard"):
            await self.leave()

    async def leave(self) -> None:
        """Cancel a working run and wait for its calls in flight, then leave."""
        s = self.session
        if s is not None and s.active and self.runner_worker is not None and not self.quitting:
            self.quitting = True
            s.cancel()
            self.refresh_view()
            self.notify("cancelling: waiting for the calls in flight to finish", timeout=QUIT_WAIT_S)
            try:
                await asyncio.wait_for(asyncio.shield(self.runner_worker.wait()), QUIT_WAIT_S)
            except (TimeoutError, WorkerError):  # a slow or failed runner must not keep the user here
                logger.debug("quitting without waiting longer for the runner", exc_info=True)
        self.exit()

    async def on_unmount(self) -> None:
        if self.session is not None:
            if self.session.active:
                self.session.cancel()
            if self.runner_worker is None or self.runner_worker.is_finished:
                self.session.close()
