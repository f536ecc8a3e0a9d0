"""Reading corpora, the train/validation split (data.py), and the training windows (batches.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write

from charrnn import batches
from charrnn.batches import RandomWindows, StatefulWindows, validation_ids, validation_streams
from charrnn.data import (
    STDIN_SOURCE,
    check_split,
    decode_text,
    read_corpus,
    split_ids,
    stored_corpus_paths,
    val_fraction_range,
)
from charrnn.errors import DataError

# --- reading -------------------------------------------------------------------------------


def test_several_files_are_joined_in_the_order_given(tmp_path):
    first = write(tmp_path / "b.txt", "Ça va — oui\n")
    second = write(tmp_path / "a.txt", "no newline at the end")
    third = write(tmp_path / "c.txt", "🙂")

    corpus = read_corpus([first, second, third])

    # A file that does not end a line gets a newline, so files never run into each other.
    assert corpus.text == "Ça va — oui\nno newline at the end\n🙂\n"
    assert corpus.sources == (str(first), str(second), str(third))
    assert corpus.name == "b"


def test_a_single_file_is_read_as_is(tmp_path):
    path = write(tmp_path / "one.txt", "no trailing newline")

    assert read_corpus([path]).text == "no trailing newline"


def test_a_directory_means_its_text_files_in_sorted_order(tmp_path):
    folder = tmp_path / "books"
    write(folder / "b.txt", "second\n")
    write(folder / "a.txt", "first\n")
    write(folder / "sub" / "c.md", "third\n")
    write(folder / ".hidden.txt", "hidden file\n")
    write(folder / ".git" / "HEAD", "hidden directory\n")
    write(folder / "image.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")

    corpus = read_corpus([folder])

    assert corpus.text == "first\nsecond\nthird\n"
    assert corpus.sources == tuple(str(folder / name) for name in ("a.txt", "b.txt", "sub/c.md"))


def test_byte_order_mark_and_windows_line_endings_are_normalised(tmp_path):
    path = write(tmp_path / "dos.txt", "\ufeffline one\r\nline two\r\n".encode())

    assert read_corpus([path]).text == "line one\nline two\n"


def test_missing_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(DataError, match=r"file not found: .*nope\.txt"):
        read_corpus([tmp_path / "nope.txt"])


def test_directory_without_text_files_is_an_error(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    write(folder / ".hidden.txt", "hidden\n")
    write(folder / "data.bin", b"\0\1\2\3")

    with pytest.raises(DataError, match=r"directory .*empty has no text files"):
        read_corpus([folder])


def test_empty_corpus_is_an_error(tmp_path):
    with pytest.raises(DataError, match="the corpus is empty"):
        read_corpus([write(tmp_path / "empty.txt", "")])


def test_no_corpus_at_all_is_an_error():
    with pytest.raises(DataError, match="no corpus"):
        read_corpus([])


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"caf\xe9 au lait", 3),  # Latin-1 e-acute
        ("héllo wörld ".encode() + b"\xff rest", len("héllo wörld ".encode())),
        (b"\xc3", 0),  # truncated two-byte sequence
    ],
)
def test_non_utf8_text_names_the_byte_offset(tmp_path, data, offset):
    path = write(tmp_path / "latin.txt", data)

    with pytest.raises(DataError) as raised:
        read_corpus([path])

    message = str(raised.value)
    assert f"{path} is not UTF-8 (bad byte at offset {offset})" in message
    assert "iconv" in message  # the error says how to fix it


def test_non_utf8_hint_is_a_command_that_works_as_printed(tmp_path):
    path = write(tmp_path / "my notes.txt", b"caf\xe9\n")

    with pytest.raises(DataError) as raised:
        read_corpus([path])

    target = tmp_path / "my notes.utf8.txt"
    assert str(raised.value).endswith(
        f"if it is Latin-1, convert it with: iconv -f LATIN1 -t UTF-8 '{path}' > '{target}'"
    )


def test_a_bad_byte_in_0x80_to_0x9f_suggests_windows_1252(tmp_path):
    path = write(tmp_path / "quotes.txt", b"\x93quoted\x94\n")

    with pytest.raises(DataError) as raised:
        read_corpus([path])

    assert str(raised.value).endswith(
        f"if it is Windows-1252, convert it with: iconv -f CP1252 -t UTF-8 {path} "
        f"> {tmp_path / 'quotes.utf8.txt'}"
    )


def test_non_utf8_on_stdin_says_to_pipe_it_through_iconv():
    with pytest.raises(DataError) as raised:
        decode_text(b"caf\xe9", "stdin")

    assert str(raised.value) == (
        "stdin is not UTF-8 (bad byte at offset 3); if it is Latin-1, "
        "pipe it through: iconv -f LATIN1 -t UTF-8"
    )


@pytest.mark.parametrize(
    ("encoding", "python_codec", "order"),
    [
        ("UTF-16", "utf-16-le", "little-endian"),
        ("UTF-16", "utf-16-be", "big-endian"),
        ("UTF-32", "utf-32-le", "little-endian"),
        ("UTF-32", "utf-32-be", "big-endian"),
    ],
)
def test_utf16_and_utf32_with_a_byte_order_mark_are_named_not_called_binary(
    tmp_path, encoding, python_codec, order
):
    path = write(tmp_path / "wide.txt", "\ufeffhello, wörld\n".encode(python_codec))

    with pytest.raises(DataError) as raised:
        read_corpus([path])

    assert str(raised.value) == (
        f"{path} is {encoding} ({order}, with a byte order mark), not UTF-8; "
        f"convert it with: iconv -f {encoding} -t UTF-8 {path} > {tmp_path / 'wide.utf8.txt'}"
    )


def test_a_utf16_file_in_a_directory_is_reported_not_skipped(tmp_path):
    folder = tmp_path / "mixed"
    write(folder / "a.txt", "plain\n")
    wide = write(folder / "b.txt", "\ufeffwide\n".encode("utf-16-le"))

    with pytest.raises(DataError, match=rf"{wide} is UTF-16 \(little-endian"):
        read_corpus([folder])


def test_a_utf8_byte_order_mark_is_still_just_dropped(tmp_path):
    path = write(tmp_path / "bom.txt", "\ufeffplain text\n".encode())

    assert read_corpus([path]).text == "plain text\n"


def test_nul_bytes_mean_binary_data(tmp_path):
    path = write(tmp_path / "blob.txt", b"looks like text\0then not")

    with pytest.raises(DataError, match=r"looks binary \(NUL byte at offset 15\)"):
        read_corpus([path])


def test_decode_text_checks_nul_before_utf8():
    with pytest.raises(DataError, match="NUL byte at offset 1"):
        decode_text(b"a\0\xff", "x")
    assert decode_text("ok é".encode(), "x") == "ok é"


# --- stdin and names -----------------------------------------------------------------------


def test_a_dash_reads_the_corpus_from_stdin_named_stdin():
    corpus = read_corpus(["-"], stdin=io.BytesIO("\ufeffpiped\r\ntext\n".encode()))

    assert corpus.text == "piped\ntext\n"
    assert corpus.sources == (STDIN_SOURCE,)
    assert corpus.name == "stdin"


def test_stdin_can_be_joined_with_files(tmp_path):
    path = write(tmp_path / "after.txt", "file\n")

    corpus = read_corpus(["-", path], stdin=io.BytesIO(b"piped"))

    assert corpus.text == "piped\nfile\n"
    assert corpus.sources == (STDIN_SOURCE, str(path))
    assert corpus.name == "stdin"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"caf\xe9", r"stdin is not UTF-8 .*pipe it through: iconv -f LATIN1 -t UTF-8$"),
        ("\ufeffhi".encode("utf-16-le"), r"stdin is UTF-16 \(little-endian"),
        (b"a\0b", r"stdin looks binary \(NUL byte at offset 1\)"),
        (b"", "the corpus is empty: stdin"),
    ],
)
def test_stdin_is_checked_like_a_file(data, message):
    with pytest.raises(DataError, match=message):
        read_corpus(["-"], stdin=io.BytesIO(data))


def test_stdin_can_be_given_only_once():
    with pytest.raises(DataError, match="only once"):
        read_corpus(["-", "-"], stdin=io.BytesIO(b"text"))


def test_a_directory_corpus_is_named_after_the_directory(tmp_path, monkeypatch):
    folder = tmp_path / "mydir"
    write(folder / "a.txt", "first\n")

    assert read_corpus([folder]).name == "mydir"
    assert read_corpus([f"{folder}/"]).name == "mydir"
    monkeypatch.chdir(folder)
    assert read_corpus([Path(".")]).name == "mydir"


def test_several_paths_are_named_after_the_first(tmp_path):
    folder = tmp_path / "mydir"
    write(folder / "z.txt", "inside\n")
    first = write(tmp_path / "notes.md", "notes\n")

    assert read_corpus([first, folder]).name == "notes"
    assert read_corpus([folder, first]).name == "mydir"


def test_a_stdin_corpus_cannot_be_read_again_on_resume(tmp_path):
    checkpoint = tmp_path / "runs" / "stdin" / "last.pt"

    with pytest.raises(DataError) as raised:
        stored_corpus_paths([STDIN_SOURCE], checkpoint)

    assert str(raised.value) == (
        f"{checkpoint} was trained on text from stdin, which cannot be read again; give the "
        f"corpus again, e.g. pipe the same text in: ... | charrnn train - --resume {checkpoint}"
    )
    assert stored_corpus_paths(["/data/a.txt"], checkpoint) == [Path("/data/a.txt")]


def test_corpus_fingerprint_changes_with_the_text(tmp_path):
    one = read_corpus([write(tmp_path / "one.txt", "abc")])
    same = read_corpus([write(tmp_path / "same.txt", "abc")])
    other = read_corpus([write(tmp_path / "other.txt", "abd")])

    assert one.sha256 == same.sha256 != other.sha256


# --- split ---------------------------------------------------------------------------------


def test_split_holds_out_the_last_fraction_for_validation():
    ids = torch.arange(1000)

    train_ids, val_ids = split_ids(ids, 0.1)

    assert torch.equal(train_ids, torch.arange(900))
    assert torch.equal(val_ids, torch.arange(900, 1000))


def test_too_short_corpus_is_an_error_that_says_what_is_needed():
    train_ids, val_ids = split_ids(torch.arange(20), 0.1)  # 18 train, 2 val

    check_split(train_ids, val_ids, seq_len=17)  # 18 >= 17 + 1: just enough
    with pytest.raises(DataError) as raised:
        check_split(train_ids, val_ids, seq_len=18)
    message = str(raised.value)
    assert "too short" in message
    assert "20 characters" in message
    assert "needs 19" in message
    assert "--seq-len" in message

    # Too short whatever the split: the message says so and does not blame --val-fraction.
    assert "--val-fraction" not in message
    assert "at least 21 characters" in message


def test_a_too_small_val_fraction_is_blamed_with_the_least_that_works():
    train_ids, val_ids = split_ids(torch.arange(20), 0.05)  # 19 train, 1 val

    with pytest.raises(DataError) as raised:
        check_split(train_ids, val_ids, seq_len=4)

    assert str(raised.value) == (
        "--val-fraction is too small for this corpus: 20 characters give 19 for training and "
        "1 for validation, but validation needs 2; use --val-fraction 0.051 or more"
    )
    check_split(*split_ids(torch.arange(20), 0.051), seq_len=4)
    with pytest.raises(DataError):
        check_split(*split_ids(torch.arange(20), 0.050), seq_len=4)


def test_a_too_short_training_part_is_blamed_on_the_length_and_seq_len():
    train_ids, val_ids = split_ids(torch.arange(200), 0.6)  # 80 train, 120 val

    with pytest.raises(DataError) as raised:
        check_split(train_ids, val_ids, seq_len=100)

    assert str(raised.value) == (
        "the corpus is too short for --seq-len 100: 200 characters give 80 for training and "
        "120 for validation, but one training window needs 101; use a longer text, "
        "--seq-len 79 or less, or a --val-fraction of at most 0.495"
    )
    check_split(*split_ids(torch.arange(200), 0.6), seq_len=79)
    check_split(*split_ids(torch.arange(200), 0.495), seq_len=100)
    with pytest.raises(DataError):
        check_split(*split_ids(torch.arange(200), 0.496), seq_len=100)


@pytest.mark.parametrize(("total", "window"), [(20, 5), (150, 17), (1000, 101), (100_003, 50)])
def test_val_fraction_range_is_exactly_the_fractions_that_work(total, window):
    least, most = val_fraction_range(total, window)
    ids = torch.arange(total)
    step = 10 ** -len(least.split(".")[1])

    for fraction in (float(least), float(most)):
        train_ids, val_ids = split_ids(ids, fraction)
        assert len(train_ids) >= window and len(val_ids) >= 2
    assert len(split_ids(ids, float(least) - step)[1]) < 2  # one step less holds out too little


def test_no_val_fraction_works_for_a_text_shorter_than_a_window_and_validation():
    assert val_fraction_range(20, 19) is None
    # 21 characters leave exactly 19 for training and 2 for validation when 1/21 < f <= 2/21.
    assert val_fraction_range(21, 19) == ("0.048", "0.095")


# --- windows -------------------------------------------------------------------------------


def test_stateful_windows_continue_each_stream_where_the_last_window_ended():
    ids = torch.arange(1001)
    windows = StatefulWindows(ids, batch_size=4, seq_len=10)

    inputs0, targets0, reset0 = windows.batch(0)
    inputs1, targets1, reset1 = windows.batch(1)

    assert inputs0.shape == targets0.shape == (4, 10)
    assert reset0 and not reset1
    assert torch.equal(targets0, inputs0 + 1)
    # Row b of window k+1 starts right after row b of window k ended.
    assert torch.equal(inputs1[:, 0], inputs0[:, -1] + 1)
    assert torch.equal(inputs1, inputs0 + 10)
    # The streams are disjoint, contiguous quarters of the text.
    assert inputs0[:, 0].tolist() == [0, 250, 500, 750]


def test_stateful_windows_cover_each_stream_then_start_a_new_pass():
    ids = torch.arange(1001)
    windows = StatefulWindows(ids, batch_size=4, seq_len=10)
    per_pass = windows.windows_per_pass

    stream0 = torch.cat([windows.batch(step)[0][0] for step in range(per_pass)])

    assert per_pass == 25
    assert torch.equal(stream0, torch.arange(250))
    inputs, _, reset = windows.batch(per_pass)
    assert reset
    assert torch.equal(inputs, windows.batch(0)[0])


def test_random_windows_targets_are_inputs_shifted_by_one():
    ids = torch.arange(500) * 3  # distinct values, so a window's position is recoverable
    windows = RandomWindows(
        ids, batch_size=8, seq_len=12, generator=torch.Generator().manual_seed(1)
    )

    starts = set()
    for step in range(5):
        inputs, targets, reset = windows.batch(step)
        assert inputs.shape == targets.shape == (8, 12)
        assert reset
        start_ids = inputs[:, :1] // 3
        assert torch.equal(inputs, ids[start_ids + torch.arange(12)])  # real windows of the text
        assert torch.equal(targets, ids[start_ids + 1 + torch.arange(12)])
        starts.update(start_ids.flatten().tolist())
    assert len(starts) > 20  # independent offsets, not one window repeated


def test_random_windows_depend_only_on_the_generator_state():
    ids = torch.arange(300)
    first = RandomWindows(ids, 4, 8, torch.Generator().manual_seed(5))
    second = RandomWindows(ids, 4, 8, torch.Generator().manual_seed(5))

    for step in range(3):
        assert torch.equal(first.batch(step)[0], second.batch(step)[0])


def test_random_windows_reach_the_last_character():
    ids = torch.arange(20)
    windows = RandomWindows(
        ids, batch_size=64, seq_len=19, generator=torch.Generator().manual_seed(0)
    )

    inputs, targets, _ = windows.batch(0)

    assert torch.equal(inputs[0], torch.arange(19))
    assert torch.equal(targets[0], torch.arange(1, 20))


@pytest.mark.parametrize(
    ("length", "max_streams", "seq_len"), [(1000, 64, 10), (101, 8, 4), (3, 64, 16)]
)
def test_validation_streams_cover_the_validation_text_in_order(length, max_streams, seq_len):
    ids = torch.arange(length)

    inputs, targets = validation_streams(ids, max_streams=max_streams, seq_len=seq_len)

    streams = inputs.size(0)
    assert 1 <= streams <= max_streams
    assert inputs.shape == targets.shape
    usable = inputs.numel()
    # Read row after row, the streams are the text itself, with at most streams-1 left over.
    assert torch.equal(inputs.flatten(), ids[:usable])
    assert torch.equal(targets.flatten(), ids[1 : usable + 1])
    assert length - 1 - usable < streams


# --- memory maps, lookup tables, ranks and the validation cap ----------------------------------


@pytest.mark.parametrize("kind", ["stateful", "random"])
def test_windows_read_stored_ids_through_the_lookup_and_ranks_split_the_rows(kind):
    stored = (np.arange(1001) % 7).astype(np.uint8)  # as a token file holds them
    lookup = np.array([60, 50, 40, 30, 20, 10, 0])  # stored id -> the model's id

    def windows(rows=None):
        if kind == "stateful":
            return StatefulWindows(stored, 4, 10, lookup, rows)
        return RandomWindows(stored, 4, 10, torch.Generator().manual_seed(3), lookup, rows)

    whole, halves = windows(), [windows(slice(0, 2)), windows(slice(2, 4))]
    plain = (
        StatefulWindows(torch.from_numpy(stored.astype(np.int64)), 4, 10)
        if kind == "stateful"
        else RandomWindows(
            torch.from_numpy(stored.astype(np.int64)), 4, 10, torch.Generator().manual_seed(3)
        )
    )
    for step in range(30):
        inputs, targets, reset = whole.batch(step)
        raw_inputs, raw_targets, raw_reset = plain.batch(step)
        assert inputs.dtype == torch.int64 and reset == raw_reset
        assert torch.equal(inputs, torch.from_numpy(lookup)[raw_inputs])
        assert torch.equal(targets, torch.from_numpy(lookup)[raw_targets])
        # Two ranks' rows, one after the other, are the whole batch.
        parts = [half.batch(step) for half in halves]
        assert torch.equal(torch.cat([part[0] for part in parts]), inputs)
        assert torch.equal(torch.cat([part[1] for part in parts]), targets)


def test_validation_reads_the_first_val_max_chars_of_the_held_out_tail(monkeypatch):
    monkeypatch.setattr(batches, "VAL_MAX_CHARS", 10)
    tail = np.arange(100, 200, dtype=np.uint16)

    validated = validation_ids(tail, lookup=None)

    assert torch.equal(validated, torch.arange(100, 110))
    assert validation_ids(tail[:5], lookup=None).tolist() == [100, 101, 102, 103, 104]
