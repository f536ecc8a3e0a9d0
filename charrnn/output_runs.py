"""What `charrnn plot` and `charrnn runs` write on stdout: charts as text (coloured on a terminal,
plain when piped), and the runs as a table, tab-separated rows or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .output import CONTROL_PICTURES, styled_output

if TYPE_CHECKING:  # only for annotations
    from .chart import Line
    from .plot import Chart
    from .runs import RunRecord


def line_text(line: Line) -> Text:
    text = Text(no_wrap=True, overflow="crop")
    for part, style in line:
        text.append(part, style=style or "")
    return text


def chart_width(stream: TextIO, width: int | None) -> int:
    """The width asked for, else the terminal's, else 80 (piped)."""
    if width is not None:
        return width
    return Console(file=stream).width if styled_output(stream) else 80


def write_charts(charts: Sequence[Chart], legend: Line, stream: TextIO, width: int) -> None:
    """The charts, each under its title, then the legend, `width` columns wide."""
    console = Console(
        file=stream,
        width=width,
        highlight=False,
        color_system="auto" if styled_output(stream) else None,
    )
    for chart in charts:
        console.print(Text(chart.title, style="bold"), soft_wrap=True)
        for line in chart.lines:
            console.print(line_text(line), soft_wrap=True)
    console.print(line_text(legend), soft_wrap=True)


# -- charrnn runs --


def _when(record: RunRecord) -> str:
    if record.saved_at is None:
        return "-"
    return record.saved_at.astimezone().strftime("%Y-%m-%d %H:%M")


def _ago(record: RunRecord, now: datetime | None = None) -> str:
    """When, for people: '5 min ago', '3 h ago', '2 days ago', then the date."""
    if record.saved_at is None:
        return "-"
    seconds = ((now or datetime.now(timezone.utc)) - record.saved_at).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, size in (("min", 60), ("h", 3600), ("days", 86400)):
        if seconds < size * (60 if unit == "min" else 24 if unit == "h" else 7):
            return f"{int(seconds // size)} {unit} ago"
    return record.saved_at.astimezone().strftime("%Y-%m-%d")


def _cells(record: RunRecord) -> list[str]:
    def shown(value: object, spec: str = "") -> str:
        return "-" if value is None else format(value, spec).translate(CONTROL_PICTURES)

    return [
        shown(record.path),
        shown(record.corpus),
        shown(record.model),
        shown(record.parameters, ","),
        shown(record.steps, ","),
        shown(record.best_val_loss, ".4f"),
        f"{record.state} ({record.why})",
        _when(record),
    ]


def runs_table(records: Sequence[RunRecord]) -> Table:
    """For a terminal, in 80 columns: runs by name (under the directory listed), the state in
    colour (a running one with its PID); parameters and why a run ended are in the rows a pipe
    or --json gets."""
    table = Table(
        header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
        show_edge=False,
    )  # fmt: skip
    right = {"justify": "right", "no_wrap": True}
    table.add_column("run", no_wrap=True, overflow="ellipsis", min_width=6)
    table.add_column("corpus", overflow="ellipsis", max_width=20, no_wrap=True)
    table.add_column("model", no_wrap=True)
    table.add_column("steps", **right)
    table.add_column("best val", **right)
    table.add_column("state", no_wrap=True)
    table.add_column("saved", no_wrap=True)
    colours = {"finished": "green", "interrupted": "yellow", "running": "bold cyan"}
    for record in records:
        _, corpus, model, _, steps, best, _, _ = _cells(record)
        state = Text(record.state, style=colours[record.state])
        if record.state == "running":
            state.append(f" {record.why}", style="dim")  # its PID
        name = record.name.translate(CONTROL_PICTURES)
        table.add_row(name, corpus, model, steps, best, state, _ago(record))
    return table


def runs_tsv(records: Sequence[RunRecord]) -> str:
    """A header line, then one tab-separated line per run (tabs in names become spaces)."""
    header = "\t".join(
        ("run", "corpus", "model", "parameters", "steps", "best_val_loss", "state", "saved")
    )
    rows = ["\t".join(cell.replace("\t", " ") for cell in _cells(r)) for r in records]
    return "\n".join([header, *rows]) + "\n"


def runs_json(records: Sequence[RunRecord]) -> str:
    """One JSON object per run and line; null where a value is not known."""
    lines = []
    for record in records:
        item = {
            "run": str(record.path),
            "corpus": record.corpus,
            "model": record.model,
            "parameters": record.parameters,
            "steps": record.steps,
            "best_val_loss": record.best_val_loss,
            "state": record.state,
            "why": record.why,
            "saved_at": record.saved_at.isoformat() if record.saved_at else None,
        }
        lines.append(json.dumps(item, ensure_ascii=False) + "\n")
    return "".join(lines)
