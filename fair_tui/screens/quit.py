"""Asked before quitting with unsaved edits in the setup form: a quit must not lose a config."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class QuitScreen(ModalScreen[str]):
    """Dismissed with "save" (save, then quit), "discard" (quit without saving) or "stay"."""

    BINDINGS = [Binding("escape", "dismiss('stay')", "Stay")]

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog"):
            yield Label("The setup form has unsaved changes. Save them before quitting?")
            with Horizontal(id="quit-buttons"):
                yield Button("Save and quit", id="save", variant="primary", compact=True)
                yield Button("Quit without saving", id="discard", variant="error", compact=True)
                yield Button("Stay", id="stay", compact=True)

    def on_mount(self) -> None:
        self.query_one("#save", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)
