"""The live training display on a terminal: what the frame shows, at 80 columns and at the end."""

from __future__ import annotations

import importlib
import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from charrnn.config import ModelConfig, TrainConfig
from charrnn.console import BAR, TrainDisplay, TrainFrame
from charrnn.data import read_corpus
from charrnn.events import EvalReport, StepReport, TrainResult, TrainStart
from charrnn.training import train

train_module = importlib.import_module("charrnn.training")
run_progress = importlib.import_module("charrnn.run_progress")
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
START = TrainStart("cpu", "fp32", 1234, 900, 100, 30, 0, 100_000, Path("runs/x"))


def step(number: int = 12_345, **fields) -> StepReport:
    """A report late in a long run: wide numbers everywhere."""
    values = dict(
        step=number,
        max_steps=100_000,
        train_loss=1.23456,
        lr=1e-3,
        chars_per_second=43_210.0,
        elapsed_s=3725.0,
        eta_s=29_800.0,
        last_val_loss=1.4,
        best_val_loss=1.3,
    )
    return StepReport(**{**values, **fields})


def result(stop_reason: str, number: int = 12_345) -> TrainResult:
    return TrainResult(stop_reason, number, 1.3, 3725.0, 43_210.0, Path("runs/x"), None, None)


def last_frame(*events, width: int = 80) -> list[str]:
    """Feed the events to a live display on a terminal of `width`; the lines left on screen."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=True)
    with TrainDisplay(console=console) as display:
        for event in events:
            display(event)
    # Each redraw starts with a carriage return; what follows the last one stays on screen.
    shown = CONTROL.sub("", buffer.getvalue()).split("\r")[-1]
    return [line for line in shown.splitlines() if line]


def bar_fill(frame: TrainFrame, width: int = 80) -> float:
    """The filled share of the frame's bar, read from the styles of its characters."""
    console = Console(file=io.StringIO(), width=width, force_terminal=True)
    filled_styles = {console.get_style("bar.complete"), console.get_style("bar.finished")}
    lines = console.render_lines(frame, console.options.update(width=width), pad=False)
    cells = [(s.text, s.style) for line in lines for s in line if BAR in s.text]
    filled = sum(len(text) for text, style in cells if style in filled_styles)
    return filled / sum(len(text) for text, _ in cells)


def test_every_number_that_matters_fits_in_80_columns():
    lines = last_frame(START, step())

    shown = "\n".join(lines)
    for part in (
        "12345/100000",
        "loss 1.2346",
        "val 1.4000",
        "best 1.3000",
        "43,210 chars/s",
        "ETA 8:16:40",
        "1:02:05 elapsed",
    ):
        assert part in shown, part
    assert "\u2026" not in shown  # nothing cut short
    assert all(len(line) <= 80 for line in lines)
    assert BAR * 20 in lines[0]  # and still a real bar


@pytest.mark.parametrize("width", [60, 100, 160])
def test_other_widths_keep_step_losses_speed_and_eta(width):
    shown = "\n".join(last_frame(START, step(), width=width))

    for part in ("12345/100000", "loss 1.2346", "best 1.3000", "43,210 chars/s", "ETA 8:16:40"):
        assert part in shown, (width, part)
    assert "\u2026" not in shown


def test_the_bar_follows_the_time_limit_when_it_ends_the_run_first():
    frame = TrainFrame()
    frame.start = START
    frame.report = step(50, limit="max_time", fraction_done=0.5, eta_s=30.0)

    assert bar_fill(frame) == pytest.approx(0.5, abs=0.02)  # not 50/100000
    lines = last_frame(START, step(50, limit="max_time", fraction_done=0.5, eta_s=30.0))
    assert "step 50" in lines[0] and "/100000" not in lines[0]
    assert "ETA 0:30" in lines[0]


def test_the_bar_follows_the_steps_otherwise():
    frame = TrainFrame()
    frame.start = START
    frame.report = step(25_000, fraction_done=0.25)

    assert bar_fill(frame) == pytest.approx(0.25, abs=0.02)


def test_the_last_frame_shows_the_final_step_and_losses():
    lines = last_frame(
        START,
        step(99_999, max_steps=100_000, last_val_loss=1.4, best_val_loss=1.3),
        step(100_000, max_steps=100_000, train_loss=1.1, last_val_loss=1.4, best_val_loss=1.3),
        EvalReport(100_000, 1.25, 1.25, True, "", {}),
        result("max_steps", 100_000),
    )

    shown = "\n".join(lines)
    assert "100000/100000" in shown
    assert "loss 1.1000" in shown
    assert (
        "val 1.2500" in shown and "best 1.2500" in shown
    )  # the final evaluation, not the one before
    assert "done" in shown and "ETA" not in shown


def test_an_interrupted_run_says_so_in_its_last_frame():
    shown = "\n".join(last_frame(START, step(), result("interrupted")))

    assert "interrupted" in shown and "ETA" not in shown
    assert "12345/100000" in shown


def test_before_the_first_step_the_frame_says_what_it_is_waiting_for():
    assert last_frame() == ["preparing the run\u2026"]
    lines = last_frame(START)
    assert lines[-1].startswith("first step (allocating memory, compiling)\u2026 0:0")


# --- what the training loop reports for the display ----------------------------------------------


@pytest.fixture
def corpus(tiny_corpus: Path):
    return read_corpus([tiny_corpus])


TINY_MODEL = ModelConfig(vocab_size=1, cell="gru", num_layers=1, hidden_size=16, embedding_size=8)


def fast(**options) -> TrainConfig:
    values = dict(seq_len=16, batch_size=4, warmup_steps=0, sample_chars=0, device="cpu")
    return TrainConfig(**{**values, **options})


class FakeClock:
    """Stands in for `time` in the training modules."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def test_with_max_time_the_reports_track_the_time_share(tmp_path, corpus, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(train_module, "time", clock)
    monkeypatch.setattr(run_progress, "time", clock)  # the run's clock
    events = []

    def one_second_per_step() -> bool:  # polled once before each step
        clock.now += 1.0
        return False

    train(
        corpus,
        TINY_MODEL,
        fast(max_steps=100_000, eval_every=100_000, max_time=10.0),
        tmp_path / "run",
        on_event=events.append,
        should_stop=one_second_per_step,
    )

    reports = [e for e in events if isinstance(e, StepReport)]
    assert {r.limit for r in reports} == {"max_time"}  # not 100,000 steps away
    assert [r.fraction_done for r in reports] == pytest.approx([k / 10 for k in range(1, 10)])
    assert isinstance(events[-1], TrainResult) and events[-1].stop_reason == "max_time"


def test_the_last_report_is_the_last_step_even_between_reports(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(train_module, "_log_every", lambda device: 4)  # as on a GPU
    events = []
    polls = iter(range(100))

    train(
        corpus,
        TINY_MODEL,
        fast(max_steps=50, eval_every=50),
        tmp_path / "run",
        on_event=events.append,
        should_stop=lambda: next(polls) >= 6,  # stop after 6 steps, between reports at 4 and 8
    )

    reports = [e for e in events if isinstance(e, StepReport)]
    assert [r.step for r in reports] == [4, 6]
    assert isinstance(events[-1], TrainResult) and events[-1].step == 6
