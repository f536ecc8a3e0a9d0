"""`-c RUN_DIR` for sample and score: its best.pt, or its last.pt before the first evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli as invoke
from conftest import make_checkpoint, write

from charrnn.checkpoint import load_checkpoint, resolve_checkpoint_path, save_checkpoint
from charrnn.errors import CheckpointError


@pytest.fixture
def early_run(tmp_path: Path) -> Path:
    """A run directory as it is before its first evaluation: a last.pt saved at step 3 only."""
    run = tmp_path / "runs" / "early"
    make_checkpoint(run / "last.pt")
    # make_checkpoint records step 0; give it a step a reader can tell apart.
    loaded = load_checkpoint(run / "last.pt")
    save_checkpoint(run / "last.pt", loaded.model, loaded.vocab, info={"step": 3})
    return run


def test_sample_falls_back_to_last_pt_with_a_note_on_stderr(early_run):
    result = invoke("sample", "-c", early_run, "-n", "20", "--seed", "1")

    assert result.exit_code == 0, result.output
    assert len(result.stdout) == 20
    lines = result.stderr.splitlines()
    assert lines[0] == f"no best.pt yet in {early_run}: using last.pt (step 3)"
    assert f"sampling from {early_run / 'last.pt'}" in lines[1]


def test_score_falls_back_to_last_pt_with_a_note_on_stderr(early_run, tmp_path):
    text = write(tmp_path / "line.txt", "To be, or not to be\n")

    result = invoke("score", "-c", early_run, text)

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == f"no best.pt yet in {early_run}: using last.pt (step 3)"
    assert result.stdout.splitlines()[0].startswith("line\tchars")
    assert "no best.pt" not in result.stdout  # the note is for people: stderr only


def test_quiet_leaves_the_note_out(early_run):
    result = invoke("sample", "-c", early_run, "-n", "5", "--seed", "1", "-q")

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert len(result.stdout) == 5


def test_best_pt_wins_once_it_exists(early_run):
    make_checkpoint(early_run / "best.pt", seed=1)

    result = invoke("sample", "-c", early_run, "-n", "5", "--seed", "1")

    assert result.exit_code == 0, result.output
    assert "no best.pt" not in result.stderr
    assert f"sampling from {early_run / 'best.pt'}" in result.stderr


def test_a_run_directory_with_neither_checkpoint_is_one_error_line(tmp_path):
    empty = tmp_path / "runs" / "empty"
    empty.mkdir(parents=True)

    result = invoke("sample", "-c", empty, "-n", "5")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: run directory {empty} has no best.pt or last.pt"]


def test_the_library_tells_the_note_and_never_prints(early_run, capsys):
    notes = []

    assert resolve_checkpoint_path(early_run, on_note=notes.append) == early_run / "last.pt"
    assert notes == [f"no best.pt yet in {early_run}: using last.pt (step 3)"]
    assert resolve_checkpoint_path(early_run) == early_run / "last.pt"  # no note asked for
    assert capsys.readouterr() == ("", "")
    (early_run / "last.pt").unlink()
    with pytest.raises(CheckpointError, match=r"has no last\.pt$"):
        resolve_checkpoint_path(early_run, "last.pt")  # --resume never means best.pt
