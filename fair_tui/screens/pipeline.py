"""Pipeline: each stage with its state and progress, the live call counters, and the event log
(the session's: the lines logged while another screen was on show are written when this one is
shown again)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.markup import escape
from textual.widgets import Label, ProgressBar, RichLog, Static

from fair_core.host import get_host
from fair_core.results.report import usd
from fair_core.runs.store import StageStatus
from fair_core.stages import Need

from ..session import LOG_LINES, Session, StageState
from .base import RunView

STOPPED = "stopped"  # shown for a stage still marked running when no process works on the run
PAUSED = "paused"  # shown for the stage at work while the run is paused
STATUS_STYLE = {
    StageStatus.PENDING: "dim",
    StageStatus.RUNNING: "green",
    StageStatus.DONE: "cyan",
    StageStatus.PARTIAL: "yellow",
    StageStatus.CANCELLED: "yellow",
    STOPPED: "yellow",
    PAUSED: "yellow",
    StageStatus.INTERRUPTED: "yellow",
    StageStatus.STALE: "magenta",
    StageStatus.FAILED: "red",
}


def tokens(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


class PipelineScreen(RunView):
    NAME = "pipeline"
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("p", "pause", "Pause"),
        Binding("r", "resume", "Resume"),
        Binding("x", "cancel", "Cancel"),
    ]

    def run_body(self, session: Session) -> ComposeResult:
        self._texts: dict[str, str] = {}
        self._logged = 0  # of the session's log lines, those written to this screen's log
        yield Static(id="run-title")
        with Grid(id="stages"):
            for stage in session.live.stage_names:
                yield Label(stage, classes="stage-name")
                yield Label("", id=f"state-{stage}", classes="stage-state")
                yield ProgressBar(total=None, show_eta=False, id=f"bar-{stage}")
                yield Label("", id=f"count-{stage}", classes="stage-count")
        yield Static(id="counters")
        yield RichLog(id="log", max_lines=LOG_LINES, markup=True, wrap=True)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        s = self.fair.session
        if action not in ("start", "pause", "resume", "cancel"):
            return True
        if s is None:
            return False
        if action == "start":
            return not s.busy
        if action == "pause":
            live = s.live
            in_committee = any(
                live.stage(live.round, st).status == StageStatus.RUNNING
                for st in get_host().pipeline.needing(Need.COMMITTEE)
            )
            return s.state == "running" and in_committee
        if action == "resume":
            return s.state == "paused"
        return s.state in ("running", "paused")

    def action_start(self) -> None:
        self.fair.start_run()

    def action_pause(self) -> None:
        self.fair.pause_run()

    def action_resume(self) -> None:
        self.fair.resume_run()

    def action_cancel(self) -> None:
        self.fair.cancel_run()

    def show_live(self) -> None:
        super().show_live()
        s = self.shown
        if s is None or not self.ready:
            return
        live, cfg = s.live, s.config
        # rounds count from 0, as the events, the CLI and the report count them
        rounds = f"round {live.round}" + (f" of 0-{cfg.rounds - 1}" if cfg.rounds > 1 else "")
        teachers = ", ".join(t.name for t in cfg.teachers) or "no teachers"
        driver = f" · run by pid {s.driver}" if s.state == "watching" and s.driver else ""
        self._set(
            "#run-title",
            f"[b]{escape(s.name)}[/] · {escape(cfg.task.name)} · {escape(teachers)} · {rounds}{driver}",
        )
        for stage in live.stage_names:
            self._stage_row(stage, live.stage(live.round, stage), s.busy, s.paused)
        budget = cfg.committee.budget_usd
        cost = f"${usd(live.cost_usd)}" + (f" of ${budget:g}" if budget else "")
        if live.budget_reached:
            cost = f"[red]{cost} (budget reached)[/]"
        paused = " [yellow](paused: no new calls)[/]" if s.paused else ""
        self._set(
            "#counters",
            f"calls in flight [b]{live.in_flight}[/]{paused} · done [b]{live.done}[/] · "
            f"cached {live.cached} · retried {live.retried} · failed {live.failed} · "
            f"tokens {tokens(live.tokens)} · cost {cost}",
        )
        log = self.query_one(RichLog)
        for line in s.log_since(self._logged):
            log.write(line)
        self._logged = s.logged

    def _stage_row(self, stage: str, st: StageState, working: bool, paused: bool) -> None:
        """``working``: a process (this UI's runner, or another) works on the run."""
        status: str = st.status
        if status == StageStatus.RUNNING and not working:
            status = STOPPED
        elif status == StageStatus.RUNNING and paused:
            status = PAUSED
        self._set(f"#state-{stage}", f"[{STATUS_STYLE[status]}]{status}[/]")
        bar = self.query_one(f"#bar-{stage}", ProgressBar)
        if st.status == StageStatus.DONE:
            bar.update(total=st.total or 1, progress=st.total or 1)
        elif st.total:
            bar.update(total=st.total, progress=st.done)
        elif status == StageStatus.RUNNING:
            bar.update(total=None)  # no count yet: the bar pulses
        else:
            bar.update(total=1, progress=0)
        split = f" {st.split}" if st.split else ""  # the split whose items are counted
        self._set(f"#count-{stage}", f"{st.done}/{st.total}{split}" if st.total else "")

    def _set(self, selector: str, text: str) -> None:
        """Update a fixed-size label, only when its text changes (and with no layout pass)."""
        if self._texts.get(selector) != text:
            self._texts[selector] = text
            self.query_one(selector, Static).update(text, layout=False)
