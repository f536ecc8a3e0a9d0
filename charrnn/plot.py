"""Loss curves of runs: train and val loss against steps and against time, drawn as text for a
terminal (chart.py) or as a PNG through matplotlib, an optional extra. Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .chart import Line, Series, draw_chart, duration_ticks, nice_ticks
from .errors import DataError, MissingExtra
from .metrics import RunMetrics, read_metrics
from .text import format_duration

AGAINST = ("both", "step", "time")
# One colour per run (Rich's names, so a 16-colour terminal keeps them apart); train dotted.
RUN_STYLES = ("cyan", "magenta", "yellow", "green", "blue", "red")
VAL_GLYPH, TRAIN_GLYPH = "\u2812\u2812\u2812", "\u2802\u2800\u2802"  # ⠒⠒⠒ solid, ⠂ ⠂ dotted
PNG_HINT = "--png needs matplotlib, an optional extra: pip install 'charrnn[plot]'"


@dataclass(frozen=True)
class Chart:
    title: str
    lines: list[Line]


def load_runs(targets: Sequence[Path | str]) -> list[RunMetrics]:
    """The metrics of each run (a run directory or a metrics.jsonl); DataError for a target
    that is neither, or a run with no evaluation yet."""
    if not targets:
        from .runs import runs_hint

        raise DataError(f"give a run directory or metrics.jsonl to plot{runs_hint(Path('runs'))}")
    runs = [read_metrics(target) for target in targets]
    for run in runs:
        if not run.evaluations:
            raise DataError(f"{run.path} holds no evaluation yet: nothing to plot")
    return runs


def _axes(against: str) -> list[str]:
    return ["step", "time"] if against == "both" else [against]


def _points(run: RunMetrics, axis: str, loss: str) -> list[tuple[float, float]]:
    points = []
    for evaluation in run.evaluations:
        x = evaluation.step if axis == "step" else evaluation.elapsed_s
        y = getattr(evaluation, loss)
        if x is not None and y is not None:
            points.append((float(x), y))
    return points


def _series(runs: Sequence[RunMetrics], axis: str) -> list[Series]:
    series = []
    for index, run in enumerate(runs):
        style = RUN_STYLES[index % len(RUN_STYLES)]
        mark = str(index + 1) if len(runs) > 1 and index < 9 else None
        series.append(Series(f"{run.name} train", _points(run, axis, "train_loss"), style, True))
        series.append(Series(f"{run.name} val", _points(run, axis, "val_loss"), style, False, mark))
    return series


def terminal_charts(
    runs: Sequence[RunMetrics], against: str = "both", width: int = 80, height: int = 12
) -> list[Chart]:
    """A text chart of the losses for each axis asked for, `width` columns wide."""
    charts = []
    for axis in _axes(against):
        ticks, label = (nice_ticks, "step") if axis == "step" else (duration_ticks, "time")
        shown = (lambda x: f"{x:g}") if axis == "step" else _clock
        lines = draw_chart(_series(runs, axis), width, height, label, shown, ticks)
        charts.append(Chart(f"loss (nats/char) against {label}", lines))
    return charts


def _clock(seconds: float) -> str:
    """A time label: m:ss (h:mm:ss), or seconds with decimals under 10 s."""
    return (
        f"{seconds:.3g}s" if seconds < 10 and seconds != int(seconds) else format_duration(seconds)
    )


def legend(runs: Sequence[RunMetrics]) -> Line:
    """Which curve is which: the run's number (written at the end of its val curve when there
    are several), its name, and the solid val and dotted train glyphs in its colour."""
    segments: Line = []
    for index, run in enumerate(runs):
        style = RUN_STYLES[index % len(RUN_STYLES)]
        number = f"{index + 1} " if len(runs) > 1 and index < 9 else ""
        segments += [
            (("  " if index else "") + f"{number}{run.name}: ", None),
            (VAL_GLYPH, style),
            (" val ", None),
            (TRAIN_GLYPH, style),
            (" train", None),
        ]
    return segments


def save_png(
    runs: Sequence[RunMetrics], path: Path | str, against: str = "both", dpi: int = 100
) -> Path:
    """The same curves as a PNG, one panel per axis; MissingExtra without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtra(PNG_HINT) from None
    axes_names = _axes(against)
    figure = Figure(figsize=(5.5 * len(axes_names), 4), dpi=dpi, layout="constrained")
    panels = figure.subplots(1, len(axes_names), squeeze=False)[0]
    colours = [f"C{index % 10}" for index in range(len(runs))]
    for panel, axis in zip(panels, axes_names, strict=True):
        scale = 60.0 if axis == "time" else 1.0  # time in minutes
        for run, colour in zip(runs, colours, strict=True):
            for loss, kind, line_style in (("train_loss", "train", "--"), ("val_loss", "val", "-")):
                points = _points(run, axis, loss)
                panel.plot(
                    [x / scale for x, _ in points],
                    [y for _, y in points],
                    line_style,
                    color=colour,
                    marker="o" if len(points) == 1 else None,
                    alpha=0.6 if kind == "train" else 1.0,
                    label=f"{run.name} {kind}",
                )
        panel.set_xlabel("step" if axis == "step" else "time (minutes)")
        panel.set_ylabel("loss (nats/char)")
        panel.set_title(f"loss against {'steps' if axis == 'step' else 'time'}")
        panel.grid(alpha=0.3)
        panel.legend(fontsize="small")
    path = Path(path)
    figure.savefig(path, format="png")
    return path
