"""`charrnn train` and `charrnn info` through the command line."""

from __future__ import annotations

import io
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import cli, write
from rich.console import Console

from charrnn.checkpoint import load_checkpoint
from charrnn.console import TrainDisplay
from charrnn.events import EvalReport, StepReport, TrainStart

# A tiny, fast model; every run below uses it unless it says otherwise.
TINY = [
    "--model",
    "lstm",
    "--dropout",
    "0.1",
    "--layers",
    "1",
    "--hidden",
    "16",
    "--embedding",
    "8",
    "--seq-len",
    "16",
    "--batch-size",
    "4",
    "--warmup",
    "2",
    "--sample-chars",
    "0",
    "--device",
    "cpu",
]
ANSI = "\x1b["


invoke = cli


def same_weights(a: Path, b: Path) -> bool:
    first, second = load_checkpoint(a).model.state_dict(), load_checkpoint(b).model.state_dict()
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def test_a_run_prints_progress_and_a_summary_and_writes_its_files(tmp_path, tiny_corpus):
    out = tmp_path / "run"

    result = invoke(
        "train",
        tiny_corpus,
        "--out",
        out,
        *TINY,
        "--max-steps",
        "10",
        "--eval-every",
        "5",
        "--sample-chars",
        "30",
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # stdout is for data; training has none
    err = result.stderr
    assert "training on cpu (fp32)" in err
    assert re.search(r"^step 1/10  loss \d\.\d{4}  val -  best -  [\d,]+ chars/s", err, re.M)
    assert re.search(r"^step 5: val loss \d\.\d{4} \(\d\.\d{3} bits/char\)  new best$", err, re.M)
    assert "step 10: val loss" in err
    summary = re.search(
        r"done at step 10 \(reached --max-steps\) in \d+:\d\d, [\d,]+ chars/s: "
        r"best val loss (\d\.\d{4}) nats \((\d\.\d{4}) bits\) per char; "
        rf"checkpoints in {re.escape(str(out))}/",
        err,
    )
    assert summary, err
    nats, bits = map(float, summary.groups())
    assert bits == pytest.approx(nats / math.log(2), abs=1e-3)
    assert f"sample with: charrnn sample -c {out}" in err
    assert ANSI not in err
    for name in ("best.pt", "last.pt", "metrics.jsonl"):
        assert (out / name).is_file()
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [5, 10]
    assert min(m["val_loss"] for m in metrics) == pytest.approx(nats, abs=1e-4)


def test_quiet_prints_only_the_summary(tmp_path, tiny_corpus):
    out = tmp_path / "run"

    result = invoke(
        "train",
        tiny_corpus,
        "--out",
        out,
        *TINY,
        "--max-steps",
        "6",
        "--eval-every",
        "3",
        "--sample-chars",
        "20",
        "--quiet",
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    assert lines[0].startswith("done at step 6 (reached --max-steps)")
    assert lines[1].startswith("val loss ") and lines[1].endswith("over 2 evaluations")
    assert lines[2] == f"sample with: charrnn sample -c {out}"
    assert (out / "best.pt").is_file()


def test_the_default_run_directory_is_named_after_the_corpus(tmp_path, tiny_corpus, monkeypatch):
    monkeypatch.chdir(tmp_path)

    result = invoke("train", tiny_corpus, *TINY, "--max-steps", "2", "--eval-every", "2", "-q")

    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "tiny" / "best.pt").is_file()


def test_a_live_bar_is_shown_on_a_terminal():
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=160)

    with TrainDisplay(console=console) as display:
        display(TrainStart("cpu", "fp32", 1234, 900, 100, 30, 0, 10, Path("runs/x")))
        display(StepReport(3, 10, 2.5, 1e-3, 4321.0, 65.0, 125.0, 2.75, 2.7))
        display(EvalReport(3, 2.6, 2.6, True, "sample text", {}))

    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())
    assert "1,234 parameters" in shown
    for part in (
        "3/10",
        "loss 2.5000",
        "val 2.6000",  # the evaluation's, shown at once rather than at the next step
        "best 2.6000",
        "4,321 chars/s",
        "1:05 elapsed",
        "ETA 2:05",
        "step 3: val loss 2.6000",
        "new best",
        "sample text",
    ):
        assert part in shown, part
    assert "━" in shown  # the bar itself


def test_plain_log_lines_when_stderr_is_not_a_terminal():
    buffer = io.StringIO()
    console = Console(file=buffer, width=60)

    with TrainDisplay(console=console) as display:
        display(TrainStart("cpu", "fp32", 1234, 900, 100, 30, 0, 10, Path("runs/x")))
        display(StepReport(1, 10, 2.5, 1e-3, 4321.0, 1.0, 9.0, None, None))
        display(
            StepReport(2, 10, 2.4, 1e-3, 4321.0, 2.0, 8.0, None, None)
        )  # within 10 s: not logged

    lines = buffer.getvalue().splitlines()
    assert lines[0].startswith("training on cpu (fp32): 1,234 parameters")
    assert lines[1].startswith("step 1/10  loss 2.5000  val -  best -  4,321 chars/s")
    assert len(lines) == 2  # one line each, never folded at the console width
    assert ANSI not in buffer.getvalue()


# --- bad input: one line on stderr, exit 2 for usage errors and 1 for runtime ones -------------


def make_bad_corpus(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "no-such-file.txt"
    if kind == "empty-dir":
        folder = tmp_path / "nothing-here"
        write(folder / "data.bin", b"\0\1\2")
        return folder
    if kind == "empty":
        return write(tmp_path / "empty.txt", "")
    if kind == "latin1":
        return write(tmp_path / "latin1.txt", "naïve text, ".encode() + "café".encode("latin-1"))
    if kind == "nul":
        return write(tmp_path / "binary.txt", b"some text\0more")
    if kind == "short":
        return write(tmp_path / "short.txt", "a short text")
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", r"file not found: .*no-such-file\.txt"),
        ("empty-dir", r"directory .*nothing-here has no text files"),
        ("empty", r"the corpus is empty: .*empty\.txt"),
        # "naïve text, caf" is 16 bytes in UTF-8, so the Latin-1 é is byte 16.
        (
            "latin1",
            r"latin1\.txt is not UTF-8 \(bad byte at offset 16\); if it is Latin-1, "
            r"convert it with: iconv -f LATIN1 -t UTF-8 \S*latin1\.txt > \S*latin1\.utf8\.txt$",
        ),
        ("nul", r"binary\.txt looks binary \(NUL byte at offset 9\)"),
        (
            "short",
            r"the corpus is too short: 12 characters give 10 for training .* window needs 17",
        ),
    ],
)
@pytest.mark.slow
def test_a_bad_corpus_is_one_clear_line_and_exit_1(tmp_path, kind, message):
    corpus = make_bad_corpus(tmp_path, kind)

    result = invoke("train", corpus, "--out", tmp_path / "run", *TINY)

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # one line, however long the path
    assert lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--hidden", "-1", "--hidden must be at least 1, got -1"),
        ("--layers", "0", "--layers must be between 1 and 64, got 0"),
        ("--embedding", "0", "--embedding must be at least 1, got 0"),
        ("--seq-len", "0", "--seq-len must be at least 1, got 0"),
        ("--batch-size", "-3", "--batch-size must be at least 1, got -3"),
        ("--dropout", "1.0", "--dropout must be in [0, 1), got 1.0"),
        ("--dropout", "-0.1", "--dropout must be in [0, 1), got -0.1"),
        ("--val-fraction", "0", "--val-fraction must be in (0, 1), got 0.0"),
        ("--val-fraction", "1", "--val-fraction must be in (0, 1), got 1.0"),
        ("--max-steps", "0", "--max-steps must be at least 1, got 0"),
        ("--max-time", "-5", "--max-time must be positive, got -5.0"),
        ("--patience", "0", "--patience must be at least 1, got 0"),
        ("--save-every", "-1", "--save-every must be >= 0, got -1.0"),
        ("--lr", "inf", "--lr must be a finite number, got inf"),
        ("--weight-decay", "inf", "--weight-decay must be a finite number, got inf"),
        ("--max-time", "inf", "--max-time must be a finite number, got inf"),
        ("--grad-clip", "nan", "--grad-clip must be a finite number, got nan"),
        ("--ema", "1", "--ema must be in [0, 1) (0: off), got 1.0"),
        ("--ema", "-0.5", "--ema must be in [0, 1) (0: off), got -0.5"),
        ("--ema", "nan", "--ema must be a finite number, got nan"),
        ("--seed", str(2**64 + 1), "--seed must be between 0 and 2**62, got 18446744073709551617"),
        ("--seed", "-1", "--seed must be between 0 and 2**62, got -1"),
        ("--sample-chars", "100000000", "--sample-chars must be at most 10,000 (it is a preview"),
        ("--lr", "0", "--lr must be positive, got 0.0"),
        ("--device", "tpu", "--device must be one of auto, cpu, cuda, mps (or cuda:N), got 'tpu'"),
    ],
)
def test_nonsense_options_are_usage_errors(tmp_path, tiny_corpus, option, value, message):
    result = invoke("train", tiny_corpus, "--out", tmp_path / "run", *TINY, option, value)

    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line == f"error: {message}" or line.startswith(f"error: {message}")
    assert result.stdout == ""
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("option", "value", "choices"),
    [("--model", "transformer", ["lstm", "gru", "rnn"]), ("--windows", "sliding", ["stateful"])],
)
def test_a_value_outside_the_choices_is_one_line_naming_them(
    tmp_path, tiny_corpus, option, value, choices
):
    result = invoke("train", tiny_corpus, "--out", tmp_path / "run", option, value)

    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: Invalid value for '{option}'") and value in line
    assert all(choice in line for choice in choices) and line.endswith("train -h for help)")
    assert not (tmp_path / "run").exists()


def test_options_are_checked_before_the_corpus(tmp_path):
    result = invoke("train", tmp_path / "missing.txt", "--hidden", "-1")

    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: --hidden must be at least 1, got -1"]


@pytest.mark.parametrize("value", ["many", "nan", "inf", "1e30", "2.5"])
@pytest.mark.parametrize("option", ["--hidden", "--batch-size", "--max-steps"])
def test_an_integer_option_that_is_not_an_integer_is_a_usage_error(
    tmp_path, tiny_corpus, option, value
):
    result = invoke("train", tiny_corpus, option, value)

    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()  # one line, not click's usage block
    assert line.startswith(f"error: Invalid value for '{option}'")
    assert line.endswith("(charrnn train -h for help)")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when CUDA is absent")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error(tmp_path, tiny_corpus):
    options = [o for o in TINY if o not in ("--device", "cpu")]

    result = invoke("train", tiny_corpus, "--out", tmp_path / "run", *options, "--device", "cuda")

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: --device cuda was asked for, but no CUDA GPU is available"
    ]


@pytest.mark.gpu
def test_the_same_command_trains_on_cuda_with_bf16(tmp_path, tiny_corpus):
    options = [o for o in TINY if o not in ("--device", "cpu")]
    out = tmp_path / "run"

    result = invoke(
        "train", tiny_corpus, "--out", out, *options, "--max-steps", "30", "--eval-every", "10"
    )

    assert result.exit_code == 0, result.output
    assert re.search(r"training on cuda(:\d+)? \(bf16\)", result.stderr)
    assert "done at step 30" in result.stderr
    loaded = load_checkpoint(out / "best.pt", device="cpu")
    assert loaded.info["precision"] == "bf16"
    assert loaded.model.head.weight.device.type == "cpu"


# --- runs that already exist, and --resume -------------------------------------------------------


@pytest.fixture
def finished_run(tmp_path, tiny_corpus) -> Path:
    out = tmp_path / "done"
    result = invoke(
        "train", tiny_corpus, "--out", out, *TINY, "--max-steps", "4", "--eval-every", "2", "-q"
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_an_existing_run_needs_force_or_resume(finished_run, tiny_corpus):
    before = (finished_run / "last.pt").read_bytes()

    refused = invoke("train", tiny_corpus, "--out", finished_run, *TINY, "--max-steps", "4")
    assert refused.exit_code == 2
    assert refused.stderr.splitlines() == [
        f"error: {finished_run} already holds a run; continue it with --resume "
        f"{finished_run / 'last.pt'}, choose another --out, or pass --force to overwrite it"
    ]
    assert (finished_run / "last.pt").read_bytes() == before

    forced = invoke(
        "train",
        tiny_corpus,
        "--out",
        finished_run,
        *TINY,
        "--max-steps",
        "3",
        "--eval-every",
        "3",
        "--force",
        "-q",
    )
    assert forced.exit_code == 0, forced.output
    assert load_checkpoint(finished_run / "last.pt").info["step"] == 3


def test_resume_continues_a_run_to_a_later_step(finished_run, tiny_corpus):
    result = invoke("train", tiny_corpus, "--resume", finished_run, "--max-steps", "6")

    assert result.exit_code == 0, result.output
    assert "resuming at step 4" in result.stderr
    assert "done at step 6" in result.stderr
    assert load_checkpoint(finished_run / "last.pt").info["step"] == 6


def test_rerunning_a_finished_recipe_with_resume_auto_trains_nothing(finished_run, tiny_corpus):
    """A recipe script reruns its commands with --resume auto: a finished stage says so and
    leaves its run as it was (scripts/train_default_model.sh relies on it)."""
    files = {name: (finished_run / name).read_bytes() for name in ("last.pt", "metrics.jsonl")}
    again = ("--out", finished_run, *TINY, "--max-steps", "4", "--eval-every", "2", "-q")

    result = invoke("train", tiny_corpus, *again, "--resume", "auto")

    assert result.exit_code == 0, result.output
    assert re.match(
        r"done at step 4 \(reached --max-steps before: nothing left to train\) in \d+:\d\d: "
        r"best val loss \d\.\d{4} nats",
        result.stderr,
    ), result.stderr
    assert {name: (finished_run / name).read_bytes() for name in files} == files


def test_the_sample_hint_names_last_pt_when_there_is_no_best_pt(finished_run):
    (finished_run / "best.pt").unlink()

    result = invoke("train", "--resume", finished_run, "-q")  # at --max-steps already: no step

    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == (
        f"sample with: charrnn sample -c {finished_run / 'last.pt'}"
    )


def test_no_sample_hint_when_the_run_directory_holds_no_checkpoint(tmp_path, finished_run):
    elsewhere = tmp_path / "elsewhere"

    result = invoke("train", "--resume", finished_run, "--out", elsewhere, "-q")

    assert result.exit_code == 0, result.output
    assert not (elsewhere / "best.pt").exists() and not (elsewhere / "last.pt").exists()
    assert "done at step 4" in result.stderr
    assert "sample with" not in result.stderr


def test_resume_finds_the_corpus_in_the_checkpoint(finished_run):
    result = invoke("train", "--resume", finished_run / "last.pt", "--max-steps", "5", "-q")

    assert result.exit_code == 0, result.output
    assert load_checkpoint(finished_run / "last.pt").info["step"] == 5


@pytest.mark.slow
def test_max_time_on_resume_gives_this_invocation_that_many_seconds(tmp_path, tiny_corpus):
    out = tmp_path / "run"
    limits = ["--max-steps", "1000000", "--eval-every", "1000000", "--max-time", "0.5", "-q"]
    first = invoke("train", tiny_corpus, "--out", out, *TINY, *limits)
    assert first.exit_code == 0, first.output
    before = load_checkpoint(out / "last.pt").info

    resumed = invoke("train", "--resume", out, "--max-time", "0.5", "-q")

    assert resumed.exit_code == 0, resumed.output
    assert "reached --max-time" in resumed.stderr
    after = load_checkpoint(out / "last.pt").info
    assert after["step"] > before["step"]  # it used to stop at once: 0.5 s were already spent
    assert after["elapsed_s"] - before["elapsed_s"] >= 0.5


SHAPE_CHANGE = "error: the model's shape and the data options cannot change on --resume: "
ANOTHER_RUN = " (start a new run with another --out to change them)"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--hidden", "32"], SHAPE_CHANGE + "--hidden 16 -> 32" + ANOTHER_RUN),
        (
            ["--model", "gru", "--layers", "2"],
            SHAPE_CHANGE + "--model 'lstm' -> 'gru', --layers 1 -> 2" + ANOTHER_RUN,
        ),
        (
            ["--seq-len", "8", "--batch-size", "2"],
            SHAPE_CHANGE + "--seq-len 16 -> 8, --batch-size 4 -> 2" + ANOTHER_RUN,
        ),
    ],
)
@pytest.mark.slow
def test_changing_the_model_on_resume_is_a_usage_error(finished_run, tiny_corpus, options, message):
    before = (finished_run / "last.pt").read_bytes()

    result = invoke("train", tiny_corpus, "--resume", finished_run / "last.pt", *options)

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [message]
    assert (finished_run / "last.pt").read_bytes() == before


def test_the_same_command_with_resume_added_continues_the_run(finished_run, tiny_corpus):
    # The shell's up-arrow habit: the original command, every shape option included, + --resume.
    result = invoke(
        "train", tiny_corpus, "--out", finished_run, *TINY, "--max-steps", "6",
        "--eval-every", "2", "-q", "--resume", finished_run,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert load_checkpoint(finished_run / "last.pt").info["step"] == 6


def bad_checkpoint(tmp_path: Path, kind: str, finished_run: Path) -> Path:
    if kind == "missing":
        return tmp_path / "nowhere" / "last.pt"
    if kind == "random":
        return write(tmp_path / "random.pt", os.urandom(3000))
    if kind == "foreign":
        torch.save({"a": torch.zeros(1)}, tmp_path / "foreign.pt")
        return tmp_path / "foreign.pt"
    if kind == "weights-only":
        return finished_run / "best.pt"
    if kind == "run-without-last":
        (finished_run / "last.pt").unlink()
        return finished_run
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", r"checkpoint not found: .*nowhere/last\.pt"),
        ("random", r"random\.pt is not a readable checkpoint"),
        ("foreign", r"foreign\.pt is not a charrnn checkpoint"),
        (
            "weights-only",
            r"best\.pt has no training state to resume from; resume from a run's last\.pt",
        ),
        ("run-without-last", r"run directory .*done has no last\.pt"),
    ],
)
@pytest.mark.slow
def test_an_unusable_checkpoint_for_resume_is_a_runtime_error(
    tmp_path, tiny_corpus, finished_run, kind, message
):
    checkpoint = bad_checkpoint(tmp_path, kind, finished_run)

    result = invoke("train", tiny_corpus, "--resume", checkpoint)

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]


def test_resuming_on_another_corpus_is_refused(tmp_path, finished_run):
    other = write(tmp_path / "other.txt", "a different text entirely, " * 40)

    result = invoke("train", other, "--resume", finished_run)

    assert result.exit_code == 1
    assert result.stderr.startswith("error: the corpus differs from the one")
    assert len(result.stderr.splitlines()) == 1


# --- Ctrl-C --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_save_every_writes_last_pt_before_any_evaluation_and_survives_sigterm(
    tmp_path, tiny_corpus
):
    out = tmp_path / "run"
    never = ["--max-steps", "1000000", "--eval-every", "1000000"]
    command = [sys.executable, "-m", "charrnn", "train", str(tiny_corpus), "--out", str(out)]
    process = subprocess.Popen(
        [*command, *TINY, *never, "--save-every", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.pt").exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        process.terminate()  # SIGTERM: no handler, no chance to save on the way out
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    assert not (out / "best.pt").exists()  # no evaluation ran
    step = load_checkpoint(out / "last.pt").training_state["step"]
    assert step >= 1
    resumed = invoke("train", "--resume", out, "--max-steps", str(step + 2), "-q")
    assert resumed.exit_code == 0, resumed.output
    assert f"done at step {step + 2}" in resumed.stderr


def test_save_every_may_change_on_resume(finished_run):
    result = invoke(
        "train", "--resume", finished_run, "--max-steps", "5", "--save-every", "30", "-q"
    )

    assert result.exit_code == 0, result.output
    assert load_checkpoint(finished_run / "last.pt").train_config.save_every_s == 30.0


# --- info ----------------------------------------------------------------------------------------


def test_info_describes_a_checkpoint(finished_run, tiny_corpus):
    result = invoke("info", finished_run)

    assert result.exit_code == 0, result.output
    rows = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in result.stdout.splitlines())
    loaded = load_checkpoint(finished_run / "best.pt")
    assert rows["file"] == str(finished_run / "best.pt")
    assert rows["model"] == "LSTM, 1 layer x 16 hidden, embedding 8, dropout 0.1"
    assert rows["parameters"] == f"{loaded.model.num_parameters():,}"
    assert rows["vocabulary"] == f"{len(set(tiny_corpus.read_text()))} characters"
    assert rows["steps trained"] == str(loaded.info["step"])
    assert rows["best val loss"].startswith(f"{loaded.info['best_val_loss']:.4f} nats (")
    assert rows["corpus"] == str(tiny_corpus)
    assert rows["device"] == "cpu (fp32)"
    assert rows["resumable"] == "no (weights only)"
    assert "seq_len=16" in rows["training options"] and "batch_size=4" in rows["training options"]
    assert "max_steps=4" in rows["training options"]
    assert ANSI not in result.stdout


def test_info_on_last_pt_says_it_can_resume(finished_run):
    result = invoke("info", finished_run / "last.pt")

    assert result.exit_code == 0, result.output
    assert re.search(r"^steps trained\s+4$", result.stdout, re.M)
    assert re.search(r"^resumable\s+yes$", result.stdout, re.M)


def test_info_on_a_foreign_file_is_one_line_and_exit_1(tmp_path):
    path = write(tmp_path / "notes.txt", "not a checkpoint")

    result = invoke("info", path)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: {path} is not a readable checkpoint (not a PyTorch checkpoint file, or truncated)"
    ]


def test_resume_without_naming_the_corpus_from_another_directory(
    tmp_path, tiny_corpus, monkeypatch
):
    out = tmp_path / "run"
    first = invoke(
        "train", tiny_corpus, "--out", out, *TINY, "--max-steps", "2", "--eval-every", "2", "-q"
    )
    assert first.exit_code == 0, first.output
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    resumed = invoke("train", "--resume", out / "last.pt", "--max-steps", "4", "-q")
    assert resumed.exit_code == 0, resumed.output
    assert load_checkpoint(out / "last.pt").info["step"] == 4
