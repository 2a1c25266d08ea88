"""Runs: the run directories in a folder, where each stands, and keys to open, resume or start one.

Listing the folder is quick and reading each run's store is not, so the names are listed at once
and the rest of each row follows from a worker thread; the columns are sized from the cells each
time (widgets/table.py), so the table is drawn at its widths from its first frame.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.markup import escape
from textual.widgets import DataTable, Static

from fair_core import config as cfg
from fair_core.errors import FairError
from fair_core.experiment import is_experiment
from fair_core.host import get_host
from fair_core.inert import inert
from fair_core.results.report import usd
from fair_core.runs.store import StageStatus, Store

from ..session import is_run_dir
from ..widgets.table import fill_table
from .base import View

# "accepted": mistakes with at least one accepted rationale, of all the run's mistakes
COLUMNS = ("run", "task", "stage", "done", "accepted", "accuracy", "cost $")
MAX_WIDTH = 48  # a longer cell ends in "…"


def summarize(path: Path, name: str | None = None) -> tuple[str, ...]:
    """One table row from cheap store queries (report.build is too slow for a list of runs);
    ``name``: what the first column calls the run (default: its folder's name)."""
    name = name or path.name
    try:
        config = cfg.load(path / "config.toml")
    except FairError:
        return (name, "?", "bad config.toml", "", "", "", "")
    store = Store(path / "run.sqlite", readonly=True)
    try:
        stages = store.stages()
        done = sum(row.status == StageStatus.DONE for row in stages)
        # as the pipeline screen lists them: the config's (None: all) and any that ran outside them
        names = set(get_host().pipeline.ordered(config.stages)) | {row.stage for row in stages}
        last = stages[-1] if stages else None
        where = f"r{last.round} {last.stage} {last.status}" if last else "not started"
        mistakes = store.count_mistakes()
        accepted = store.count_accepted_items("rationale")
        rounds = store.answered_rounds()
        before = store.accuracy(0, "test", "before")
        after = store.accuracy(rounds[-1], "test", "after") if rounds else None
        accuracy = " → ".join(f"{a[0]:.3f}" for a in (before, after) if a) or "-"
        return (
            name,
            config.task.name,
            where,
            f"{done}/{config.rounds * len(names)}",
            f"{accepted}/{mistakes}" if mistakes else "-",
            accuracy,
            usd(store.spent_usd()),
        )
    finally:
        store.close()


def runs_in(root: Path) -> list[Path]:
    """The run directories in ``root``, and those in an experiment's folder there (its shared
    committee and one per variant)."""
    runs = []
    for p in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if is_run_dir(p):
            runs.append(p)
        elif is_experiment(p):
            runs += [run for run in sorted(p.iterdir()) if is_run_dir(run)]
    return runs


class RunsScreen(View):
    NAME = "runs"
    BINDINGS = [
        Binding("o", "open", "Open"),
        Binding("s", "start", "Start"),
        Binding("n", "new", "New"),
        Binding("c", "copy", "Copy"),
        Binding("g", "reload", "Refresh"),
    ]

    def body(self) -> ComposeResult:
        yield Static(id="runs-title")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)

    async def resumed(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        root = self.fair.runs_root
        self.query_one("#runs-title", Static).update(
            f"runs in [b]{escape(str(root))}[/] · enter/o open · s start or resume · n new config · "
            f"c copy the highlighted run's config"
        )
        dirs = runs_in(root)
        self.fill([(p, (str(p.relative_to(root)), "…", *[""] * (len(COLUMNS) - 2))) for p in dirs])
        self.scan(root, dirs)

    @work(thread=True, exclusive=True, group="scan")
    def scan(self, root: Path, dirs: list[Path]) -> None:
        rows = []
        for p in dirs:
            try:
                rows.append((p, summarize(p, str(p.relative_to(root)))))
            except Exception as e:  # noqa: BLE001 - one unreadable run must not hide the others
                rows.append((p, (str(p.relative_to(root)), "?", f"unreadable: {type(e).__name__}", "", "", "", "")))
        self.app.call_from_thread(self.fill, rows)

    def fill(self, rows: list[tuple[Path, tuple[str, ...]]]) -> None:
        table = self.query_one(DataTable)
        keep = table.cursor_row
        s = self.fair.session
        lines = []
        for path, row in rows:
            cells = [Text(inert(cell)) for cell in row]  # plain text: a folder name is not markup
            if s is not None and s.busy and path.resolve() == s.path.resolve():
                cells[2] = Text(s.shown_state, style="green")
            lines.append((str(path), cells))
        fill_table(table, COLUMNS, lines, MAX_WIDTH)
        if not rows:
            self.query_one("#runs-title", Static).update(
                f"no runs in [b]{escape(str(self.fair.runs_root))}[/] yet: press [b]n[/] for a new config"
            )
        elif keep < len(rows):
            table.move_cursor(row=keep)

    def selected(self) -> Path | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return Path(str(key.value))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        path = self.selected()
        if path is not None and self.fair.open_run(path):
            self.fair.action_go("pipeline")

    def action_start(self) -> None:
        path = self.selected()
        if path is not None and self.fair.open_run(path):
            self.fair.action_go("pipeline")
            self.fair.start_run()

    def action_new(self) -> None:
        self.fair.new_config()

    def action_copy(self) -> None:
        path = self.selected()
        if path is not None:
            self.fair.new_config(cfg.load(path / "config.toml"))
