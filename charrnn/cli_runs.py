"""The commands that look at runs already made: `charrnn plot` (their loss curves) and `charrnn
runs` (a table of them). Thin, like cli.py: parse, call the library, render. Torch-free at
import; registered on the app by cli.py through add_run_commands."""

from __future__ import annotations

import sys

import typer

from .cli_errors import friendly_errors, stdout_or_error
from .cli_options import (
    Against,
    AgainstChoice,
    ChartHeight,
    ChartWidth,
    PlotRuns,
    Png,
    RunsDirectory,
    RunsJson,
)
from .console import info


def plot_command(
    runs: PlotRuns = None,
    png: Png = None,
    against: Against = AgainstChoice("both"),
    width: ChartWidth = None,
    height: ChartHeight = 12,
) -> None:
    """Draw the loss curves of runs, in the terminal or as a PNG.

    Train (dotted) and val (solid) loss against steps and against training time, for one or
    more runs, drawn with braille characters on stdout (in colour on a terminal), or saved as
    a PNG with --png.

    \b
    Examples:
      charrnn plot runs/my_text
      charrnn plot runs/a runs/b --against time
      charrnn plot runs/my_text --png loss.png
    """
    from .output_runs import chart_width, write_charts
    from .plot import legend, load_runs, save_png, terminal_charts

    loaded = load_runs(runs or [])
    axis = against.value
    if png is not None:
        info(f"wrote {save_png(loaded, png, axis)}")
        return
    stdout = stdout_or_error()
    columns = chart_width(stdout, width)
    write_charts(terminal_charts(loaded, axis, columns, height), legend(loaded), stdout, columns)


def runs_command(directory: RunsDirectory = None, as_json: RunsJson = False) -> None:
    """List the runs under a directory and how far each got.

    Each run's corpus, model, parameters, steps, best val loss, state (finished; interrupted,
    which --resume continues; or running now) and when it was last saved.

    A table on a terminal, tab-separated rows when piped, or --json. Newest first.

    \b
    Examples:
      charrnn runs
      charrnn runs experiments/ --json | jq -r .best_val_loss
    """
    from .output import render_for_terminal
    from .output_runs import runs_json, runs_table, runs_tsv
    from .runs import RUNS_DIR, list_runs

    parent = directory or RUNS_DIR
    stdout = stdout_or_error()
    records = list_runs(parent) if directory or RUNS_DIR.is_dir() else []
    if not records:
        info(f"no runs under {parent} (charrnn train makes one)")
        return
    if as_json:
        stdout.write(runs_json(records))
    elif sys.stdout.isatty():
        stdout.write(render_for_terminal(runs_table(records), stdout))
    else:
        stdout.write(runs_tsv(records))
    stdout.flush()


def add_run_commands(app: typer.Typer) -> None:
    """Register plot and runs on the `charrnn` app."""
    app.command("plot")(friendly_errors(plot_command))
    app.command("runs")(friendly_errors(runs_command))
