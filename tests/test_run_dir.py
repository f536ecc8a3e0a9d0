"""Never two runs in one directory, never one run's files mixed with another's.

The lock test uses a real second process (the holder), and kill -9 on it: the kernel drops an
flock with its holder, so no stale lock can block the next run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import cli, write

from charrnn.checkpoint import load_checkpoint
from charrnn.run_dir import RunDirectory

TINY = ["--model", "gru", "--layers", "1", "--hidden", "8", "--embedding", "4", "--seq-len", "8",
        "--batch-size", "2", "--sample-chars", "0", "--device", "cpu", "--threads", "1",
        "--eval-every", "2"]  # fmt: skip


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def hold_lock(out: Path) -> subprocess.Popen:
    """Another process holding `out` as a live run would, until killed."""
    code = textwrap.dedent(
        f"""
        import sys, time
        from charrnn.run_dir import RunDirectory
        run = RunDirectory({str(out)!r})
        run.claim()
        print("held", flush=True)
        time.sleep(120)
        """
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_into_a_locked_directory_is_refused_naming_the_holder(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    holder = hold_lock(out)
    try:
        result = cli("train", tiny_corpus, "--out", out, *TINY, "--max-steps", "2")
        assert result.exit_code == 2
        assert f"in use by another charrnn train (PID {holder.pid})" in one_error_line(result)
        # --force does not break someone else's lock either.
        forced = cli("train", tiny_corpus, "--out", out, *TINY, "--max-steps", "2", "--force")
        assert forced.exit_code == 2 and "in use" in forced.stderr
        assert not (out / "last.pt").exists()
    finally:
        holder.kill()
        holder.wait()


def test_kill_9_of_the_holder_leaves_no_lock_that_blocks(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    holder = hold_lock(out)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()

    result = cli("train", tiny_corpus, "--out", out, *TINY, "--max-steps", "2")

    assert result.exit_code == 0, result.output
    assert load_checkpoint(out / "last.pt").training_state["step"] == 2


@pytest.mark.slow
def test_two_runs_started_together_never_both_write(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "charrnn", "train", str(tiny_corpus), "--out", str(out), *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [
        subprocess.Popen(
            [*args, "--max-steps", "30", "--seed", str(seed)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        for seed in (1, 2)
    ]
    outcomes = [(run.wait(timeout=120), run.stderr.read()) for run in runs]

    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 2], outcomes
    refused = next(err for code, err in outcomes if code == 2)
    assert "already holds a run" in refused or "in use by another charrnn train" in refused
    winner_seed = 1 if outcomes[0][0] == 0 else 2
    assert load_checkpoint(out / "last.pt").train_config.seed == winner_seed
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # one run's lines, not two interleaved


def test_resume_into_a_directory_holding_another_run_is_refused(tmp_path, tiny_corpus):
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    assert cli("train", tiny_corpus, "--out", run_a, *TINY, "--max-steps", "4").exit_code == 0
    assert (
        cli(
            "train", tiny_corpus, "--out", run_b, *TINY, "--max-steps", "2", "--seed", "5"
        ).exit_code
        == 0
    )
    before = {name: (run_b / name).read_bytes() for name in ("last.pt", "metrics.jsonl")}

    result = cli(
        "train", tiny_corpus, "--resume", run_a / "last.pt", "--out", run_b, "--max-steps", "6"
    )

    assert result.exit_code == 2
    assert f"--out {run_b} already holds another run" in one_error_line(result)
    assert {name: (run_b / name).read_bytes() for name in before} == before


def test_resume_into_a_new_directory_carries_the_metrics_over(tmp_path, tiny_corpus):
    run_a, run_c = tmp_path / "a", tmp_path / "c"
    assert cli("train", tiny_corpus, "--out", run_a, *TINY, "--max-steps", "4").exit_code == 0

    result = cli(
        "train", tiny_corpus, "--resume", run_a / "last.pt", "--out", run_c, "--max-steps", "6"
    )

    assert result.exit_code == 0, result.output
    steps = [
        json.loads(line)["step"] for line in (run_c / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [2, 4, 6]
    assert len((run_a / "metrics.jsonl").read_text().splitlines()) == 2  # the source untouched


def test_a_directory_with_only_a_stale_metrics_file_is_not_appended_to(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    stale = write(out / "metrics.jsonl", json.dumps({"step": 999, "val_loss": 1.0}) + "\n")

    refused = cli("train", tiny_corpus, "--out", out, *TINY, "--max-steps", "2")
    line = one_error_line(refused)
    assert refused.exit_code == 2 and "already holds an earlier run's metrics.jsonl" in line
    assert "--resume" not in line  # there is no last.pt to resume
    assert stale.read_text().count("\n") == 1

    forced = cli("train", tiny_corpus, "--out", out, *TINY, "--max-steps", "2", "--force")
    assert forced.exit_code == 0, forced.output
    steps = [json.loads(line)["step"] for line in stale.read_text().splitlines()]
    assert steps == [2]


def test_temp_files_a_killed_run_left_are_removed_on_the_next_start(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    assert cli("train", tiny_corpus, "--out", out, *TINY, "--max-steps", "2").exit_code == 0
    leftover = write(out / ".last.pt.abc123.tmp", b"\0" * 1000)
    someone_elses = write(out / "notes.tmp", "mine")

    result = cli("train", tiny_corpus, "--resume", out, "--max-steps", "4")

    assert result.exit_code == 0, result.output
    assert not leftover.exists()
    assert someone_elses.exists()


@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_an_out_that_cannot_be_a_directory_is_one_line(tmp_path, tiny_corpus, where):
    a_file = write(tmp_path / "taken", "not a directory")
    out = a_file if where == "a file" else a_file / "run"

    result = cli("train", tiny_corpus, "--out", out, *TINY, "--max-steps", "2")

    assert result.exit_code != 0
    assert "file" in one_error_line(result)
    assert a_file.read_text() == "not a directory"


def test_an_out_on_a_read_only_filesystem_is_one_line(tmp_path, tiny_corpus, monkeypatch):
    # Root ignores permissions, so the read-only filesystem is simulated at mkdir.
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.name == "run":
            raise OSError(30, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    result = cli("train", tiny_corpus, "--out", tmp_path / "run", *TINY, "--max-steps", "2")

    assert result.exit_code == 1
    assert "Read-only file system" in one_error_line(result)


def test_release_lets_the_same_process_claim_again(tmp_path):
    first = RunDirectory(tmp_path / "run")
    first.claim()
    with pytest.raises(Exception, match="in use"):
        RunDirectory(tmp_path / "run").claim()
    first.release()
    second = RunDirectory(tmp_path / "run")
    second.claim()
    second.release()
