"""Results: accuracy per round, acceptance per teacher, reviewer agreement and cost (report.build),
and, for a run that is a variant of an experiment, the experiment's comparison."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from fair_core import experiment
from fair_core.errors import FairError
from fair_core.inert import inert
from fair_core.results.report import build, round_rows, test_set_line, usd

from ..session import Session
from .base import RunView

# borderless, one space between columns: the committee table fits 80 columns
TABLE: dict[str, Any] = {
    "title": "Accuracy per round",
    "title_justify": "left",
    "title_style": "bold underline",
    "box": None,
    "pad_edge": False,
    "collapse_padding": True,
}


def _v(x, fmt: str = "{}") -> str:
    return "-" if x is None else fmt.format(x)


def render(report: dict, budget: float | None) -> Group:
    rounds = Table(
        "round",
        "mistakes",
        "accepted",
        "no rat.",
        "failed",
        "test acc. before [95% CI]",
        "after [95% CI]",
        "vs. untrained",
        **TABLE,
    )
    for row in round_rows(report):
        rounds.add_row(*row)
    teachers = Table(
        "teacher",
        "accepted",
        "rate",
        "",
        "gives",
        "gets",
        "calls",
        "retry",
        "fail",
        "tokens",
        "cost $",
        **{**TABLE, "title": "Committee (mean review score given to peers / received from peers)"},
    )
    for name, s in report["per_teacher"].items():
        acceptance = s["acceptance"]
        bar = Text("█" * round((acceptance or 0) * 8), style="green")
        teachers.add_row(
            inert(name, markup=True),
            f"{s['accepted']}/{s['written']}",
            _v(acceptance, "{:.1%}"),
            bar,
            _v(s["mean_score_given"], "{:.2f}"),
            _v(s["mean_score_received"], "{:.2f}"),
            str(s["calls"]),
            str(s["retries"]),
            str(s["failures"]),
            f"{s['tokens']:,}",
            usd(s["cost_usd"]),
        )
    a = report["agreement"]
    hist = a["histogram"] or {}
    top = max(hist.values(), default=0) or 1
    scores = Table.grid(padding=(0, 1))
    for score, n in hist.items():
        scores.add_row(f"score {score}", Text("█" * max(1, round(n / top * 30)) if n else "", style="cyan"), str(n))
    cost = f"${usd(report['cost_usd'])}" + (f" of a ${budget:g} budget" if budget else "")
    return Group(
        rounds,
        Text(inert(test_set_line(report["test"])), style="dim"),
        Text(""),
        teachers,
        Text(""),
        Text.assemble(
            ("Reviewer agreement  ", "bold"),
            f"Krippendorff's alpha interval {_v(a['krippendorff_alpha_interval'])}, "
            f"ordinal {_v(a['krippendorff_alpha_ordinal'])} · Fleiss' kappa {_v(a['fleiss_kappa'])}",
        ),
        scores,
        Text(""),
        Text.assemble(
            ("Totals  ", "bold"),
            f"{report['items']} mistakes · {report['accepted_rationales']} "
            f"accepted rationales · {_v(report['items_without_rationale'])} items without one · "
            f"{report['failures']} failed calls · cost {cost}",
        ),
    )


def render_experiment(result: dict) -> Group:
    """The comparison `fair experiment` printed, for a run that is one of its variants."""
    table = Table(*experiment.headers(result), **{**TABLE, "title": "Experiment: the variants of this run's config"})
    for row in experiment.table_rows(result):
        table.add_row(*row)
    return Group(table, Text(experiment.summary_line(result), style="dim"))


class ResultsScreen(RunView):
    NAME = "results"
    BINDINGS = [Binding("g", "reload", "Refresh")]

    def run_body(self, session: Session) -> ComposeResult:
        yield VerticalScroll(Static("building the report…", id="report"), id="report-scroll")

    async def resumed(self) -> None:
        await super().resumed()
        self.action_reload()

    def action_reload(self) -> None:
        if self.shown is not None:
            self.load(self.shown)

    @work(thread=True, exclusive=True, group="report")
    def load(self, session: Session) -> None:
        report = render(build(session.path), session.config.committee.budget_usd)
        try:
            compared = experiment.read_result(session.path.parent)
        except FairError as e:  # a table an older fair wrote: the line says how to compare again
            report = Group(report, Text(""), Text(str(e), style="dim"))
        else:
            if compared is not None:
                report = Group(report, Text(""), render_experiment(compared))
        self.app.call_from_thread(self.show_report, report)

    def show_report(self, report: Group) -> None:
        self.query_one("#report", Static).update(report)
