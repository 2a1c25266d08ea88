"""The loss curves: plotext's line plot (textual-plotext) with its axes, ticks and legend, and a
marker of its own for each curve, so that the curves read apart without colour.

plotext's time grows with the points it draws, so each curve is thinned to two points per column
(as many as its markers can show) before it is drawn: a redraw stays within the UI's frame budget
however long the training ran (docs/tui.md has the figures).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

Points = list[tuple[float, float]]


def thin(points: Points, most: int) -> Points:
    """At most ``most`` points: the mean of each run of consecutive points (a loss curve is noisy,
    and a mean keeps its trend where every n-th point would keep its noise)."""
    if len(points) <= most:
        return points
    size = -(-len(points) // most)  # rounded up
    runs = [points[i : i + size] for i in range(0, len(points), size)]
    return [(sum(x for x, _ in run) / len(run), sum(y for _, y in run) / len(run)) for run in runs]


class LossPlot(PlotextPlot):
    DEFAULT_CSS = "LossPlot { height: 1fr; min-height: 6; }"

    def __init__(self, curves: dict[str, tuple[str, str]], title: str, *, id: str | None = None) -> None:
        """``curves``: name -> (colour, plotext marker), in drawing order (a later one is drawn over)."""
        super().__init__(id=id)
        self.curves = curves
        self.plot_title = title
        self.series: dict[str, Points] = {}

    def set_series(self, series: dict[str, Points]) -> None:
        """Each curve's (x, y) points, in x order."""
        self.series = {k: v for k, v in series.items() if v}
        self.refresh()

    def render(self) -> RenderResult:
        if not self.series:
            return Text("no data yet", style="dim")
        plt = self.plt
        plt.clear_figure()  # limits and ticks set for a single step must not outlive it
        plt.title(self.plot_title)
        for name, (colour, marker) in self.curves.items():
            points = thin(self.series.get(name, []), 2 * self.size.width)
            if points:
                plt.plot([x for x, _ in points], [y for _, y in points], marker=marker, color=colour, label=name)
        # plotext puts a lone value mid-way on an axis one unit long (steps 0.50-1.50): one step
        # gets its neighbours, one loss a tenth of itself either side
        xs = {x for points in self.series.values() for x, _ in points}
        ys = {y for points in self.series.values() for _, y in points}
        if len(xs) == 1:
            x = xs.pop()
            plt.xlim(x - 1, x + 1)
            plt.xticks([x - 1, x, x + 1])
        if len(ys) == 1:
            y = ys.pop()
            pad = abs(y) / 10 or 0.1
            plt.ylim(y - pad, y + pad)
        return super().render()
