"""A line plot drawn with braille dots: several series, a y axis with its range, x at the bottom.

Each terminal cell holds a 2x4 grid of dots, so a 60x10 widget plots 120x40 points: loss curves
stay readable at 80x24 without any plotting dependency.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

# The dot bit of braille cell column x (0-1), row y (0-3): U+2800 + the sum of the bits set.
DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


class LinePlot(Widget):
    DEFAULT_CSS = "LinePlot { height: 1fr; min-height: 5; }"

    def __init__(self, styles: dict[str, str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.series_styles = styles  # series name -> rich style, in drawing order
        self.series: dict[str, list[tuple[float, float]]] = {}

    def set_series(self, series: dict[str, list[tuple[float, float]]]) -> None:
        self.series = {k: v for k, v in series.items() if v}
        self.refresh()

    def render(self) -> Text:
        width, height = self.size
        points = [p for s in self.series.values() for p in s]
        if not points or width < 12 or height < 3:
            return Text("no data yet", style="dim")
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        if y1 == y0:
            y0, y1 = y0 - 0.5, y1 + 0.5
        x1 = x1 if x1 > x0 else x0 + 1
        label_w = max(len(_fmt(y0)), len(_fmt(y1))) + 1
        cols, rows = width - label_w, height - 1
        bits = [[0] * cols for _ in range(rows)]
        owner: list[list[str | None]] = [[None] * cols for _ in range(rows)]
        px_w, px_h = cols * 2, rows * 4

        def pixel(x: float, y: float) -> tuple[int, int]:
            return (round((x - x0) / (x1 - x0) * (px_w - 1)), round((y1 - y) / (y1 - y0) * (px_h - 1)))

        for name in self.series_styles:
            pts = sorted(self.series.get(name, []))
            last = None
            for x, y in pts:
                p = pixel(x, y)
                for cx, cy in _segment(last or p, p):
                    bits[cy // 4][cx // 2] |= DOTS[cy % 4][cx % 2]
                    owner[cy // 4][cx // 2] = name
                last = p
        out = Text(no_wrap=True, overflow="crop")
        for r in range(rows):
            label = _fmt(y1) if r == 0 else _fmt(y0) if r == rows - 1 else ""
            out.append(label.rjust(label_w - 1) + "┤", style="dim")
            for c in range(cols):
                name = owner[r][c]
                out.append(chr(0x2800 + bits[r][c]), style=self.series_styles[name] if name else "")
            out.append("\n")
        left, right = _fmt(x0), _fmt(x1)
        out.append(" " * label_w + left + right.rjust(cols - len(left)), style="dim")
        return out


def _segment(a: tuple[int, int], b: tuple[int, int]) -> list[tuple[int, int]]:
    """The dots of a straight line from a to b (Bresenham)."""
    (x, y), (x2, y2) = a, b
    dx, dy = abs(x2 - x), -abs(y2 - y)
    sx, sy = (1 if x < x2 else -1), (1 if y < y2 else -1)
    err, out = dx + dy, []
    while True:
        out.append((x, y))
        if (x, y) == (x2, y2):
            return out
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x += sx
        if e2 <= dx:
            err += dx
            y += sy
