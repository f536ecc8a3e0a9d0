"""Faults from outside: a full disk, closed and full stdout, closed stderr, bugs, Ctrl-C at start.

Each ends in one line on stderr and a non-zero exit (a broken pipe stays silent), never a
traceback, and never loses a checkpoint that was already written. The tests that start real
processes on real devices are marked slow: CI runs them, a plain local run skips them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli, make_checkpoint, run_charrnn, write

from charrnn import checkpoint as checkpoint_module
from charrnn.checkpoint import load_checkpoint

TINY = ["--model", "gru", "--layers", "1", "--hidden", "8", "--embedding", "4", "--seq-len", "8",
        "--batch-size", "2", "--sample-chars", "0", "--device", "cpu", "--threads", "1",
        "--eval-every", "2"]  # fmt: skip
TORCH_DISK_FULL = "[enforce fail at inline_container.cc:672] . unexpected pos 6656 vs 6608"


def only_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture
def small_filesystem(tmp_path: Path):
    """A real 1 MB filesystem (tmpfs), where the platform lets the test mount one."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip() or 'no mount'}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(filesystem: Path, leave: int) -> None:
    free = os.statvfs(filesystem).f_bavail * os.statvfs(filesystem).f_frsize
    with open(filesystem / "filler", "wb") as handle:
        handle.write(b"\0" * max(0, free - leave))


@pytest.mark.slow
def test_a_real_full_disk_while_saving_is_one_line_and_keeps_the_last_checkpoint(
    small_filesystem, tiny_corpus
):
    out = small_filesystem / "run"
    first = run_charrnn("train", tiny_corpus, "--out", out, *TINY, "--max-steps", "2", "-q")
    assert first.returncode == 0, first.stderr
    before = (out / "last.pt").read_bytes()
    fill(small_filesystem, leave=4096)

    resumed = run_charrnn("train", tiny_corpus, "--resume", out, "--max-steps", "4", "-q")

    assert resumed.returncode == 1
    line = only_error_line(resumed.stderr)
    assert "cannot write" in line and "no space left on device" in line.lower()
    assert (out / "last.pt").read_bytes() == before
    assert load_checkpoint(out / "last.pt").training_state["step"] == 2
    assert not list(out.glob(".*.tmp"))


def test_torchs_own_full_disk_error_is_one_line(tmp_path, tiny_corpus, monkeypatch):
    # torch reports a failed write from its zip writer as RuntimeError, not OSError.
    def torch_save_on_a_full_disk(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04")
        raise RuntimeError(TORCH_DISK_FULL)

    monkeypatch.setattr(checkpoint_module.torch, "save", torch_save_on_a_full_disk)
    monkeypatch.setattr(
        checkpoint_module.shutil,
        "disk_usage",
        lambda path: type("Usage", (), {"free": 1024})(),
    )
    result = cli("train", tiny_corpus, "--out", tmp_path / "run", *TINY, "--max-steps", "2")

    assert result.exit_code == 1
    line = only_error_line(result.stderr)
    assert line.startswith(f"error: cannot write {tmp_path / 'run'}")
    assert "no space left on device (0.0 MB free)" in line
    assert not list((tmp_path / "run").glob(".*.tmp"))


@pytest.fixture
def shipped_like(tmp_path: Path) -> Path:
    return make_checkpoint(tmp_path / "tiny.pt")


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["info", "{ckpt}"],
        ["sample", "-c", "{ckpt}", "-n", "50", "--seed", "1"],
        ["score", "-c", "{ckpt}", "{text}"],
    ],
)
def test_stdout_on_the_always_full_device_is_one_line(tmp_path, shipped_like, command):
    text = write(tmp_path / "line.txt", "To be, or not to be\n")
    args = [part.format(ckpt=shipped_like, text=text) for part in command]
    with open("/dev/full", "w") as full:
        done = run_charrnn(*args, stdout=full, stderr=subprocess.PIPE)

    assert done.returncode == 1
    assert only_error_line(done.stderr) == "error: cannot write stdout: No space left on device"


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["info", "{ckpt}"],
        ["sample", "-c", "{ckpt}", "-n", "50"],
        ["score", "-c", "{ckpt}", "{text}"],
    ],
)
def test_a_closed_stdout_is_one_line_and_not_success(tmp_path, shipped_like, command):
    text = write(tmp_path / "line.txt", "To be, or not to be\n")
    args = [part.format(ckpt=shipped_like, text=text) for part in command]
    done = subprocess.run(
        [sys.executable, "-m", "charrnn", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(1),
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 1
    assert "stdout is closed" in only_error_line(done.stderr)


@pytest.mark.slow
def test_a_closed_stderr_does_not_stop_the_work(tmp_path, shipped_like):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "charrnn",
            "sample",
            "-c",
            str(shipped_like),
            "-n",
            "40",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.close(2),
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0
    assert len(done.stdout) == 40


@pytest.mark.slow
def test_a_closed_pipe_stays_silent(shipped_like):
    reader = subprocess.Popen(["head", "-c", "5"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    done = subprocess.run(
        [sys.executable, "-m", "charrnn", "sample", "-c", str(shipped_like), "-n", "200000"],
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    reader.stdin.close()
    assert len(reader.stdout.read()) == 5
    reader.wait()
    assert done.returncode == 0
    assert "error" not in done.stderr and "Traceback" not in done.stderr


def test_a_bug_is_one_line_that_says_it_is_a_bug(tmp_path, shipped_like, monkeypatch):
    from charrnn import output

    def broken(loaded):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("charrnn.cli.checkpoint_rows", broken)
    result = cli("info", shipped_like, expect_bug=True)

    assert result.exit_code == 1
    line = only_error_line(result.stderr)
    assert line.startswith("error: internal error: ZeroDivisionError: division by zero")
    assert "CHARRNN_DEBUG=1" in line
    assert output.checkpoint_rows is not broken


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.3, 1.0])
def test_ctrl_c_while_starting_up_is_quiet(tmp_path, tiny_corpus, delay_s):
    # SIGINT while Python is still importing the CLI and torch: quiet, 130, and never lost (a
    # run that went on training would hit the timeout).
    child = subprocess.Popen(
        [sys.executable, "-m", "charrnn", "train", str(tiny_corpus), "--out", str(tmp_path / "r"),
         *TINY, "--max-steps", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    time.sleep(delay_s)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)

    assert child.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr


SWALLOWED_IMPORT = """
import os, signal, sys, time
from charrnn.entry import HeldInterrupt
if sys.argv[1] == "held":
    signal.signal(signal.SIGINT, HeldInterrupt())
sys.path.insert(0, sys.argv[2])
try:
    import swallowing  # like torch around numpy: its import of `inner` swallows what it raises
    time.sleep(1.5)  # the held signal comes within milliseconds
    print("lost")
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.slow
@pytest.mark.parametrize("handler", ["held", "python's own"])
def test_a_ctrl_c_inside_an_import_that_swallows_it_is_not_lost(tmp_path, handler):
    write(tmp_path / "swallowing.py", "try:\n    import inner\nexcept BaseException:\n    pass\n")
    write(tmp_path / "inner.py", "import os, signal, time\n"
          "os.kill(os.getpid(), signal.SIGINT)\ntime.sleep(0.2)\n")  # fmt: skip

    done = subprocess.run(
        [sys.executable, "-c", SWALLOWED_IMPORT, handler.split()[0], str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    # Python's own handler shows the fault: the KeyboardInterrupt dies inside the import.
    assert done.stdout.strip() == ("interrupted" if handler == "held" else "lost"), done.stderr


DROPPED_BY_A_FINALIZER = """
import os, signal, sys, time
from charrnn.entry import HeldInterrupt
if sys.argv[1] == "held":
    held = HeldInterrupt()
    signal.signal(signal.SIGINT, held)
    sys.unraisablehook = held.unraisable_hook
class Finalized:
    def __del__(self):  # the handler runs in here: its KeyboardInterrupt cannot propagate
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
try:
    Finalized()
    time.sleep(1.5)  # the signal sent again comes within milliseconds
    print("lost")
except KeyboardInterrupt:
    print("interrupted")
"""


@pytest.mark.slow
@pytest.mark.parametrize("handler", ["held", "python's own"])
def test_a_ctrl_c_the_interpreter_drops_in_a_finalizer_is_sent_again_quietly(handler):
    # Seen for real: Ctrl-C 0.5 s into `charrnn train` printed "Exception ignored in: 'Path'"
    # with a traceback, and training ran on.
    done = subprocess.run(
        [sys.executable, "-c", DROPPED_BY_A_FINALIZER, handler.split()[0]],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    if handler == "held":
        assert done.stdout.strip() == "interrupted", done.stderr
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    else:  # Python's own handler shows the fault
        assert done.stdout.strip() == "lost", done.stderr
        assert "Exception ignored" in done.stderr


def test_a_ctrl_c_before_a_command_takes_charge_exits_130_without_a_traceback(monkeypatch):
    # Seen for real: Ctrl-C 0.2 s into `charrnn train`, while Typer was still building the
    # commands, ended in a KeyboardInterrupt traceback (exit -2).
    from charrnn import cli

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "app", interrupted)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 130
