"""What every screen shares: the nav bar, the footer, and being drawn from the open run's session
(when shown, and on each batch of events while on show)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..widgets.navbar import NavBar

if TYPE_CHECKING:
    from pathlib import Path

    from fair_core.config import RunConfig

    from ..session import Session


class Shell(Protocol):
    """What the screens use of the app that shows them (``fair_tui.app.FairApp``, the layer
    above, which the screens do not import): the open run's session, the runs folder, the
    screens' names and the app's actions."""

    SCREEN_NAMES: ClassVar[tuple[str, ...]]
    session: Session | None
    runs_root: Path

    def action_go(self, name: str) -> None: ...

    def new_config(self, config: RunConfig | None = None) -> None: ...

    def open_run(self, path: Path, session: Session | None = None) -> bool: ...

    def start_run(self) -> None: ...

    def pause_run(self) -> None: ...

    def resume_run(self) -> None: ...

    def cancel_run(self) -> None: ...


class View(Screen):
    NAME: ClassVar[str] = ""
    ready = False  # composed and mounted: show_live may query the widgets

    @property
    def fair(self) -> Shell:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield NavBar(self.NAME, self.fair.SCREEN_NAMES)
        yield from self.body()
        yield Footer()

    def body(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        self.ready = True

    async def on_screen_resume(self) -> None:
        await self.resumed()
        self.show_live()

    async def resumed(self) -> None:
        """Bring the screen up to date before it is drawn again."""

    def show_live(self) -> None:
        """Redraw from the open run's session: all a screen shows is kept there, whether or not
        the screen was on show when the events arrived."""
        if not self.ready:
            return
        s = self.fair.session
        self.query_one(NavBar).show_run(s.name if s else None, s.shown_state if s else None)


class RunView(View):
    """A screen about the open run: recomposed when another run is opened."""

    def __init__(self) -> None:
        super().__init__()
        self.shown: Session | None = None

    def compose(self) -> ComposeResult:
        self.shown = self.fair.session
        yield from super().compose()

    def body(self) -> ComposeResult:
        if self.shown is None:
            yield Static(
                "No run is open. Press [b]1[/] to pick one from the runs folder, or open the "
                "command palette (ctrl+p) for a new config.",
                classes="empty",
            )
        else:
            yield from self.run_body(self.shown)

    def run_body(self, session: Session) -> ComposeResult:
        yield from ()

    async def resumed(self) -> None:
        if self.shown is not self.fair.session:
            self.ready = False
            await self.recompose()
            self.ready = True
