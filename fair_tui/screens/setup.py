"""Setup: a form over the run config, validated live by the same pydantic models the CLI uses.

The form edits a copy of the config's own mapping, so keys it does not show (prompts, teacher
params, LoRA settings) are kept as they were. Every change assembles that mapping, runs
``fair_core.config.validate`` on it, and puts the ConfigError line under the field whose key it
names. Saving writes ``fair_core.config.dump``, the TOML that ``fair run`` reads.

Esc leaves the field being edited, so that the app's keys (1-6 for the screens, q) work again
without the mouse. The form remembers what it last loaded or saved, so that quitting with unsaved
edits asks first.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.markup import escape
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from fair_core import config as cfg
from fair_core.errors import ConfigError, FairError
from fair_core.inert import inert
from fair_core.runs.rundir import Run

from ..session import Session
from .base import View

VALIDATE_DELAY_S = 0.1
MISSING = object()  # a field left empty: its key is removed, so the config's default applies

# (key, label, kind): kind is text | number | bool | list, or choice:<registry> / choice:literal.
SECTIONS: list[tuple[str, list[tuple[str, str, str]]]] = [
    (
        "Task",
        [
            ("task.name", "task", "choice:tasks"),
            ("task.path", "data file", "text"),  # the dataset task's: your own data (docs/tasks.md)
            ("task.answer", "answer kind", "text"),
            ("task.train_limit", "train limit", "number"),
            ("task.test_limit", "test limit", "number"),
            ("task.mistakes_file", "mistakes file", "text"),
            ("task.data_dir", "data dir", "text"),
        ],
    ),
    (
        "Student",
        [
            ("student.backend", "backend", "choice:students"),
            ("student.model", "model", "text"),
            ("student.batch_size", "batch size", "number"),
            ("student.max_new_tokens", "max new tokens", "number"),
        ],
    ),
    (
        "Committee",
        [
            ("committee.assignment", "reviewers", "choice:literal"),
            ("committee.k", "k reviewers", "number"),
            ("committee.parser", "score parser", "choice:parsers"),
            ("committee.policy", "review policy", "choice:policies"),
            ("committee.threshold", "threshold", "number"),
            ("committee.review_feedback", "review feedback", "bool"),
            ("committee.verify_answer", "verify answer", "bool"),
            ("committee.samples", "samples", "number"),
            ("committee.budget_usd", "budget $", "number"),
        ],
    ),
    (
        "Training",
        [
            ("train.alpha", "alpha", "number"),
            ("train.epochs", "epochs", "number"),
            ("train.method", "method", "choice:literal"),
            ("train.learning_rate", "learning rate", "number"),
            ("train.batch_size", "batch size", "number"),
            ("train.max_steps", "max steps", "number"),
        ],
    ),
    ("Run", [("rounds", "rounds", "number"), ("stages", "stages", "list")]),
]
TEACHER_FIELDS = [
    ("name", "name", "text"),
    ("backend", "backend", "choice:teachers"),
    ("model", "model", "text"),
    ("api_key_env", "key env var", "text"),
    ("api_base", "api base", "text"),
    ("concurrency", "concurrency", "number"),
    ("rpm", "requests/min", "number"),
    ("tpm", "tokens/min", "number"),
    ("timeout_s", "timeout s", "number"),
    ("max_retries", "max retries", "number"),
]
_LONG_INPUT = re.compile(r" \(got .{60,}\)$", re.S)
_ERROR_KEY = re.compile(r"config error: (?:(?:unknown|missing) key '([^']+)'|([\w.]+): )")


def error_key(message: str) -> str | None:
    """The dotted key a ConfigError line names, if any."""
    m = _ERROR_KEY.match(message)
    return (m.group(1) or m.group(2)) if m else None


def literal_choices(dotted: str) -> list[str]:
    """The allowed values of a Literal config field, read from the pydantic model."""
    model: Any = cfg.RunConfig  # a pydantic model class, then the annotation of each part
    *path, last = dotted.split(".")
    for part in path:
        model = model.model_fields[part].annotation
    return [str(v) for v in typing.get_args(model.model_fields[last].annotation)]


def get(data: dict, dotted: str):
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def put(data: dict, dotted: str, value) -> None:
    if value is MISSING:
        *path, last = dotted.split(".")
        node = get(data, ".".join(path)) if path else data
        if isinstance(node, dict):
            node.pop(last, None)
    else:
        cfg.set_key(data, dotted, value)


class Field(Vertical):
    """A label and an editor on one line, and under them the error that names this field's key."""

    def __init__(
        self, key: str, label: str, kind: str, value, choices: list[str] | None = None, named: bool = True
    ) -> None:
        super().__init__(classes="field")
        self.key, self.label, self.kind = key, label, kind
        self.error = ""
        wid = "f-" + key.replace(".", "-") if named else None  # a teacher's fields repeat: no ids
        if kind == "bool":
            self.editor: Widget = Checkbox(value=bool(value), compact=True, id=wid)
        elif kind.startswith("choice"):
            options = list(dict.fromkeys([*(choices or []), *([str(value)] if value else [])]))
            self.editor = Select(
                [(c, c) for c in options], value=str(value) if value else Select.NULL, compact=True, id=wid
            )
        else:
            text = ",".join(value or ()) if kind == "list" else "" if value is None else str(value)
            self.editor = Input(text, compact=True, id=wid)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Label(self.label, classes="field-label")
            yield self.editor
        yield Static("", classes="field-error")

    def value(self):
        e = self.editor
        if isinstance(e, Checkbox):
            return e.value
        if isinstance(e, Select):
            return MISSING if e.value is Select.NULL else e.value
        raw = cast(Input, e).value.strip()
        if not raw:
            return MISSING
        if self.kind == "list":
            return [part.strip() for part in raw.split(",") if part.strip()]
        if self.kind == "number":
            return cfg.parse_override(f"v={raw}")[1]
        return raw

    def show_error(self, text: str) -> None:
        if text == self.error:
            return
        self.error = text
        self.query_one(".field-error", Static).update(Content(inert(text)))
        self.set_class(bool(text), "-invalid")


class TeacherForm(Vertical):
    """One teacher's fields, over its own mapping (params, options and the rest are kept)."""

    def __init__(self, data: dict, choices: list[str]) -> None:
        super().__init__(classes="teacher")
        self.data = data
        self.fields = [Field(k, label, kind, data.get(k), choices, named=False) for k, label, kind in TEACHER_FIELDS]

    def compose(self) -> ComposeResult:
        with Horizontal(classes="teacher-head"):
            yield Label("teacher", classes="teacher-title")
            yield Button("remove", compact=True, classes="remove-teacher")
        yield from self.fields

    def assemble(self) -> dict:
        data = dict(self.data)
        for f in self.fields:
            put(data, f.key, f.value())
        return data


class SetupScreen(View):
    NAME = "setup"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("ctrl+r", "run", "Save and run"),
        Binding("ctrl+t", "add_teacher", "Add teacher"),
        Binding("escape", "leave_field", "Leave field", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.base: dict = cfg.RunConfig().model_dump(mode="json", exclude_none=True)
        self.path: Path | None = None
        self.config: cfg.RunConfig | None = None
        self._timer: Timer | None = None
        self._saved: tuple | None = None  # the form as last loaded or saved (None: never composed)

    # loading ---------------------------------------------------------------------------------------
    def load_file(self, path: Path) -> None:
        """Edit the config file at ``path`` (a new one when it does not exist yet)."""
        try:
            config = cfg.load(path) if path.exists() else None
        except FairError as e:
            self.app.notify(inert(str(e)), severity="error", timeout=10, markup=False)
            config = None
        self.load_config(config, path)

    def load_config(self, config: cfg.RunConfig | None, path: Path | None) -> None:
        self.base = (config or cfg.RunConfig()).model_dump(mode="json", exclude_none=True)
        self.path = path
        if self.is_mounted:
            self.call_later(self._rebuild)

    async def _rebuild(self) -> None:
        await self.recompose()
        self.validate_form()
        self._saved = self.edits()

    def _choices(self, kind: str, key: str) -> list[str]:
        if kind == "choice:literal":
            return literal_choices(key)
        from fair_core.host import get_host

        return get_host().names(kind.split(":", 1)[1])

    def body(self) -> ComposeResult:
        with VerticalScroll(id="form"):
            yield Field("file", "config file", "text", str(self.path or "run.toml"))
            for title, fields in SECTIONS:
                yield Label(title, classes="section")
                for key, label, kind in fields:
                    yield Field(
                        key,
                        label,
                        kind,
                        get(self.base, key),
                        self._choices(kind, key) if kind.startswith("choice") else None,
                    )
                if title == "Task":
                    yield Label("Teachers", classes="section")
                    for t in self.base.get("teachers", []):
                        yield TeacherForm(dict(t), self._choices("choice:teachers", ""))
                    yield Button("+ add teacher", compact=True, id="add-teacher")
        yield Static(id="status")

    def on_mount(self) -> None:
        self.validate_form()
        self._saved = self.edits()

    async def resumed(self) -> None:
        self.validate_form()

    # validating ------------------------------------------------------------------------------------
    def on_input_changed(self) -> None:
        self.validate_soon()

    def on_select_changed(self) -> None:
        self.validate_soon()

    def on_checkbox_changed(self) -> None:
        self.validate_soon()

    def validate_soon(self) -> None:
        """Validate once typing pauses: a keystroke costs nothing, the check follows within 0.1 s."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(VALIDATE_DELAY_S, self.validate_form)

    def assemble(self) -> dict:
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.base.items()}
        for f in self.query("#form > Field").results(Field):
            if f.key != "file":
                put(data, f.key, f.value())
        data["teachers"] = [t.assemble() for t in self.query(TeacherForm)]
        return data

    def validate_form(self) -> cfg.RunConfig | None:
        """Validate the form; show the error under the field it names. None when invalid."""
        from fair_core.host import get_host

        for f in self.query(Field):
            f.show_error("")
        status = self.query_one("#status", Static)
        try:
            config = cfg.validate(self.assemble())
            get_host().pipeline.check(config.stages)  # the schema knows no stage names; the host's pipeline does
            self.config = config
        except ConfigError as e:
            self.config = None
            message = _LONG_INPUT.sub(" (got …)", str(e))  # a whole-config error quotes the whole config
            field = self._field(error_key(message) or "")
            if field is not None:
                field.show_error(message.removeprefix("config error: "))
            status.update(Content.styled(inert(message), "red"))
            return None
        status.update(
            f"[green]valid[/] · ctrl+s saves to {escape(self.file_path().as_posix())} · "
            f"ctrl+r saves and runs in {escape(self.run_dir().as_posix())}"
        )
        return self.config

    def _field(self, key: str) -> Field | None:
        m = re.match(r"teachers\.(\d+)\.(\w+)", key)
        if m:
            forms = list(self.query(TeacherForm))
            i = int(m.group(1))
            return next((f for f in forms[i].fields if f.key == m.group(2)), None) if i < len(forms) else None
        return next((f for f in self.query("#form > Field").results(Field) if f.key == key), None)

    def file_path(self) -> Path:
        value = self.query_one("#f-file", Input).value.strip()
        return Path(value or "run.toml")

    def run_dir(self) -> Path:
        return self.fair.runs_root / self.file_path().stem

    # editing ---------------------------------------------------------------------------------------
    def action_leave_field(self) -> None:
        self.set_focus(None)

    def edits(self) -> tuple:
        return self.file_path(), self.assemble()

    def unsaved(self) -> bool:
        """Whether the form differs from what it last loaded or saved."""
        return self._saved is not None and self.edits() != self._saved

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "add-teacher":
            await self.action_add_teacher()
        elif event.button.has_class("remove-teacher"):
            form = next(a for a in event.button.ancestors if isinstance(a, TeacherForm))
            await form.remove()
            self.validate_form()

    async def action_add_teacher(self) -> None:
        names = {t.assemble().get("name") for t in self.query(TeacherForm)}
        n = 1 + len(names)
        while f"teacher{n}" in names:
            n += 1
        form = TeacherForm(
            {"name": f"teacher{n}", "backend": "litellm", "model": ""}, self._choices("choice:teachers", "")
        )
        await self.query_one("#form").mount(form, before=self.query_one("#add-teacher"))
        form.fields[2].editor.focus()  # the model: the one field a new teacher always needs
        self.validate_form()

    # saving ----------------------------------------------------------------------------------------
    def action_save(self) -> Path | None:
        config = self.validate_form()
        if config is None:
            self.app.notify("fix the config error first", severity="error")
            return None
        path = self.file_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(cfg.dump(config))
        self.path = path
        self._saved = self.edits()
        self.app.notify(f"saved {path}")
        return path

    def action_run(self) -> None:
        s = self.fair.session
        if s is not None and s.active:
            self.app.notify(f"{s.name} is still running: cancel it first", severity="warning")
            return
        if self.action_save() is None:
            return
        target = self.run_dir()
        try:
            session = Session(target, Run(target, self.config))
        except FairError as e:
            self.query_one("#status", Static).update(Content.styled(inert(str(e)), "red"))
            return
        for line in session.run.changes:
            self.app.notify(line)
        if self.fair.open_run(target, session):
            self.fair.action_go("pipeline")
            self.fair.start_run()
