"""A signal during training saves last.pt after the current step and exits 128 + its number.

The signal is sent from the display hook at a known step, so the test is exact, not a race.
"""

from __future__ import annotations

import os
import signal

import pytest
from conftest import cli

from charrnn import console
from charrnn.checkpoint import load_checkpoint
from charrnn.events import StepReport

TINY = ["--model", "gru", "--layers", "1", "--hidden", "8", "--embedding", "4", "--seq-len", "8",
        "--batch-size", "2", "--sample-chars", "0", "--device", "cpu", "--threads", "1"]  # fmt: skip


def signal_at_step(monkeypatch, signum: int, step: int, times: int = 1) -> None:
    shown = console.TrainDisplay.__call__

    def display_then_signal(self, event):
        shown(self, event)
        if isinstance(event, StepReport) and event.step == step:
            for _ in range(times):
                os.kill(os.getpid(), signum)

    monkeypatch.setattr(console.TrainDisplay, "__call__", display_then_signal)


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
)
def test_a_signal_saves_after_the_current_step_and_says_how_to_resume(
    tmp_path, tiny_corpus, monkeypatch, signum, code
):
    signal_at_step(monkeypatch, signum, step=3)
    out = tmp_path / "run"

    result = cli("train", tiny_corpus, "--out", out, *TINY, "--max-steps", "500")

    assert result.exit_code == code, result.output
    assert "saving last.pt after this step" in result.stderr
    assert "done at step 3 (interrupted)" in result.stderr
    assert f"--resume {out / 'last.pt'}" in result.stderr
    assert load_checkpoint(out / "last.pt").training_state["step"] == 3


def test_a_resumed_run_after_sigterm_continues_from_the_saved_step(
    tmp_path, tiny_corpus, monkeypatch
):
    signal_at_step(monkeypatch, signal.SIGTERM, step=2)
    out = tmp_path / "run"
    assert cli("train", tiny_corpus, "--out", out, *TINY, "--max-steps", "6").exit_code == 143
    monkeypatch.undo()

    resumed = cli("train", "--resume", out, "--max-steps", "6", "-q")

    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(out / "last.pt").training_state["step"] == 6
