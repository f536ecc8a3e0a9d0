"""Line charts drawn with text: braille dots for a terminal (each character cell holds 2x4 dots,
so an 80-column chart has 150-odd points across), and a one-line sparkline.

Pure Python with no dependency: a chart is lines of (text, style) segments, the style a name
the renderer (Rich, in output_runs) understands, or None for plain text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SPARK_CHARS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"  # ▁ to █
BRAILLE_BASE = 0x2800
# The bit of each dot of a braille cell, by (column, row) inside the cell.
DOT_BITS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
MIN_PLOT_WIDTH = 10

Segment = tuple[str, "str | None"]  # text and its style
Line = list[Segment]


@dataclass(frozen=True)
class Series:
    """One curve: points (x, y) in order; dotted draws every other dot; mark (a character) is
    written over its last point, so that curves can be told apart without colour."""

    label: str
    points: Sequence[tuple[float, float]]
    style: str | None = None
    dotted: bool = False
    mark: str | None = None


def sparkline(values: Sequence[float], width: int = 40) -> str:
    """Values as block characters from ▁ (the lowest) to █ (the highest); more values than
    `width` are averaged in `width` groups. Non-finite values are left out."""
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) > width:
        groups = [
            finite[len(finite) * i // width : len(finite) * (i + 1) // width] for i in range(width)
        ]
        finite = [sum(group) / len(group) for group in groups]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    if high == low:
        return SPARK_CHARS[3] * len(finite)
    top = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[round((v - low) / (high - low) * top)] for v in finite)


def draw_chart(
    series: Sequence[Series],
    width: int,
    height: int,
    x_label: str = "",
    x_format: Callable[[float], str] = lambda x: f"{x:g}",
    x_ticks: Callable[[float, float, int], list[float]] | None = None,
) -> list[Line]:
    """A chart `width` columns wide: `height` rows of plot with the y values on the left, then
    the x axis and its labels. Lines are at most `width` characters."""
    points = [(x, y) for s in series for x, y in s.points if math.isfinite(x) and math.isfinite(y)]
    if not points:
        return [[("(no values to plot)", None)]]
    x_low, x_high = _span([x for x, _ in points])
    y_low, y_high = _span([y for _, y in points])
    y_labels = _y_labels(y_low, y_high, height)
    margin = max(len(label) for label in y_labels if label) + 1
    plot_width = max(MIN_PLOT_WIDTH, width - margin - 1)
    canvas = _Canvas(plot_width, height)
    for one in series:
        canvas.draw(one, (x_low, x_high), (y_low, y_high))
    lines: list[Line] = []
    for row, cells in enumerate(canvas.rows()):
        axis = "\u2524" if y_labels[row] else "\u2502"  # ┤ beside a label, │ elsewhere
        lines.append([(f"{y_labels[row]:>{margin - 1}} {axis}", None), *cells])
    ticks = (x_ticks or nice_ticks)(x_low, x_high, max(2, plot_width // 12))
    lines.extend(_x_axis(ticks, (x_low, x_high), plot_width, margin, x_label, x_format))
    return lines


def nice_ticks(low: float, high: float, count: int) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) between low and high, about `count`."""
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def duration_ticks(low: float, high: float, count: int) -> list[float]:
    """Ticks for seconds at steps a clock reads well: 1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15,
    30 min, 1, 2, 6, 12 h."""
    if high <= low:
        return [low]
    raw = (high - low) / max(1, count)
    if raw < 1:
        return nice_ticks(low, high, count)
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200)
    step = next((s for s in steps if s >= raw), 86400 * math.ceil(raw / 86400))
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _span(values: list[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if high == low:  # one value: centre it
        pad = abs(low) * 0.05 or 1.0
        return low - pad, high + pad
    return low, high


def _y_labels(low: float, high: float, height: int) -> list[str]:
    """A label on the top and bottom rows and about every third row between, each the value at
    its row's centre, with enough decimals that neighbouring labels differ."""
    every = 3 if height >= 6 else max(1, height - 1)
    rows = sorted({0, height - 1, *range(0, height - 1, every)})
    rows = [r for r in rows if r in (0, height - 1) or height - 1 - r >= 2]
    step = (high - low) / max(1, height - 1) * every
    decimals = max(0, min(4, 1 - math.floor(math.log10(step)))) if step > 0 else 2
    labels = [""] * height
    for row in rows:
        value = high - (high - low) * row / max(1, height - 1)
        labels[row] = f"{value:.{decimals}f}"
    return labels


def _x_axis(
    ticks: list[float],
    span: tuple[float, float],
    plot_width: int,
    margin: int,
    x_label: str,
    x_format: Callable[[float], str],
) -> list[Line]:
    low, high = span
    axis = ["\u2500"] * plot_width  # ─
    labels = [" "] * (plot_width + margin + 1)
    taken_until = -1
    for tick in ticks:
        column = round((tick - low) / (high - low) * (plot_width - 1)) if high > low else 0
        if not 0 <= column < plot_width:
            continue
        axis[column] = "\u252c"  # ┬
        text = x_format(tick)
        start = max(margin + 1 + column - len(text) // 2, taken_until + 2)
        if start + len(text) <= len(labels) - len(x_label) - 1:
            labels[start : start + len(text)] = text
            taken_until = start + len(text) - 1
    label_line = "".join(labels).rstrip()
    if x_label:
        label_line = label_line.ljust(margin + plot_width + 1 - len(x_label)) + x_label
    return [[(" " * margin + "\u2514" + "".join(axis), None)], [(label_line, None)]]


class _Canvas:
    """Braille cells: each keeps its dots and the style of the last curve that set one."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.bits = [[0] * width for _ in range(height)]
        self.styles: list[list[str | None]] = [[None] * width for _ in range(height)]
        self.marks: dict[tuple[int, int], tuple[str, str | None]] = {}

    def draw(
        self, series: Series, x_span: tuple[float, float], y_span: tuple[float, float]
    ) -> None:
        dots = [
            self._dot(x, y, x_span, y_span)
            for x, y in series.points
            if math.isfinite(x) and math.isfinite(y)
        ]
        if not dots:
            return
        path = [dots[0]]
        for start, end in zip(dots, dots[1:], strict=False):
            path.extend(_segment(start, end)[1:])
        for index, (x, y) in enumerate(path):
            if not series.dotted or index % 2 == 0 or index == len(path) - 1:
                self._set(x, y, series.style)
        if series.mark:
            x, y = path[-1]
            self.marks[(y // 4, x // 2)] = (series.mark, series.style)

    def _dot(
        self, x: float, y: float, x_span: tuple[float, float], y_span: tuple[float, float]
    ) -> tuple[int, int]:
        (x_low, x_high), (y_low, y_high) = x_span, y_span
        column = round((x - x_low) / (x_high - x_low) * (2 * self.width - 1))
        row = round((y_high - y) / (y_high - y_low) * (4 * self.height - 1))
        return column, row

    def _set(self, x: int, y: int, style: str | None) -> None:
        row, column = y // 4, x // 2
        self.bits[row][column] |= DOT_BITS[x % 2][y % 4]
        self.styles[row][column] = style

    def rows(self) -> list[Line]:
        """Each row as segments, runs of one style merged."""
        lines = []
        for row in range(self.height):
            segments: Line = []
            for column in range(self.width):
                mark = self.marks.get((row, column))
                if mark is not None:
                    char, style = mark
                else:
                    bits = self.bits[row][column]
                    char = chr(BRAILLE_BASE + bits) if bits else " "
                    style = self.styles[row][column] if bits else None
                if segments and segments[-1][1] == style:
                    segments[-1] = (segments[-1][0] + char, style)
                else:
                    segments.append((char, style))
            lines.append(segments)
        return lines


def _segment(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    """The dots of a straight line from start to end, both included (Bresenham)."""
    (x0, y0), (x1, y1) = start, end
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    step_x, step_y = (1 if x1 > x0 else -1), (1 if y1 > y0 else -1)
    error, dots = dx + dy, []
    while True:
        dots.append((x0, y0))
        if (x0, y0) == (x1, y1):
            return dots
        twice = 2 * error
        if twice >= dy:
            error, x0 = error + dy, x0 + step_x
        if twice <= dx:
            error, y0 = error + dx, y0 + step_y
