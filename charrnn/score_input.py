"""The text `charrnn score` reads, decoded as it is read: a file or stdin in pieces of
READ_BYTES, so that scoring never holds more of the input than the lines it is working on.

The checks and messages are decode_text's (a UTF-16/32 byte order mark, NUL bytes, the first byte
that is not UTF-8, by its offset in the whole input); a UTF-8 byte order mark is dropped and
"\\r\\n" read as "\\n", also where a read cuts between them.
"""

from __future__ import annotations

import codecs
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from .data import binary_error, bom_error, not_utf8_error
from .errors import ConfigError, DataError

READ_BYTES = 1 << 20  # per read: a few MB of text at once, whatever the input's size
_BOM_BYTES = 4  # the longest byte order mark (UTF-32's) decides what the input starts with


class TextInput:
    """An opened input: iterate it for its text, in pieces cut anywhere (not at line ends).

    source: its name for messages ("stdin" for standard input); size: its length in bytes
    where known in advance (a regular file), else None. A file it opened, it closes on exit.
    """

    def __init__(self, stream: BinaryIO, source: str, size: int | None = None, owned: bool = False):
        self.stream, self.source, self.size, self.owned = stream, source, size, owned

    def __iter__(self) -> Iterator[str]:
        return decode_pieces(_chunks(self.stream), self.source)

    def __enter__(self) -> TextInput:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.owned:
            self.stream.close()


def open_text_input(file: str | None, stdin: BinaryIO | None = None) -> TextInput:
    """The text one command reads (`charrnn score`): FILE, or stdin for '-' or no FILE while stdin
    is piped. A run directory or a checkpoint given by mistake is named as such; nothing is read
    yet, so these errors come before the model is loaded."""
    if file is None or file == "-":
        if file is None and stdin is None and sys.stdin.isatty():
            raise ConfigError(
                "no text to score: give a FILE, or pipe text in (echo 'To be' | charrnn score); "
                "'-' reads stdin"
            )
        return TextInput(stdin or sys.stdin.buffer, "stdin")
    path = Path(file)
    if path.is_dir():
        if (path / "best.pt").is_file() or (path / "last.pt").is_file():
            raise ConfigError(
                f"{file} is a run directory, not text to score; "
                f"to score with its model: charrnn score TEXT_FILE -c {file}"
            )
        raise DataError(f"{file} is a directory; give a text file")
    if path.suffix == ".pt":
        raise ConfigError(
            f"{file} looks like a checkpoint, not text to score; "
            f"to score with it: charrnn score TEXT_FILE -c {file}"
        )
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise DataError(f"file not found: {file}") from None
    except OSError as problem:
        raise DataError(f"cannot read {file}: {problem.strerror}") from None
    return TextInput(stream, file, path.stat().st_size if path.is_file() else None, owned=True)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    # read1 returns what a pipe has now instead of waiting for READ_BYTES, so rows come out
    # while a slow writer is still writing.
    read = getattr(stream, "read1", None) or stream.read
    while chunk := read(READ_BYTES):
        yield chunk


def decode_pieces(chunks: Iterable[bytes], source: str) -> Iterator[str]:
    """decode_text() for bytes that come in chunks: the same text, in pieces, and the same errors.

    source: the file name for messages; "stdin" for text read from standard input.
    """
    head, checked = b"", False
    offset = 0  # bytes decoded before `pending`
    pending = b""  # the start of a character cut by the end of a chunk
    carry = ""  # a final "\r" held back in case the next piece starts with "\n"
    started = False  # some text was decoded: a "\ufeff" from now on is text, not a mark
    chunks = iter(chunks)
    while True:
        chunk = next(chunks, None)
        final = chunk is None
        if not checked:  # the first bytes must hold a whole byte order mark to recognise one
            head += chunk or b""
            if len(head) < _BOM_BYTES and not final:
                continue
            problem = bom_error(head, source)
            if problem is not None:
                raise problem
            chunk, checked = head, True
        data = pending + chunk if pending and chunk else (chunk or pending)
        text, used = _decode(data, offset, source, final)
        offset, pending = offset + used, data[used:]
        text = carry + text
        carry = "" if final or not text.endswith("\r") else "\r"
        text = text[: len(text) - len(carry)].replace("\r\n", "\n")
        if text and not started:
            text, started = text.removeprefix("\ufeff"), True
        if text:
            yield text
        if final:
            return


def _decode(data: bytes, offset: int, source: str, final: bool) -> tuple[str, int]:
    """The text of `data`'s whole characters and how many bytes they took; offset: the bytes
    before `data`, for messages."""
    nul = data.find(b"\0")
    if nul != -1:
        raise binary_error(source, offset + nul)
    try:
        return codecs.utf_8_decode(data, "strict", final)
    except UnicodeDecodeError as error:
        raise not_utf8_error(source, offset + error.start, data[error.start]) from None
