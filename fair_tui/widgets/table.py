"""Filling a DataTable so that its first frame already has the columns' widths.

A DataTable measures the rows it is given only when it next idles; a frame drawn before then (the
first one after a screen opens, often) squeezes every column to its label, "run" or "ok". Sized
here from the cells, the columns are right from the frame the rows first appear in.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable


def fill_table(
    table: DataTable, labels: Sequence[str], rows: Sequence[tuple[str, Sequence[Text]]], max_width: int = 60
) -> None:
    """Replace the table's columns and rows (key, cells): each column as wide as its widest cell,
    up to ``max_width`` (a longer cell ends in "…")."""
    table.clear(columns=True)
    for i, label in enumerate(labels):
        width = max([cell_len(label), *(cells[i].cell_len for _, cells in rows)])
        table.add_column(label, width=min(max_width, width))
    for key, cells in rows:
        for cell in cells:
            cell.no_wrap, cell.overflow = True, "ellipsis"
        table.add_row(*cells, key=key)
