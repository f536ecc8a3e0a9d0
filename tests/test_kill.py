"""kill -9 at random moments, some in the middle of a checkpoint write: every checkpoint left
behind loads, and resuming from it ends exactly where an uninterrupted run ends.

One chain of 20 kills (seeded, so a failure can be replayed): each victim is the resume of the
previous one. Slow (about two minutes), so marked slow: CI runs it, a plain local run skips it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from charrnn.checkpoint import load_checkpoint

KILLS = 20
MAX_STEPS = 200
TRAIN = ["--model", "gru", "--layers", "1", "--hidden", "32", "--embedding", "8", "--seq-len", "16",
         "--batch-size", "4", "--sample-chars", "0", "--device", "cpu", "--threads", "1",
         "--eval-every", "5", "--save-every", "0", "--max-steps", str(MAX_STEPS), "-q"]  # fmt: skip
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CHARRNN_TEST_SLOW_WRITE_S": "0.03"}


def start(*args: str | Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "charrnn", "train", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=ENV,
    )


def identity(path: Path) -> int | None:
    """The file's inode: each save renames a new file into place, so a new save changes it."""
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def wait_for_a_new_save(path: Path, before: int | None, child: subprocess.Popen) -> bool:
    """Wait until the child has saved `path` anew (it is training); False if it finished."""
    deadline = time.monotonic() + 60
    while identity(path) in (before, None):
        if child.poll() is not None:
            return False
        assert time.monotonic() < deadline, f"{path} was never saved anew"
        time.sleep(0.005)
    return True


def metrics(run: Path) -> list[tuple[int, float]]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [(json.loads(line)["step"], json.loads(line)["val_loss"]) for line in lines]


@pytest.mark.slow
@pytest.mark.cases(20)  # kills, for TESTING.md
def test_twenty_kill_9s_never_lose_a_checkpoint_and_resume_is_exact(tmp_path, tiny_corpus):
    reference = tmp_path / "reference"
    done = subprocess.run(
        [sys.executable, "-m", "charrnn", "train", str(tiny_corpus), "--out", str(reference),
         *TRAIN], capture_output=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()

    rng = random.Random(20261202)
    run = tmp_path / "killed"
    child = start(tiny_corpus, "--out", run, *TRAIN)
    kills, steps_at_kills, mid_write = 0, [], 0
    while kills < KILLS:
        # Once the victim is training (it has saved once), kill it within the next few steps:
        # with a save after every step, slowed down, many kills land inside a write.
        if not wait_for_a_new_save(run / "last.pt", identity(run / "last.pt"), child):
            break
        time.sleep(rng.uniform(0.0, 0.15))
        if child.poll() is not None:
            break
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        kills += 1
        mid_write += bool(list(run.glob(".last.pt.*.tmp")))  # killed inside a write
        saved = load_checkpoint(run / "last.pt")  # never damaged, whenever the kill came
        steps_at_kills.append(saved.training_state["step"])
        if (run / "best.pt").exists():
            load_checkpoint(run / "best.pt")
        child = start(tiny_corpus, "--resume", run, *TRAIN)
    assert child.wait(timeout=300) == 0, child.stderr.read().decode()
    assert kills == KILLS, f"the run finished after {kills} kills: give it more steps"
    assert steps_at_kills == sorted(steps_at_kills) and steps_at_kills[-1] < MAX_STEPS
    assert len(set(steps_at_kills)) > KILLS // 2  # the kills landed all along the run
    assert mid_write >= 3, f"only {mid_write} kills landed inside a checkpoint write"

    assert not list(run.glob(".*.tmp"))  # the next start cleared what each kill left
    final, expected = load_checkpoint(run / "last.pt"), load_checkpoint(reference / "last.pt")
    assert final.training_state["step"] == MAX_STEPS
    for name, tensor in expected.model.state_dict().items():
        assert torch.equal(final.model.state_dict()[name], tensor), name
    assert metrics(run) == metrics(reference)
