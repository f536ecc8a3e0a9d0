"""`charrnn sample` through the command line."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import cli

from charrnn.checkpoint import load_checkpoint
from charrnn.output import SAMPLE_SEPARATOR, SampleWriter
from charrnn.sampling import generate

ANSI = "\x1b["
PRIME = "To be"


def invoke(*args: str | Path):
    return cli("sample", *args)


def sample_args(checkpoint: Path, *extra: str | Path) -> list[str | Path]:
    return ["-c", checkpoint, "--device", "cpu", *extra]


class Unpicklable:
    """Any class outside charrnn's safe list: loading it would need arbitrary unpickling."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


def test_prints_prime_then_text_plain(tiny_checkpoint):
    result = invoke(*sample_args(tiny_checkpoint, "-n", "120", "-p", PRIME, "--seed", "3"))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(PRIME)
    assert len(result.stdout) == len(PRIME) + 120
    assert ANSI not in result.stdout
    assert "seed 3" in result.stderr and str(tiny_checkpoint) in result.stderr


def test_same_seed_same_output_other_seed_differs(lstm_checkpoint):
    first = invoke(*sample_args(lstm_checkpoint, "-n", "80", "--seed", "5", "-q"))
    again = invoke(*sample_args(lstm_checkpoint, "-n", "80", "--seed", "5", "-q"))
    other = invoke(*sample_args(lstm_checkpoint, "-n", "80", "--seed", "6", "-q"))
    assert first.exit_code == 0, first.output
    assert first.stdout == again.stdout != other.stdout


def test_quiet_leaves_stderr_empty(lstm_checkpoint):
    result = invoke(*sample_args(lstm_checkpoint, "-n", "10", "--seed", "1", "--quiet"))
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and len(result.stdout) == 10


def test_num_samples_printed_in_order_with_separator(lstm_checkpoint):
    batch = invoke(
        *sample_args(
            lstm_checkpoint, "-n", "40", "-p", PRIME, "--seed", "10", "--num-samples", "3", "-q"
        )
    )
    assert batch.exit_code == 0, batch.output
    singles = [
        invoke(
            *sample_args(lstm_checkpoint, "-n", "40", "-p", PRIME, "--seed", str(seed), "-q")
        ).stdout
        for seed in (10, 11, 12)
    ]
    expected = ""
    for single in singles:
        if expected:
            expected += ("" if expected.endswith("\n") else "\n") + SAMPLE_SEPARATOR + "\n"
        expected += single
    assert batch.stdout == expected
    assert (
        "seeds 10..12"
        in invoke(
            *sample_args(lstm_checkpoint, "-n", "5", "--seed", "10", "--num-samples", "3")
        ).stderr
    )


def test_json_one_object_per_sample_with_model_logprob(lstm_checkpoint):
    result = invoke(
        *sample_args(
            lstm_checkpoint,
            "-n",
            "60",
            "-p",
            PRIME,
            "--seed",
            "2",
            "--num-samples",
            "2",
            "-t",
            "1.2",
            "--top-k",
            "10",
            "--json",
        )
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    loaded = load_checkpoint(lstm_checkpoint)
    for offset, record in enumerate(records):
        assert set(record) == {"text", "prime", "seed", "logprob", "chars", "stopped"}
        assert record["seed"] == 2 + offset and record["prime"] == PRIME
        assert record["chars"] == len(record["text"]) == 60 and record["stopped"] is False
        ids = loaded.vocab.encode(PRIME + record["text"])
        with torch.no_grad():
            logits, _ = loaded.model(torch.tensor([ids]))
        log_probs = logits[0, len(PRIME) - 1 : -1].log_softmax(-1)
        expected = log_probs[torch.arange(60), torch.tensor(ids[len(PRIME) :])].sum().item()
        assert record["logprob"] == pytest.approx(expected, abs=1e-3)


def test_json_objects_go_out_as_soon_as_a_sample_and_all_before_it_have_ended(lstm_checkpoint):
    # With this seed sample 2 stops first (24 chars), then sample 0 (62), then sample 1 (122).
    generation = generate(
        lstm_checkpoint, length=400, seed=2, num_samples=3, stop="e", device="cpu"
    )
    events: list[tuple[str, int]] = []

    class Recorder(io.StringIO):
        def write(self, text: str) -> int:
            events.append(("write", json.loads(text)["seed"] - 2))
            return len(text)

    writer = SampleWriter(Recorder(), generation.prime, as_json=True)
    writer.start()
    for piece in generation:
        if piece.finished is not None:
            events.append(("end", piece.sample))
        writer.piece(piece)
    events.append(("generation done", -1))
    writer.finish(generation.samples)

    assert events == [
        ("end", 2),  # held back: sample 0 is still running
        ("end", 0),
        ("write", 0),  # at once, before sample 1 has ended
        ("end", 1),
        ("write", 1),
        ("write", 2),
        ("generation done", -1),
    ]


def test_stop_ends_the_output_before_the_stop_text(lstm_checkpoint):
    full = invoke(*sample_args(lstm_checkpoint, "-n", "200", "--seed", "4", "-q")).stdout
    stop = full[50:52]
    result = invoke(*sample_args(lstm_checkpoint, "-n", "200", "--seed", "4", "-q", "--stop", stop))
    assert result.exit_code == 0, result.output
    assert result.stdout == full[: full.index(stop)]


def test_greedy_ignores_the_seed(lstm_checkpoint):
    one = invoke(*sample_args(lstm_checkpoint, "-n", "30", "--greedy", "--seed", "1", "-q"))
    two = invoke(*sample_args(lstm_checkpoint, "-n", "30", "--greedy", "--seed", "2", "-q"))
    assert one.exit_code == 0, one.output
    assert one.stdout == two.stdout


def test_unknown_prime_characters_listed(lstm_checkpoint):
    result = invoke(*sample_args(lstm_checkpoint, "-p", "To bé 2"))
    assert result.exit_code == 1
    assert "'é'" in result.stderr and "'2'" in result.stderr and "--unknown skip" in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_unknown_prime_characters_skipped_with_warning(lstm_checkpoint):
    result = invoke(
        *sample_args(lstm_checkpoint, "-p", "To bé", "--unknown", "skip", "-n", "10", "--seed", "1")
    )
    assert result.exit_code == 0, result.output
    assert "warning" in result.stderr and "'é'" in result.stderr
    assert result.stdout.startswith("To b") and len(result.stdout) == len("To b") + 10


@pytest.mark.parametrize(
    "options, flag",
    [
        (["-t", "0"], "--temperature"),
        (["--temperature", "-0.5"], "--temperature"),
        (["--top-k", "0"], "--top-k"),
        (["--top-p", "0"], "--top-p"),
        (["--top-p", "1.5"], "--top-p"),
        (["-n", "-1"], "--length"),
        (["--num-samples", "0"], "--num-samples"),
        (["--unknown", "maybe"], "--unknown"),
        (["--device", "cuda:x"], "device"),
        (["--precision", "fp8"], "--precision"),
    ],
)
def test_bad_options_one_line_exit_2(lstm_checkpoint, options, flag):
    result = invoke(*sample_args(lstm_checkpoint, *options))
    assert result.exit_code == 2, result.output
    assert flag in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output and result.stdout == ""


def make_bad_checkpoint(kind: str, path: Path) -> Path:
    if kind == "corrupt":
        path.write_bytes(b"PK\x03\x04 this is not a zip archive at all" * 10)
    elif kind == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    elif kind == "unsafe":
        torch.save({"format": "charrnn", "model": Unpicklable()}, path)
    elif kind == "text":
        path.write_text("hello", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "kind, words",
    [
        ("missing", "not found"),
        ("corrupt", "not a readable checkpoint"),
        ("text", "not a readable checkpoint"),
        ("foreign", "not a charrnn checkpoint"),
        ("unsafe", "arbitrary unpickling"),
    ],
)
def test_bad_checkpoints_one_line_exit_1(tmp_path, kind, words):
    path = make_bad_checkpoint(kind, tmp_path / f"{kind}.pt")
    result = invoke("-c", path, "--device", "cpu")
    assert result.exit_code == 1, result.output
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output and result.stdout == ""


def test_no_checkpoint_and_no_shipped_model_says_which_option(monkeypatch):
    from charrnn import resources

    monkeypatch.setattr(resources, "_find", lambda name, subdir: None)
    result = invoke("-n", "5")
    assert result.exit_code == 1
    assert "--checkpoint" in result.stderr and "Traceback" not in result.output


def test_run_directory_uses_best(tmp_path):
    from conftest import make_checkpoint

    make_checkpoint(tmp_path / "run" / "best.pt")
    result = invoke("-c", tmp_path / "run", "--device", "cpu", "-n", "7", "-q")
    assert result.exit_code == 0, result.output
    assert len(result.stdout) == 7


# -- real processes: what a pipe and a terminal get -------------------------------------------


def charrnn_command(checkpoint: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "charrnn",
        "sample",
        "-c",
        str(checkpoint),
        "--device",
        "cpu",
        "-n",
        "150",
        "-p",
        PRIME,
        "--seed",
        "8",
        *extra,
    ]


def clean_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    return {**env, "TERM": "xterm-256color", "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_piped_output_is_plain_utf8_without_escape_codes(lstm_checkpoint):
    done = subprocess.run(
        charrnn_command(lstm_checkpoint), capture_output=True, timeout=120, env=clean_env()
    )
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode("utf-8")
    assert b"\x1b" not in done.stdout
    assert text.startswith(PRIME) and len(text) == len(PRIME) + 150
    in_process = invoke(
        *sample_args(lstm_checkpoint, "-n", "150", "-p", PRIME, "--seed", "8", "-q")
    )
    assert text == in_process.stdout
    assert b"seed 8" in done.stderr


@pytest.mark.slow
def test_terminal_gets_the_prime_dimmed(lstm_checkpoint):
    """On a terminal the prime is dim; the generated text itself is still plain."""
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            charrnn_command(lstm_checkpoint, "-q"),
            stdout=terminal,
            stderr=subprocess.PIPE,
            timeout=120,
            env=clean_env(),
        )
        os.close(terminal)
        terminal = -1
        output = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal side is closed and drained
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(controller)
        if terminal != -1:
            os.close(terminal)
    assert done.returncode == 0, done.stderr.decode()
    assert output.startswith(f"\x1b[2m{PRIME}\x1b[22m".encode())
    assert output.count(b"\x1b") == 2
