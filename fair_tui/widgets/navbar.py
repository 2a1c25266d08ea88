"""The top line of every screen: the screens by number (clickable) and the open run's state."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.markup import escape
from textual.widgets import Static

STATE_STYLE = {
    "running": "green",
    "paused": "yellow",
    "cancelling": "yellow",
    "finished": "cyan",
    "cancelled": "yellow",
    "failed": "red",
    "idle": "dim",
}


class NavBar(Horizontal):
    def __init__(self, current: str, screens: tuple[str, ...]) -> None:
        super().__init__()
        self.current = current
        self.screens = screens

    def compose(self) -> ComposeResult:
        parts = []
        for i, name in enumerate(self.screens, 1):
            label = f" {i} {name.capitalize()} "
            parts.append(f"[reverse]{label}[/]" if name == self.current else f"[@click=app.go('{name}')]{label}[/]")
        yield Static("[b]FAIR[/] " + "".join(parts), id="nav-links")
        yield Static("", id="nav-run")

    def show_run(self, name: str | None, state: str | None) -> None:
        # the state first: on a narrow screen the name is what gives way
        text = "" if name is None else f"[{STATE_STYLE.get(state or '', 'dim')}]{state}[/] · {escape(name)}"
        label = self.query_one("#nav-run", Static)
        if label.content != text:  # an update lays the screen out again (the label's width is its text's)
            label.update(text)
