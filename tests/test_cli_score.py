"""`charrnn score` through the command line: inputs, output formats and bad input."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_TEXT, cli, make_checkpoint
from rich.console import Console

from charrnn import checkpoint_schema, score_input
from charrnn.checkpoint import load_checkpoint, save_checkpoint
from charrnn.console import print_heatmap, surprisal_heatmap
from charrnn.output import (
    SURPRISAL_STYLES,
    ScoreWriter,
    format_number,
    score_table,
    surprisal_style,
)
from charrnn.scoring import score, score_lines
from charrnn.vocab import Vocab

ANSI = "\x1b["
TEXT = "To be, or not to be\nthat is the question:\n\nWhether 'tis nobler"
FIELDS = ["line", "text", "chars", "unknown", "logprob", "log10prob", "bits_per_char", "perplexity"]


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "lines.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def invoke(*args: str | Path, input: str | bytes | None = None):
    return cli("score", *args, input=input)


def tsv_rows(stdout: str) -> list[list[str]]:
    return [line.split("\t") for line in stdout.splitlines()]


@pytest.mark.slow
def test_piped_output_is_tab_separated_rows_without_escape_codes(text_file, lstm_checkpoint):
    # A real process with stdout on a pipe, as `charrnn score FILE | ...` runs.
    env = {**os.environ, "FORCE_COLOR": "", "TERM": "xterm-256color", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "charrnn", "score", str(text_file), "-c", str(lstm_checkpoint)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )

    assert done.returncode == 0, done.stderr
    assert ANSI not in done.stdout
    rows = tsv_rows(done.stdout)
    assert rows[0] == [
        "line",
        "chars",
        "unknown",
        "logprob",
        "log10prob",
        "bits_per_char",
        "perplexity",
        "text",
    ]
    expected = score_lines(load_checkpoint(lstm_checkpoint), TEXT).lines
    assert [row[0] for row in rows[1:]] == ["1", "2", "3", "4"]
    assert [row[-1] for row in rows[1:]] == [line.text.rstrip("\n") for line in expected]
    for row, line in zip(rows[1:], expected, strict=True):
        assert int(row[1]) == line.chars and int(row[2]) == line.unknown
        assert float(row[3]) == pytest.approx(line.logprob, abs=1e-4)
        assert float(row[5]) == pytest.approx(line.bits_per_char, abs=1e-4)
    assert "scored 4 lines" in done.stderr


@pytest.mark.slow
def test_a_reader_that_stops_early_gets_its_rows_at_once_and_no_traceback(tmp_path):
    # A model big enough that scoring the whole input takes several seconds, start-up aside.
    checkpoint = make_checkpoint(tmp_path / "m.pt", hidden_size=128)
    path = tmp_path / "big.txt"
    path.write_text(TINY_TEXT * 60, encoding="utf-8")  # 3,600 lines, about 160 KB
    full = invoke(path, "-c", checkpoint, "-q")
    assert full.exit_code == 0, full.output
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    # Streaming: the first row reaches a reader long before the last line is scored (one clock,
    # one process, so a busy machine cannot make this flaky). Buffered output would put the
    # two moments a few milliseconds apart.
    child = subprocess.Popen(
        [sys.executable, "-m", "charrnn", "score", str(path), "-c", str(checkpoint), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        header, first = child.stdout.readline(), child.stdout.readline()
        first_row_at = time.perf_counter()
        rest = child.stdout.read()
        ended_at = time.perf_counter()
        child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0
    assert header + first + rest == full.stdout
    assert ended_at - first_row_at > 0.5, ended_at - first_row_at

    # A reader that stops early: no traceback, exit 0 under pipefail, the same first rows.
    command = f"{sys.executable} -m charrnn score {path} -c {checkpoint} | head -n 2"
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Error" not in done.stderr
    assert done.stdout.splitlines(keepends=True) == full.stdout.splitlines(keepends=True)[:2]


def test_rows_are_flushed_as_each_block_is_written(lstm_checkpoint):
    class Recorder(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.flushed: list[str] = []

        def flush(self) -> None:
            self.flushed.append(self.getvalue())

    scored = score_lines(load_checkpoint(lstm_checkpoint), ["To be\n", "or not\n"]).lines
    for as_json in (False, True):
        stream = Recorder()
        writer = ScoreWriter(stream, as_json)
        writer.rows([(1, scored[0])])
        assert len(stream.flushed) == 1 and stream.flushed[0].count("\n") == (1 if as_json else 2)
        writer.rows([(2, scored[1])])
        writer.finish(scored[1])
        assert len(stream.flushed) == 3


def test_json_has_one_object_per_line_then_the_total(text_file, lstm_checkpoint):
    result = invoke(text_file, "-c", lstm_checkpoint, "--json")

    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    expected = score_lines(load_checkpoint(lstm_checkpoint), TEXT)
    assert len(records) == len(expected.lines) + 1
    for number, (record, line) in enumerate(zip(records[:-1], expected.lines, strict=True), 1):
        assert list(record) == FIELDS
        assert record["line"] == number and record["text"] == line.text.removesuffix("\n")
        assert isinstance(record["chars"], int) and isinstance(record["unknown"], int)
        for name in FIELDS[2:]:
            assert record[name] == pytest.approx(getattr(line, name), abs=1e-6)
    total = records[-1]
    assert total["total"] is True and total["lines"] == 4
    assert total["chars"] == len(TEXT) == sum(r["chars"] for r in records[:-1])
    assert total["logprob"] == pytest.approx(sum(r["logprob"] for r in records[:-1]))
    assert total["bits_per_char"] == pytest.approx(expected.total.bits_per_char)


def test_nothing_scored_is_null_in_json(tmp_path, lstm_checkpoint):
    path = tmp_path / "odd.txt"
    path.write_text("To be\n\u00e9\u00e9\n", encoding="utf-8")
    result = invoke(path, "-c", lstm_checkpoint, "--json")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    # The second line's newline is still scored; a line of only unknown characters has no rate.
    assert records[1]["chars"] == 1 and records[1]["unknown"] == 2
    result = invoke("-c", lstm_checkpoint, "--json", input="\u00e9")
    only_unknown = [json.loads(line) for line in result.stdout.splitlines()]
    assert only_unknown[0]["chars"] == 0
    assert only_unknown[0]["bits_per_char"] is None and only_unknown[0]["perplexity"] is None


@pytest.mark.parametrize("file_argument", [["-"], []])
def test_stdin_is_read_with_a_dash_or_no_file(lstm_checkpoint, text_file, file_argument):
    from_file = invoke(text_file, "-c", lstm_checkpoint)
    from_stdin = invoke(*file_argument, "-c", lstm_checkpoint, input=TEXT.encode())

    assert from_stdin.exit_code == 0, from_stdin.output
    assert from_stdin.stdout == from_file.stdout


@pytest.mark.slow
def test_no_file_with_a_terminal_on_stdin_says_how_to_pass_text(lstm_checkpoint):
    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "charrnn", "score", "-c", str(lstm_checkpoint)],
            stdin=terminal,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 2
    assert "no text to score" in done.stderr and "pipe" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.mark.slow
def test_a_terminal_gets_a_table_with_the_total(text_file, lstm_checkpoint):
    controller, terminal = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm-256color", "OMP_NUM_THREADS": "1"}
    command = ["score", str(text_file), "-c", str(lstm_checkpoint), "-q"]
    process = subprocess.Popen(
        [sys.executable, "-m", "charrnn", *command],
        stdout=terminal,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            data = os.read(controller, 4096)
        except OSError:  # the process closed the terminal
            break
        if not data:
            break
        shown += data
    os.close(controller)
    assert process.wait(timeout=120) == 0, process.stderr.read()
    text = shown.decode()
    assert "bits/char" in text and "perplexity" in text and "total" in text and "4 lines" in text
    assert "\u2503" in text or "\u2502" in text  # box lines: a table, not tab-separated rows
    assert "To be, or not to be" in text


def test_empty_input_is_zero_lines_a_note_and_exit_0(tmp_path, lstm_checkpoint):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    for args in ([empty], [empty, "--json"], ["--whole"]):
        result = invoke(*args, "-c", lstm_checkpoint, input=b"")
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
        assert "empty" in result.stderr


def test_blank_lines_are_scored_as_their_newline(lstm_checkpoint):
    rows = tsv_rows(invoke("-c", lstm_checkpoint, input="\n\nTo be\n").stdout)
    shown = [(row[0], row[1], row[-1]) for row in rows[1:]]
    assert shown == [("1", "1", ""), ("2", "1", ""), ("3", "6", "To be")]


def test_whole_scores_the_input_as_one_text(text_file, lstm_checkpoint):
    result = invoke(text_file, "-c", lstm_checkpoint, "--whole", "--json")

    records = [json.loads(line) for line in result.stdout.splitlines()]
    expected = score(load_checkpoint(lstm_checkpoint), TEXT)
    assert records[0]["line"] is None and records[0]["text"] == TEXT
    assert records[0]["logprob"] == pytest.approx(expected.logprob, abs=1e-6)
    assert records[1]["total"] is True and records[1]["chars"] == len(TEXT)


def test_whole_with_streams_uses_the_approximate_parallel_scoring(text_file, lstm_checkpoint):
    result = invoke(text_file, "-c", lstm_checkpoint, "--whole", "--streams", "3", "--json")

    record = json.loads(result.stdout.splitlines()[0])
    loaded = load_checkpoint(lstm_checkpoint)
    approximate = score(loaded, TEXT, streams=3)
    assert record["logprob"] == pytest.approx(approximate.logprob, abs=1e-6)
    # This text is shorter than the warmup, so each segment reads all of the text before it.
    assert record["logprob"] == pytest.approx(score(loaded, TEXT).logprob, abs=1e-3)


def test_context_option_is_read_before_each_line(text_file, lstm_checkpoint):
    result = invoke(text_file, "-c", lstm_checkpoint, "--json", "--context", "To die: to sleep;\n")
    records = [json.loads(line) for line in result.stdout.splitlines()]
    expected = score_lines(load_checkpoint(lstm_checkpoint), TEXT, context="To die: to sleep;\n")
    assert records[-1]["logprob"] == pytest.approx(expected.total.logprob, abs=1e-6)
    plain = score_lines(load_checkpoint(lstm_checkpoint), TEXT)
    assert records[-1]["logprob"] != pytest.approx(plain.total.logprob, abs=1e-6)


def test_sort_ranks_lines_by_bits_per_char_keeping_their_numbers(text_file, lstm_checkpoint):
    rows = tsv_rows(invoke(text_file, "-c", lstm_checkpoint, "--sort").stdout)[1:]
    bits = [float(row[5]) for row in rows]
    assert bits == sorted(bits)
    assert sorted(row[0] for row in rows) == ["1", "2", "3", "4"]


def test_unknown_characters_are_warned_counted_and_strict_refuses_them(lstm_checkpoint):
    text = "To be\nor \u00e9 not\n"
    lenient = invoke("-c", lstm_checkpoint, input=text)
    assert lenient.exit_code == 0
    rows = tsv_rows(lenient.stdout)
    assert (rows[2][1], rows[2][2]) == ("8", "1")
    assert "skipped 1 occurrence of 1 character the model never saw: '\u00e9'" in lenient.stderr

    several = invoke("-c", lstm_checkpoint, input="\u00e9t\u00e9 \u20ac\n\u00e9\n")
    assert "skipped 4 occurrences of 2 characters the model never saw: '\u00e9', '\u20ac'" in (
        several.stderr
    )

    strict = invoke("-c", lstm_checkpoint, "--strict", input=text)
    assert strict.exit_code == 1 and strict.stdout == ""
    assert "never saw: '\u00e9' (first on line 2)" in strict.stderr
    assert len(strict.stderr.strip().splitlines()) == 1


def test_tabs_newlines_and_control_characters_are_escaped_in_rows(tmp_path):
    from conftest import make_checkpoint

    checkpoint = make_checkpoint(tmp_path / "m.pt", text=TINY_TEXT + "\t\x1b\\")
    result = invoke("-c", checkpoint, input="a\tb\x1b[31mc\\d\n")
    row = tsv_rows(result.stdout)[1]
    assert len(row) == 8
    assert row[-1] == "a\\tb\\x1b[31mc\\\\d"
    assert "\x1b" not in result.stdout


def test_quiet_leaves_stderr_empty(text_file, lstm_checkpoint):
    result = invoke(text_file, "-c", lstm_checkpoint, "-q")
    assert result.exit_code == 0 and result.stderr == ""
    assert len(tsv_rows(result.stdout)) == 5


def test_heatmap_goes_to_stderr_with_a_legend_and_leaves_stdout_alone(text_file, lstm_checkpoint):
    plain = invoke(text_file, "-c", lstm_checkpoint, "-q")
    with_heatmap = invoke(text_file, "-c", lstm_checkpoint, "-q", "--heatmap")

    assert with_heatmap.stdout == plain.stdout
    err = with_heatmap.stderr
    assert ANSI not in err  # stderr is not a terminal here: no colour
    marked = TEXT.replace("\n", "\u21b5\n")  # each scored newline gets a visible mark
    assert marked in err
    assert "surprisal in bits" in err and "unknown" in err


def test_heatmap_colours_each_character_by_its_surprisal(lstm_checkpoint):
    scored = score(load_checkpoint(lstm_checkpoint), "To be\u00e9")
    heatmap = surprisal_heatmap([scored])
    assert heatmap.plain == "To be\u00e9"
    for position, bits in enumerate(scored.surprisal_bits.tolist()):
        styles = [str(span.style) for span in heatmap.spans if span.start <= position < span.end]
        assert styles == [surprisal_style(bits)]
    assert surprisal_style(0.5) == SURPRISAL_STYLES[0]
    assert surprisal_style(20.0) == SURPRISAL_STYLES[-1]
    assert surprisal_style(float("nan")) not in SURPRISAL_STYLES

    stream = io.StringIO()
    print_heatmap([scored], Console(file=stream, force_terminal=True, color_system="truecolor"))
    assert ANSI in stream.getvalue() and "surprisal in bits" in stream.getvalue()


def test_the_terminal_table_has_the_figures_the_total_and_safe_text(lstm_checkpoint):
    result = score_lines(load_checkpoint(lstm_checkpoint), ["To be\n", "or\x1b[2J not\n"])
    rows = list(enumerate(result.lines, 1))
    stream = io.StringIO()
    Console(file=stream, force_terminal=True, width=120).print(score_table(rows, result.total))
    shown = stream.getvalue()

    for header in ("#", "bits/char", "perplexity", "logprob", "chars", "unknown", "text", "total"):
        assert header in shown
    assert f"{result.lines[0].bits_per_char:.3f}" in shown
    assert f"{result.total.bits_per_char:.3f}" in shown
    # The text cannot drive the terminal: ESC is shown as its picture.
    assert "\x1b[2J" not in shown and "or\u241b[2J not" in shown


@pytest.mark.parametrize(
    "options, words",
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--context", ""], "--context"),
        (["--streams", "4"], "--streams applies to --whole"),
        (["--device", "tpu"], "unknown device"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(text_file, lstm_checkpoint, options, words):
    result = invoke(text_file, "-c", lstm_checkpoint, *options)
    assert result.exit_code == 2, result.output
    assert words in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "kind, words",
    [
        ("not utf-8", "is not UTF-8 (bad byte at offset 6)"),
        ("binary", "looks binary (NUL byte at offset 2)"),
        ("missing", "file not found"),
        ("directory", "is a directory"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path, lstm_checkpoint, kind, words):
    path = tmp_path / "input.txt"
    if kind == "not utf-8":
        path.write_bytes(b"To be \xff\xfe or not")
    elif kind == "binary":
        path.write_bytes(b"To\x00\x01\x02")
    elif kind == "directory":
        path.mkdir()
    result = invoke(path, "-c", lstm_checkpoint)
    assert result.exit_code == 1, result.output
    assert words in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


def test_non_utf8_on_stdin_names_the_byte_offset(lstm_checkpoint):
    result = invoke("-", "-c", lstm_checkpoint, input=b"abc\xc3(")
    assert result.exit_code == 1
    assert "stdin is not UTF-8 (bad byte at offset 3)" in result.stderr


class Unpicklable:
    """A class weights_only loading refuses: stands for code hidden in a checkpoint."""


@pytest.mark.parametrize(
    "kind, words",
    [
        ("missing", "not found"),
        ("corrupt", "not a readable checkpoint"),
        ("foreign", "not a charrnn checkpoint"),
        ("unsafe", "arbitrary unpickling"),
    ],
)
def test_bad_checkpoints_are_one_line_and_exit_1(tmp_path, text_file, kind, words):
    path = tmp_path / f"{kind}.pt"
    if kind == "corrupt":
        path.write_bytes(b"PK\x03\x04 not a zip archive" * 10)
    elif kind == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    elif kind == "unsafe":
        torch.save({"format": "charrnn", "model": Unpicklable()}, path)
    result = invoke(text_file, "-c", path)
    assert result.exit_code == 1, result.output
    assert words in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_checkpoint_and_no_shipped_model_says_which_option(text_file, monkeypatch):
    from charrnn import resources

    monkeypatch.setattr(resources, "_find", lambda name, subdir: None)
    result = invoke(text_file)
    assert result.exit_code == 1
    assert "--checkpoint" in result.stderr and result.stdout == ""


def test_a_run_directory_means_its_best_checkpoint(tmp_path, text_file):
    from conftest import make_checkpoint

    make_checkpoint(tmp_path / "run" / "best.pt")
    by_directory = invoke(text_file, "-c", tmp_path / "run", "-q")
    by_file = invoke(text_file, "-c", tmp_path / "run" / "best.pt", "-q")
    assert by_directory.exit_code == 0 and by_directory.stdout == by_file.stdout


# -- the input is read as it is scored ---------------------------------------------------------


@pytest.mark.slow
def test_rows_come_out_while_stdin_is_still_open(lstm_checkpoint):
    # A whole-input reader would wait for the end of stdin, which never comes before the row.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = ["score", "-c", str(lstm_checkpoint), "--batch-size", "4", "-q"]
    child = subprocess.Popen(
        [sys.executable, "-m", "charrnn", *command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        child.stdin.write(b"To be, or not to be\n" * 8)
        child.stdin.flush()
        ready, _, _ = select.select([child.stdout], [], [], 60)
        assert ready, "no row before the end of the input"
        header, first = child.stdout.readline(), child.stdout.readline()
        assert header.startswith(b"line\t") and first.startswith(b"1\t20\t0\t")
        child.stdin.write(b"that is the question:\n")
        child.stdin.close()
        rest = child.stdout.read().decode()
        assert child.wait(timeout=60) == 0, child.stderr.read()
    finally:
        if child.poll() is None:
            child.kill()
    assert [row[0] for row in tsv_rows(rest)] == [str(n) for n in range(2, 10)]


@pytest.mark.parametrize("from_file", [False, True])
def test_invalid_utf8_mid_stream_is_one_error_line_after_the_rows_before_it(
    tmp_path, lstm_checkpoint, monkeypatch, from_file
):
    monkeypatch.setattr(score_input, "READ_BYTES", 64)  # the bad byte is many reads in
    good = ("To be, or not to be\n" * 40).encode()
    path = tmp_path / "input.txt"
    path.write_bytes(good + b"\xff and more\n")
    where = [path] if from_file else ["-"]

    result = invoke(*where, "-c", lstm_checkpoint, "--batch-size", "4", input=path.read_bytes())

    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    source = path if from_file else "stdin"
    assert line.startswith(f"error: {source} is not UTF-8 (bad byte at offset {len(good)}); ")
    # The rows scored before it stay written; the rest and the total never come.
    rows = tsv_rows(result.stdout)
    expected = tsv_rows(invoke("-c", lstm_checkpoint, "-q", input=good).stdout)
    assert 1 < len(rows) < len(expected) and rows == expected[: len(rows)]


def test_json_stays_json_when_the_weights_give_nan(tmp_path, text_file, monkeypatch):
    loaded = load_checkpoint(make_checkpoint(tmp_path / "m.pt"))
    with torch.no_grad():
        loaded.model.head.bias.fill_(float("nan"))
    broken = save_checkpoint(tmp_path / "nan.pt", loaded.model, loaded.vocab, info={"step": 0})

    class TorchSeeingNoNaN:  # the load-time refusal of NaN weights is tested elsewhere
        def __getattr__(self, name):
            return getattr(torch, name)

        def isfinite(self, tensor):
            return torch.ones_like(tensor, dtype=torch.bool)

    monkeypatch.setattr(checkpoint_schema, "torch", TorchSeeingNoNaN())

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    for whole in ([], ["--whole"]):
        result = invoke(text_file, "-c", broken, "--json", *whole)
        assert result.exit_code == 0, result.output
        records = [json.loads(line, parse_constant=refuse) for line in result.stdout.splitlines()]
        for record in records:
            assert record["chars"] > 0
            for name in ("logprob", "log10prob", "bits_per_char", "perplexity"):
                assert record[name] is None, (name, record)


def test_the_heatmap_draws_a_long_line_as_it_is_scored(lstm_checkpoint):
    line = "To be, or not to be, that is the question; " * 250  # over long_line_chars(1)
    result = invoke("-c", lstm_checkpoint, "--batch-size", "1", "--heatmap", input=line + "\nor\n")
    assert result.exit_code == 0, result.output
    assert line + "\u21b5\nor\u21b5\n" in result.stderr
    rows = tsv_rows(result.stdout)
    assert (rows[1][1], rows[1][-1]) == (str(len(line) + 1), line)
    assert rows[1][5] == format_number(
        score(load_checkpoint(lstm_checkpoint), line + "\n").bits_per_char
    )


@pytest.mark.slow
@pytest.mark.parametrize("whole", [[], ["--whole"]])
def test_unknown_characters_are_named_from_the_scores_not_the_text_again(
    lstm_checkpoint, monkeypatch, whole
):
    looked_up: list[int] = []
    unknown_chars = Vocab.unknown_chars

    def recording(vocab: Vocab, text: str) -> list[str]:
        looked_up.append(len(text))
        return unknown_chars(vocab, text)

    monkeypatch.setattr(Vocab, "unknown_chars", recording)
    text = "To b\u00e9\n" + "or not\n" * 3_000 + "\u20ac\n"
    result = invoke("-c", lstm_checkpoint, "--batch-size", "1", *whole, input=text)

    assert result.exit_code == 0, result.output
    assert "skipped 2 occurrences of 2 characters the model never saw: '\u00e9', '\u20ac'" in (
        result.stderr
    )
    assert max(looked_up) < len(text) / 2  # never the whole input
