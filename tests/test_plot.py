"""charrnn plot: loss curves in the terminal (at 80 columns) and as a PNG; the sparkline."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import cli, write

from charrnn.chart import SPARK_CHARS, Series, draw_chart, sparkline
from charrnn.metrics import read_metrics

BRAILLE = range(0x2801, 0x2900)


def write_metrics(run, losses, seconds_per_eval=30.0, every=100):
    """A metrics.jsonl as training writes it: (train, val) losses, one evaluation each."""
    lines = [
        json.dumps(
            {
                "step": every * (i + 1),
                "elapsed_s": seconds_per_eval * (i + 1),
                "train_loss": train,
                "val_loss": val,
                "best_val_loss": min(v for _, v in losses[: i + 1]),
                "chars_per_s": 1000.0,
                "lr": 0.001,
            }
        )
        for i, (train, val) in enumerate(losses)
    ]
    write(run / "metrics.jsonl", "\n".join(lines) + "\n")
    return run


FALLING = [(4.2, 4.0), (3.1, 3.2), (2.4, 2.6), (2.0, 2.3), (1.8, 2.2), (1.7, 2.15)]


def has_braille(text):
    return any(ord(char) in BRAILLE for char in text)


def test_the_terminal_chart_fits_80_columns_with_both_axes(tmp_path):
    run = write_metrics(tmp_path / "runs" / "falling", FALLING)
    result = cli("plot", run)  # not a terminal: 80 columns
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) == 80
    assert "loss (nats/char) against step" in lines[0]
    assert any("against time" in line for line in lines)
    assert has_braille(result.stdout) and "\x1b[" not in result.stdout  # plain when piped
    assert lines[-1].startswith("falling: ")
    # The top label is the highest loss plotted, the bottom one the lowest.
    labelled = [line.split("\u2524")[0].strip() for line in lines if "\u2524" in line]
    assert float(labelled[0]) == pytest.approx(4.2, abs=0.05)
    assert float(labelled[len(labelled) // 2 - 1]) == pytest.approx(1.7, abs=0.05)


def test_the_time_axis_reads_as_a_clock(tmp_path):
    run = write_metrics(tmp_path / "run", FALLING, seconds_per_eval=30.0)
    result = cli("plot", run, "--against", "time")
    assert result.exit_code == 0, result.stderr
    assert "against step" not in result.stdout
    axis_labels = result.stdout.splitlines()[-2]
    assert "1:00" in axis_labels and "2:00" in axis_labels and axis_labels.endswith("time")


def test_width_and_height_are_kept(tmp_path):
    run = write_metrics(tmp_path / "run", FALLING)
    result = cli("plot", run, "--against", "step", "--width", "50", "--height", "6")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) == 50
    assert len(lines) == 1 + 6 + 2 + 1  # title, rows, axis and its labels, legend


def test_several_runs_are_numbered_on_their_curves_and_in_the_legend(tmp_path):
    first = write_metrics(tmp_path / "a", FALLING)
    second = write_metrics(tmp_path / "b", [(t + 0.5, v + 0.5) for t, v in FALLING])
    result = cli("plot", first, second / "metrics.jsonl", "--against", "step")
    assert result.exit_code == 0, result.stderr
    rows = result.stdout.splitlines()[1:13]
    plotted = "".join(row.replace("\u2524", "\u2502").split("\u2502", 1)[1] for row in rows)
    assert plotted.count("1") == 1 and plotted.count("2") == 1  # the end of each val curve
    assert "1 a: " in result.stdout and "2 b: " in result.stdout


def test_a_line_cut_short_by_a_kill_is_skipped(tmp_path):
    run = write_metrics(tmp_path / "run", FALLING)
    with (run / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 700, "elapsed_s": 2')
    assert [e.step for e in read_metrics(run).evaluations] == [100, 200, 300, 400, 500, 600]
    result = cli("plot", run)
    assert result.exit_code == 0, result.stderr


@pytest.mark.slow
def test_the_png_exists_and_decodes_as_an_image_of_sane_size(tmp_path):
    image = pytest.importorskip("matplotlib.image")
    run = write_metrics(tmp_path / "run", FALLING)
    png = tmp_path / "loss.png"
    result = cli("plot", run, "--png", png)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and f"wrote {png}" in result.stderr
    pixels = image.imread(png)
    height, width = pixels.shape[:2]
    assert 300 <= height <= 1000 and 800 <= width <= 2000  # two panels side by side
    assert pixels.std() > 0.05  # curves and text drawn, not a blank page


def test_png_without_matplotlib_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    run = write_metrics(tmp_path / "run", FALLING)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib...` fails
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    result = cli("plot", run, "--png", tmp_path / "loss.png")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: --png needs matplotlib, an optional extra: pip install 'charrnn[plot]'"
    ]
    assert not (tmp_path / "loss.png").exists()


def test_a_missing_run_is_an_error_naming_the_runs_that_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_metrics(tmp_path / "runs" / "shakespeare", FALLING)
    write_metrics(tmp_path / "runs" / "notes", FALLING)
    result = cli("plot", "runs/shakespear")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert "no run or metrics file at runs/shakespear" in line
    assert "did you mean runs/shakespeare?" in line and "runs/notes" in line


def test_no_run_given_names_the_runs_that_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_metrics(tmp_path / "runs" / "notes", FALLING)
    result = cli("plot")
    assert result.exit_code == 1
    assert "give a run directory" in result.stderr and "runs/notes" in result.stderr


def test_a_run_before_its_first_evaluation_has_nothing_to_plot(tmp_path):
    write(tmp_path / "run" / "metrics.jsonl", "")
    result = cli("plot", tmp_path / "run")
    assert result.exit_code == 1
    assert "holds no evaluation yet" in result.stderr


# -- the chart and the sparkline themselves --


def test_a_falling_curve_starts_top_left_and_ends_bottom_right():
    lines = draw_chart([Series("val", [(0, 3.0), (10, 1.0)])], 40, 8)
    rows = ["".join(text for text, _ in line) for line in lines[:8]]
    plot = [row.split("\u2524" if "\u2524" in row else "\u2502", 1)[1] for row in rows]
    assert plot[0][0] != " " and plot[0][-1] == " "
    assert plot[-1][-1] != " " and plot[-1][0] == " "


def test_a_dotted_curve_sets_fewer_dots_than_a_solid_one():
    points = [(0, 0.0), (100, 1.0)]
    solid = draw_chart([Series("a", points)], 60, 6)
    dotted = draw_chart([Series("a", points, dotted=True)], 60, 6)

    def dots(lines):
        text = "".join(part for line in lines for part, _ in line)
        return sum(bin(ord(c) - 0x2800).count("1") for c in text if ord(c) in BRAILLE)

    assert dots(dotted) < 0.7 * dots(solid)


def test_sparkline_runs_from_the_lowest_to_the_highest():
    line = sparkline([4.0, 3.0, 2.5, 2.0, 1.9])
    assert line[0] == SPARK_CHARS[-1] and line[-1] == SPARK_CHARS[0] and len(line) == 5
    assert len(sparkline([float(i) for i in range(100)], width=40)) == 40
    assert sparkline([2.0, 2.0]) == SPARK_CHARS[3] * 2
    assert sparkline([]) == ""


def test_the_training_summary_shows_a_sparkline_of_the_val_loss(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    result = cli(
        "train", tiny_corpus, "--out", out, "--device", "cpu", "--max-steps", "4",
        "--eval-every", "1", "--hidden", "16", "--layers", "1", "--seq-len", "16",
        "--batch-size", "4", "--sample-chars", "0", "--threads", "1", "-q",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("val loss ")]
    spark = line.split()[2]
    assert len(spark) == 4 and set(spark) <= set(SPARK_CHARS)
    assert "over 4 evaluations" in line
