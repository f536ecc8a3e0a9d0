"""charrnn.score_input: the text `charrnn score` reads, decoded piece by piece exactly as
decode_text decodes it whole, with the same errors at the same offsets."""

from __future__ import annotations

import io

import pytest
from conftest import make_checkpoint, write

from charrnn import score_input
from charrnn.data import decode_text
from charrnn.errors import ConfigError, DataError
from charrnn.score_input import decode_pieces, open_text_input

SAMPLES = [
    "",
    "plain\n",
    "\ufeffa mark, then text\r\n",
    "\ufeff\ufeffthe second is text\n",
    "caf\u00e9 \u20ac \U0001d11e\r\nnext\r\rlast\r",
    "\r\n\r\n\n",
]


def in_chunks(data: bytes, size: int) -> list[bytes]:
    return [data[start : start + size] for start in range(0, len(data), size)]


def outcome(decode):
    try:
        return decode()
    except DataError as problem:
        return f"DataError: {problem}"


@pytest.mark.parametrize("text", SAMPLES)
def test_any_cut_decodes_as_decode_text_does(text):
    data = text.encode()
    whole = decode_text(data, "x")
    for size in range(1, max(2, len(data) + 1)):
        assert "".join(decode_pieces(in_chunks(data, size), "x")) == whole, size


@pytest.mark.parametrize(
    "data",
    [
        b"To be \xff\xfe or not",  # a bad byte
        b"caf\xc3",  # a character cut off at the end
        b"\x93smart\x94 quotes",  # Windows-1252
        b"To\x00\x01\x02",  # binary
        "\ufeffwide\n".encode("utf-16-le"),  # byte order marks
        "\ufeffwide\n".encode("utf-32-be"),
        b"\n" * 50 + b"\xe9" + b"\n" * 50,  # far from the first chunk
    ],
)
def test_any_cut_fails_as_decode_text_does_with_the_offset_in_the_whole_input(data):
    whole = outcome(lambda: decode_text(data, "stdin"))
    assert whole.startswith("DataError")
    for size in range(1, len(data) + 1):
        chunks = in_chunks(data, size)
        pieces = outcome(lambda chunks=chunks: "".join(decode_pieces(chunks, "stdin")))
        assert pieces == whole, size


def test_text_before_a_bad_byte_comes_out_first():
    pieces = decode_pieces([b"To be\n", b"or not\n", b"\xff"], "x")
    assert next(pieces) == "To be\n" and next(pieces) == "or not\n"
    with pytest.raises(DataError, match=r"x is not UTF-8 \(bad byte at offset 13\)"):
        next(pieces)


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads = 0

    def read1(self, size: int = -1) -> bytes:
        self.reads += 1
        return super().read1(size)


def test_the_input_is_read_as_its_pieces_are_asked_for(monkeypatch):
    monkeypatch.setattr(score_input, "READ_BYTES", 10)
    stream = CountingReader(b"0123456789" * 100)
    with open_text_input("-", stdin=stream) as text:
        pieces = iter(text)
        assert next(pieces) == "0123456789"
        assert stream.reads == 1
        assert "".join(pieces) == "0123456789" * 99
    assert not stream.closed  # stdin is not ours to close


def test_a_file_is_opened_at_once_closed_after_and_its_size_known(tmp_path):
    path = write(tmp_path / "lines.txt", "To be\nor not\n")
    with open_text_input(str(path)) as text:
        assert text.size == 13 and text.source == str(path)
        assert "".join(text) == "To be\nor not\n"
    assert text.stream.closed


@pytest.mark.parametrize(
    "kind, error, words",
    [
        ("missing", DataError, "file not found"),
        ("directory", DataError, "is a directory"),
        ("run directory", ConfigError, "is a run directory, not text to score"),
        ("checkpoint", ConfigError, "looks like a checkpoint"),
    ],
)
def test_inputs_that_are_not_text_are_refused_before_reading(tmp_path, kind, error, words):
    path = tmp_path / "input"
    if kind == "directory":
        path.mkdir()
    elif kind == "run directory":
        make_checkpoint(path / "best.pt")
    elif kind == "checkpoint":
        path = make_checkpoint(tmp_path / "model.pt")
    with pytest.raises(error, match=words):
        open_text_input(str(path))
