"""Reading corpora, the train/validation split, and the training windows."""

from __future__ import annotations

import pytest
import torch
from conftest import write

from charrnn.data import (
    RandomWindows,
    StatefulWindows,
    check_split,
    decode_text,
    read_corpus,
    split_ids,
    validation_streams,
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


def test_nul_bytes_mean_binary_data(tmp_path):
    path = write(tmp_path / "blob.txt", b"looks like text\0then not")

    with pytest.raises(DataError, match=r"looks binary \(NUL byte at offset 15\)"):
        read_corpus([path])


def test_decode_text_checks_nul_before_utf8():
    with pytest.raises(DataError, match="NUL byte at offset 1"):
        decode_text(b"a\0\xff", "x")
    assert decode_text("ok é".encode(), "x") == "ok é"


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

    with pytest.raises(DataError, match="too short"):
        check_split(*split_ids(torch.arange(20), 0.05), seq_len=4)  # 1 validation char


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
