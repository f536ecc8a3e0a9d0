"""A signal during training saves last.pt after the current step and exits 128 + its number.

The signal is sent from the display hook at a known step, so the test is exact, not a race.
"""

from __future__ import annotations

import os
import re
import shlex
import signal

import pytest
import torch
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


def test_ctrl_c_then_the_printed_resume_command_ends_exactly_where_an_unbroken_run_ends(
    tmp_path, tiny_corpus, monkeypatch
):
    options = [*TINY, "--dropout", "0.1", "--max-steps", "12", "--eval-every", "5"]
    signal_at_step(monkeypatch, signal.SIGINT, step=7)
    out = tmp_path / "interrupted"
    interrupted = cli("train", tiny_corpus, "--out", out, *options)
    monkeypatch.undo()
    assert interrupted.exit_code == 130
    hint = re.search(r"^resume with: (charrnn train .*)$", interrupted.stderr, re.M)
    assert hint.group(1) == f"charrnn train {tiny_corpus} --resume {out / 'last.pt'}"

    resumed = cli(*shlex.split(hint.group(1))[1:])
    whole = cli("train", tiny_corpus, "--out", tmp_path / "whole", *options)

    assert resumed.exit_code == 0 and whole.exit_code == 0, resumed.output + whole.output
    assert "done at step 12 (reached --max-steps)" in resumed.stderr
    for name in ("last.pt", "best.pt"):
        mine = load_checkpoint(out / name).model.state_dict()
        unbroken = load_checkpoint(tmp_path / "whole" / name).model.state_dict()
        assert all(torch.equal(mine[key], unbroken[key]) for key in unbroken), name
    assert (out / "metrics.jsonl").read_text().count("\n") == 3  # steps 5, 10, 12


def test_a_second_signal_aborts_at_once_and_keeps_the_last_save(tmp_path, tiny_corpus, monkeypatch):
    out = tmp_path / "run"
    options = [*TINY, "--max-steps", "500", "--eval-every", "3"]
    signal_at_step(monkeypatch, signal.SIGINT, step=4, times=2)

    result = cli("train", tiny_corpus, "--out", out, *options)

    assert result.exit_code == 130
    assert "saving last.pt after this step" in result.stderr
    assert "done at step" not in result.stderr  # no save, no summary: aborted
    assert load_checkpoint(out / "last.pt").training_state["step"] == 3  # the evaluation's save
