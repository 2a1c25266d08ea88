"""Committee: a round's mistakes with what each teacher wrote, the review scores and the verdicts.

The table lists the mistakes (filterable); the detail pane shows the highlighted one: question,
the student's wrong answer, gold, the author x reviewer matrix of scores with each verdict, then
each teacher's feedback and rationale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Select, Static

from fair_core.inert import inert
from fair_core.runs.records import Mistake, Review, Verdict, teacher_of
from fair_core.runs.store import Store

from ..session import Session
from ..widgets.table import fill_table
from .base import RunView


@dataclass
class Item:
    mistake: Mistake
    writings: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, author) -> text
    reviews: dict[tuple[str, str, str], Review] = field(default_factory=dict)  # (kind, author, reviewer)
    verdicts: dict[tuple[str, str], Verdict] = field(default_factory=dict)  # (kind, author)

    def rationale_verdicts(self) -> list[Verdict]:
        return [v for (kind, _), v in self.verdicts.items() if kind == "rationale"]

    def accepted(self) -> int:
        return sum(v.accepted for v in self.rationale_verdicts())


def load_round(store: Store, round: int) -> list[Item]:
    """The round's mistakes with their verdicts: what the list and its filters need. Texts and
    reviews wait for :func:`load_item`, so a round of 16k mistakes opens in a moment."""
    items = {m.item_id: Item(m) for m in store.mistake_heads(round)}
    for v in store.verdicts(round, "rationale"):
        if v.item_id in items:
            items[v.item_id].verdicts[(v.kind, v.author)] = v
    return list(items.values())


def load_item(store: Store, round: int, item_id: str) -> Item:
    """One mistake with everything the committee wrote about it, for its detail pane."""
    item = Item(store.mistakes(round, item_id)[0])
    item.writings = {(w.kind, w.author): w.text for w in store.writings(round, item_id=item_id)}
    item.reviews = {(r.kind, r.author, r.reviewer): r for r in store.reviews(round, item_id=item_id)}
    item.verdicts = {(v.kind, v.author): v for v in store.verdicts(round, item_id=item_id)}
    return item


def keep(item: Item, how: str) -> bool:
    verdicts = item.rationale_verdicts()
    if how == "accepted":
        return any(v.accepted for v in verdicts)
    if how == "rejected":
        return any(not v.accepted for v in verdicts)
    if how == "no rationale":
        return bool(verdicts) and not any(v.accepted for v in verdicts)
    if how.startswith(("accepted from ", "rejected from ")):
        want, teacher = how.startswith("accepted"), how.rsplit(" ", 1)[1]
        return any(v.accepted == want and teacher_of(v.author) == teacher for v in verdicts)
    return True


def clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def mark(verdicts: list[Verdict]) -> Text:
    if not verdicts:
        return Text("·", style="dim")
    if len(verdicts) > 1:
        n = sum(v.accepted for v in verdicts)
        return Text(f"{n}/{len(verdicts)}", style="green" if n else "red")
    v = verdicts[0]
    value = "" if v.value is None else f" {v.value:.1f}"
    return Text(("✓" if v.accepted else "✗") + value, style="green" if v.accepted else "red")


def detail(item: Item, teachers: list[str]) -> Group:
    """The detail pane. Questions come from a dataset and writings from teachers: untrusted text,
    made inert so that no escape sequence in it reaches the terminal."""
    m = item.mistake
    parts: list = [
        Text.assemble(
            ("item ", "dim"),
            (inert(m.item_id), "bold"),
            ("  gold ", "dim"),
            (inert(m.gold), "bold green"),
            ("  student ", "dim"),
            (inert(m.wrong_answer or "-"), "bold red"),
        ),
        Text("Question", style="bold underline"),
        Text(inert(m.question)),
        Text("Student's wrong answer", style="bold underline"),
        Text(inert(m.wrong_output).strip()),
    ]
    for kind in ("rationale", "feedback"):
        matrix = review_matrix(item, kind, teachers)
        if matrix is not None:
            parts.append(matrix)
    for kind in ("feedback", "rationale"):
        for (k, author), text in sorted(item.writings.items(), key=lambda kv: _order(kv[0][1], teachers)):
            if k != kind:
                continue
            v = item.verdicts.get((kind, author))
            head = Text(f"{author} {kind}", style="bold underline")
            if v is not None:
                verdict = "accepted" if v.accepted else f"rejected ({inert(v.reason)})" if v.reason else "rejected"
                head.append(f"  {verdict}", style="green" if v.accepted else "red")
            parts += [head, Text(inert(text).strip())]
    return Group(*parts)


def _order(author: str, teachers: list[str]) -> tuple[int, str]:
    t = teacher_of(author)
    return (teachers.index(t) if t in teachers else len(teachers), author)


def review_matrix(item: Item, kind: str, teachers: list[str]) -> Table | None:
    """Rows: authors; columns: reviewers; cells: the parsed score ("?" when it did not parse)."""
    authors = sorted(
        {a for (k, a, _) in item.reviews if k == kind} | {a for (k, a) in item.verdicts if k == kind},
        key=lambda a: _order(a, teachers),
    )
    if not authors:
        return None
    reviewers = sorted({r for (k, _, r) in item.reviews if k == kind}, key=lambda r: _order(r, teachers))
    table = Table(
        title=f"{kind} reviews (author × reviewer)",
        title_justify="left",
        title_style="bold",
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("author")
    for r in reviewers:
        table.add_column(r, justify="center")
    table.add_column("verdict")
    for a in authors:
        cells = []
        for r in reviewers:
            rv = item.reviews.get((kind, a, r))
            cells.append(
                Text("") if rv is None else Text(str(rv.score)) if rv.score is not None else Text("?", style="yellow")
            )
        v = item.verdicts.get((kind, a))
        verdict = Text("-", style="dim") if v is None else mark([v])
        if v is not None and v.reason and not v.accepted:
            verdict.append(f" {inert(v.reason)}", style="dim")
        table.add_row(a, *cells, verdict)
    return table


PAGE = 500  # rows in the table at once


class CommitteeScreen(RunView):
    NAME = "committee"
    BINDINGS = [
        Binding("f", "focus_filter", "Filter"),
        Binding("[", "round(-1)", "Prev round", show=False),
        Binding("]", "round(1)", "Next round", show=False),
        Binding("<", "page(-1)", "Prev rows", show=False),
        Binding(">", "page(1)", "Next rows", show=False),
        Binding("g", "reload", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.round = 0
        self.items: list[Item] = []
        self.matching: list[Item] = []  # the items that pass the filter
        self.page = 0
        self.shown_items: dict[str, Item] = {}  # the page of them in the table

    def run_body(self, session: Session) -> ComposeResult:
        teachers = [t.name for t in session.config.teachers]
        filters = [
            "all",
            "accepted",
            "rejected",
            "no rationale",
            *(f"accepted from {t}" for t in teachers),
            *(f"rejected from {t}" for t in teachers),
        ]
        with Horizontal(id="committee-bar"):
            yield Static(id="committee-title")
            yield Select([(f, f) for f in filters], value="all", allow_blank=False, compact=True, id="filter")
        with Horizontal(id="committee-main"):
            yield DataTable(id="mistakes", cursor_type="row", zebra_stripes=True)
            with Vertical(id="detail-pane"):
                yield VerticalScroll(Static(id="detail"), id="detail-scroll")

    async def resumed(self) -> None:
        changed = self.shown is not self.fair.session
        await super().resumed()
        if changed:
            self.round = 0
        self.action_reload()

    def action_reload(self) -> None:
        if self.shown is not None:
            self.load(self.shown, self.round)

    def action_round(self, step: int) -> None:
        s = self.shown
        if s is not None and 0 <= self.round + step < s.config.rounds:
            self.round += step
            self.load(s, self.round)

    def action_focus_filter(self) -> None:
        if self.shown is not None:
            self.query_one("#filter", Select).focus()

    @work(thread=True, exclusive=True, group="committee")
    def load(self, session: Session, round: int) -> None:
        items = load_round(session.run.store, round)
        self.app.call_from_thread(self.fill, items)

    def fill(self, items: list[Item]) -> None:
        self.items = items
        self.show_items()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.page = 0
        self.show_items()

    def action_page(self, step: int) -> None:
        if 0 <= (self.page + step) * PAGE < len(self.matching):
            self.page += step
            self.show_items(refilter=False)

    def show_items(self, refilter: bool = True) -> None:
        """The page of items that pass the filter: a table holds PAGE rows at most, since it
        measures every cell it is given, and a round may have 16k mistakes."""
        s = self.shown
        if s is None:
            return
        if refilter:
            how = str(self.query_one("#filter", Select).value)
            self.matching = [item for item in self.items if keep(item, how)]
            self.page = min(self.page, max(0, (len(self.matching) - 1) // PAGE))
        teachers = [t.name for t in s.config.teachers]
        first = self.page * PAGE
        self.shown_items = {item.mistake.item_id: item for item in self.matching[first : first + PAGE]}
        rows = []
        for item in self.shown_items.values():
            m = item.mistake
            by_teacher = [mark([v for v in item.rationale_verdicts() if teacher_of(v.author) == t]) for t in teachers]
            verdicts = item.rationale_verdicts()
            ok = Text(
                f"{item.accepted()}/{len(verdicts)}" if verdicts else "-",
                style="red" if verdicts and not item.accepted() else "",
            )
            texts = (inert(m.item_id), clip(inert(m.gold), 10), clip(inert(m.wrong_answer or "-"), 10))
            question = Text(clip(" ".join(inert(m.question).split()), 60))
            rows.append((m.item_id, [*map(Text, texts), ok, *by_teacher, question]))
        labels = ["item", "gold", "student", "ok", *teachers, "question"]
        fill_table(self.query_one("#mistakes", DataTable), labels, rows)
        paged = (
            f" · rows {first + 1}-{first + len(self.shown_items)} (< > for more)" if len(self.matching) > PAGE else ""
        )
        self.query_one("#committee-title", Static).update(
            f"round {self.round} · {len(self.matching)} of {len(self.items)} mistakes{paged}"
        )
        if self.shown_items:
            self.show_detail(next(iter(self.shown_items)))
        else:
            self.query_one("#detail", Static).update(
                Text("no mistakes in this round yet" if not self.items else "no item matches the filter", style="dim")
            )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value in self.shown_items:
            self.show_detail(event.row_key.value)

    def show_detail(self, item_id: str) -> None:
        if self.shown is None:
            return
        teachers = [t.name for t in self.shown.config.teachers]
        item = load_item(self.shown.run.store, self.round, item_id)
        self.query_one("#detail", Static).update(detail(item, teachers))
        self.query_one("#detail-scroll").scroll_home(animate=False)
