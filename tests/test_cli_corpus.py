"""`charrnn train` on corpora that are awkward: other encodings, stdin, directories, short texts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import TINY_TEXT, cli, write

from charrnn.checkpoint import load_checkpoint
from charrnn.data import STDIN_SOURCE

TINY = "--model gru --layers 1 --hidden 16 --embedding 8 --seq-len 16 --batch-size 4".split()
TINY += "--warmup 1 --sample-chars 0 --device cpu --max-steps 2 --eval-every 2 -q".split()
needs_iconv = pytest.mark.skipif(shutil.which("iconv") is None, reason="needs iconv")


invoke = cli


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- other encodings: the error names the encoding and a command that converts the file ------


@needs_iconv
@pytest.mark.parametrize(
    ("text", "codec", "said"),
    [
        ("café au lait\n", "latin-1", "is not UTF-8 (bad byte at offset 3); if it is Latin-1"),
        ("“smart” quotes\n", "cp1252", "is not UTF-8 (bad byte at offset 0); if it is Windows"),
        ("wide café\n", "utf-16-le", "is UTF-16 (little-endian, with a byte order mark)"),
        ("wide café\n", "utf-16-be", "is UTF-16 (big-endian, with a byte order mark)"),
        ("very wide\n", "utf-32-le", "is UTF-32 (little-endian, with a byte order mark)"),
    ],
)
@pytest.mark.slow
def test_the_printed_iconv_command_converts_the_file(tmp_path, text, codec, said):
    bom = "\ufeff" if codec.startswith("utf") else ""
    path = write(tmp_path / "in put.txt", (bom + text).encode(codec))

    line = one_error_line(invoke("train", path, "--out", tmp_path / "run", *TINY))

    assert said in line
    command = re.search(r"convert it with: (iconv .*)$", line).group(1)
    subprocess.run(command, shell=True, check=True, cwd=tmp_path)
    converted = (tmp_path / "in put.utf8.txt").read_text(encoding="utf-8")
    assert converted.removeprefix("\ufeff") == text


def test_a_utf8_byte_order_mark_still_trains(tmp_path):
    path = write(tmp_path / "bom.txt", ("\ufeff" + TINY_TEXT).encode())

    result = invoke("train", path, "--out", tmp_path / "run", *TINY)

    assert result.exit_code == 0, result.output
    assert "\ufeff" not in load_checkpoint(tmp_path / "run" / "best.pt").vocab.chars


# --- short texts: the error blames what is too short -----------------------------------------


def test_a_too_small_val_fraction_is_blamed_and_the_least_that_works_is_given(tmp_path):
    corpus = write(tmp_path / "tiny.txt", TINY_TEXT)

    line = one_error_line(invoke("train", corpus, *TINY, "--val-fraction", "0.0001"))

    match = re.search(r"--val-fraction is too small .* use --val-fraction ([0-9.]+) or more$", line)
    assert match, line
    assert "--seq-len" not in line
    result = invoke("train", corpus, "--out", tmp_path / "run", *TINY, "--val-fraction", match[1])
    assert result.exit_code == 0, result.output


def test_a_too_short_training_part_is_blamed_on_the_text_and_seq_len(tmp_path):
    corpus = write(tmp_path / "short.txt", "x" * 100)

    line = one_error_line(invoke("train", corpus, *TINY, "--seq-len", "95"))

    assert "the corpus is too short for --seq-len 95: 100 characters give 90 for training" in line
    assert "use a longer text, --seq-len 89 or less, or a --val-fraction of at most 0.04" in line


# --- stdin --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_dash_trains_on_stdin_in_runs_stdin_and_resume_asks_for_the_text_again(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)

    first = invoke("train", "-", *TINY, input=TINY_TEXT.encode())

    assert first.exit_code == 0, first.output
    last = Path("runs") / "stdin" / "last.pt"
    assert load_checkpoint(last).info["corpus"] == [STDIN_SOURCE]

    forgotten = one_error_line(invoke("train", "--resume", "runs/stdin", "--max-steps", "4"))
    assert forgotten == (
        f"error: {last} was trained on text from stdin, which cannot be read again; "
        f"give the corpus again, e.g. pipe the same text in: ... | charrnn train - --resume {last}"
    )

    other = invoke("train", "-", "--resume", "runs/stdin", "--max-steps", "4", input=b"other\n")
    assert "error: the corpus differs" in one_error_line(other)

    again = invoke("train", "-", "--resume", "runs/stdin", "--max-steps", "4", input=TINY_TEXT)
    assert again.exit_code == 0, again.output
    assert load_checkpoint(last).info["step"] == 4


def test_stdin_that_is_not_utf8_says_to_pipe_it_through_iconv(tmp_path):
    line = one_error_line(invoke("train", "-", "--out", tmp_path / "run", *TINY, input=b"caf\xe9"))

    assert line.endswith(
        "stdin is not UTF-8 (bad byte at offset 3); if it is Latin-1, "
        "pipe it through: iconv -f LATIN1 -t UTF-8"
    )


# --- run names ----------------------------------------------------------------------------------


def test_a_directory_corpus_names_its_run_after_the_directory(tmp_path, monkeypatch):
    write(tmp_path / "mydir" / "a-first-file.txt", TINY_TEXT)
    monkeypatch.chdir(tmp_path)

    result = invoke("train", "mydir/", *TINY)

    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "mydir" / "best.pt").is_file()
