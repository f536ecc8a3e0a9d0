"""Encoding corpora as they are read, and the token cache: the same text, vocabulary and hash as
reading it whole, ids in the narrowest type, a cache that is reused, refreshed and never trusted
when damaged or half-written."""

from __future__ import annotations

import io
import mmap
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write

from charrnn import encode
from charrnn.data import Corpus, read_corpus
from charrnn.errors import DataError
from charrnn.token_cache import TokenCorpus, open_corpus, text_corpus_tokens
from charrnn.token_file import release_pages

# A byte order mark, "\r\n" line ends, 2-, 3- and 4-byte characters and a last lone "\r".
TEXT = "\ufeffA 🙂 line\r\nΓειά σου 𝔘𝔫𝔦 — ok\r\n\r\nend 🚀\r"


def decoded(tokens: TokenCorpus) -> str:
    return "".join(tokens.chars[i] for i in tokens.ids.tolist())


def mapped(ids: np.ndarray) -> bool:
    """Whether the ids are read through a memory map (not held in memory)."""
    return isinstance(getattr(ids.base, "obj", None), mmap.mmap)


def error_of(action) -> str:
    with pytest.raises(DataError) as raised:
        action()
    return str(raised.value)


# --- the same text as reading it whole ---------------------------------------------------------


@pytest.mark.parametrize("read_bytes", [1, 2, 3, 5, 7, 1 << 20])
def test_reads_cut_anywhere_give_the_text_vocabulary_and_hash_of_reading_it_whole(
    tmp_path, monkeypatch, read_bytes
):
    monkeypatch.setattr(encode, "READ_BYTES", read_bytes)  # cuts 4-byte characters and "\r\n"
    first = write(tmp_path / "a.txt", TEXT.encode())
    second = write(tmp_path / "b.txt", "no newline at the end 𝔘")

    for paths in ([first], [first, second], [tmp_path]):
        whole = read_corpus(paths)
        for min_bytes in (1 << 30, 0):  # in memory, and through the cache
            tokens = open_corpus(paths, directory=tmp_path / ".cache", min_bytes=min_bytes)
            assert decoded(tokens) == whole.text
            assert tokens.sha256 == whole.sha256
            assert tokens.vocab == whole.vocab
            assert (tokens.sources, tokens.name) == (whole.sources, whole.name)


def test_a_text_in_memory_encodes_to_the_same_ids_as_its_file(tmp_path):
    path = write(tmp_path / "t.txt", TEXT.encode())

    from_file = open_corpus([path])
    in_memory = text_corpus_tokens(read_corpus([path]))

    assert decoded(in_memory) == decoded(from_file) == read_corpus([path]).text
    assert in_memory.sha256 == from_file.sha256


def _distinct(count: int) -> str:
    """`count` distinct characters (no surrogates, none a byte order mark or line end)."""
    chars = (chr(c) for c in range(0x20, 0x110000) if not 0xD800 <= c < 0xE000 and c != 0xFEFF)
    return "".join(next(chars) for _ in range(count))


@pytest.mark.parametrize(
    ("distinct", "dtype"),
    [(1, np.uint8), (256, np.uint8), (257, np.uint16), (65_536, np.uint16), (65_537, np.uint32)],
)
def test_ids_take_the_narrowest_type_the_vocabulary_allows(tmp_path, monkeypatch, distinct, dtype):
    # Plain text first, so the ids already written are widened when new characters arrive.
    monkeypatch.setattr(encode, "READ_BYTES", 4096)
    text = "ab " * 3000 + _distinct(distinct)
    path = write(tmp_path / "chars.txt", text)

    tokens = open_corpus([path], directory=tmp_path / "cache", min_bytes=0)

    assert tokens.ids.dtype == dtype
    assert len(tokens.vocab) == len(set(text))
    assert decoded(tokens) == text


def test_the_vocabulary_holds_characters_met_only_in_the_validation_tail(tmp_path):
    text = "the cat sat on the mat. " * 200 + "Ω"  # Ω only in the last 10%

    tokens = open_corpus([write(tmp_path / "cat.txt", text)])

    assert "Ω" in tokens.vocab
    assert tokens.vocab == Corpus(text, ("cat.txt",)).vocab


# --- bad input: the checks and messages of reading it whole ----------------------------------


@pytest.mark.parametrize("read_bytes", [1, 3, 1 << 20])
def test_a_bad_byte_far_into_a_file_names_the_file_and_its_byte_offset(
    tmp_path, monkeypatch, read_bytes
):
    monkeypatch.setattr(encode, "READ_BYTES", read_bytes)
    good = "héllo 🙂 ".encode() * 100
    path = write(tmp_path / "late.txt", good + b"\xff rest")
    cache = tmp_path / "cache"

    message = error_of(lambda: open_corpus([path], directory=cache, min_bytes=0))

    assert message.startswith(f"{path} is not UTF-8 (bad byte at offset {len(good)}); ")
    assert "iconv" in message
    assert not list(cache.glob("*.tokens")) and not list(cache.glob(".*.tmp"))


@pytest.mark.parametrize(
    "data",
    [
        b"ab\0cd",
        "\ufeffwide".encode("utf-16-le"),
        "\ufeffwide".encode("utf-32-be"),
        b"",
        b"caf\xe9",
    ],
)
def test_bad_corpora_are_refused_with_the_messages_of_reading_them_whole(tmp_path, data):
    path = write(tmp_path / "bad.txt", data)

    assert error_of(lambda: open_corpus([path])) == error_of(lambda: read_corpus([path]))


# --- the cache -----------------------------------------------------------------------------------


def test_a_corpus_from_min_bytes_up_is_cached_and_the_next_run_maps_it(tmp_path):
    path = write(tmp_path / "big.txt", TEXT * 40)
    cache = tmp_path / "cache"

    first = open_corpus([path], directory=cache, min_bytes=0)
    second = open_corpus([path], directory=cache, min_bytes=0)

    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert first.cache_path == second.cache_path and first.cache_path.parent == cache
    assert mapped(second.ids)
    assert decoded(second) == read_corpus([path]).text
    assert second.sha256 == read_corpus([path]).sha256


def test_a_corpus_under_min_bytes_is_encoded_in_memory_and_writes_nothing(tmp_path):
    path = write(tmp_path / "small.txt", TEXT)

    tokens = open_corpus([path], directory=tmp_path / "cache", min_bytes=1 << 20)

    assert tokens.cache_path is None and not mapped(tokens.ids)
    assert not (tmp_path / "cache").exists()


def test_stdin_past_min_bytes_is_spooled_to_an_unnamed_file_and_mapped(tmp_path):
    data = (TEXT * 50).encode()
    cache = tmp_path / "cache"

    tokens = open_corpus(["-"], stdin=io.BytesIO(data), directory=cache, min_bytes=100)

    assert mapped(tokens.ids) and tokens.cache_path is None
    assert decoded(tokens) == read_corpus(["-"], stdin=io.BytesIO(data)).text
    assert list(cache.iterdir()) == []  # unnamed: nothing is left behind


def test_a_changed_file_is_encoded_again_and_its_old_token_file_removed(tmp_path):
    path = write(tmp_path / "notes.txt", "first version of the notes\n" * 20)
    cache = tmp_path / "cache"
    before = os.stat(path)
    first = open_corpus([path], directory=cache, min_bytes=0)

    # The same size and modification time: only the content (and the change time) differ.
    write(path, "other version of the notes\n" * 20)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    second = open_corpus([path], directory=cache, min_bytes=0)

    assert not second.cache_hit
    assert decoded(second) == "other version of the notes\n" * 20
    assert list(cache.glob("*.tokens")) == [second.cache_path] != [first.cache_path]


def _cut_short(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 1)


def _flip(offset_from_end: int | None):
    def damage(path: Path) -> None:
        data = bytearray(path.read_bytes())
        offset = 3 if offset_from_end is None else len(data) - offset_from_end
        data[offset] ^= 0xFF
        path.write_bytes(bytes(data))

    return damage


@pytest.mark.parametrize(
    "damage",
    [
        _cut_short,
        _flip(None),  # an id
        _flip(60),  # the trailer's JSON
        _flip(20),  # the trailer's length
        _flip(1),  # the magic
        lambda path: path.write_bytes(b""),
        lambda path: path.write_bytes(b"not a token file at all" * 10),
    ],
    ids=["cut-short", "id", "trailer", "length", "magic", "empty", "foreign"],
)
def test_a_damaged_token_file_is_encoded_again_never_used(tmp_path, damage):
    path = write(tmp_path / "corpus.txt", TEXT * 30)
    cache = tmp_path / "cache"
    token_file = open_corpus([path], directory=cache, min_bytes=0).cache_path
    assert token_file is not None

    damage(token_file)
    again = open_corpus([path], directory=cache, min_bytes=0)

    assert not again.cache_hit
    assert decoded(again) == read_corpus([path]).text
    assert open_corpus([path], directory=cache, min_bytes=0).cache_hit  # whole again


@pytest.mark.slow
def test_an_encode_killed_half_way_is_never_trusted(tmp_path):
    path = write(tmp_path / "corpus.txt", TEXT * 200)
    cache = tmp_path / "cache"
    script = (
        "import sys; from pathlib import Path; import charrnn.encode as e; e.READ_BYTES = 64\n"
        "from charrnn.token_cache import open_corpus\n"
        "open_corpus([sys.argv[1]], directory=Path(sys.argv[2]), min_bytes=0)\n"
    )
    env = {**os.environ, "CHARRNN_TEST_SLOW_ENCODE_S": "0.02"}
    child = subprocess.Popen([sys.executable, "-c", script, str(path), str(cache)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size for p in cache.glob(".*.tmp")):  # half written
            assert child.poll() is None and time.monotonic() < deadline, "no encode to kill"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()

    assert not list(cache.glob("*.tokens"))  # only the temporary file: never renamed into place
    tokens = open_corpus([path], directory=cache, min_bytes=0)
    assert not tokens.cache_hit
    assert decoded(tokens) == read_corpus([path]).text
    assert not list(cache.glob(".*.tmp"))  # the killed encode's leftover is removed


def test_processes_opening_one_corpus_at_once_encode_it_once(tmp_path, monkeypatch):
    monkeypatch.setattr(encode, "READ_BYTES", 256)
    monkeypatch.setattr(encode, "_TEST_SLOW_ENCODE_S", 0.002)  # long enough to overlap
    path = write(tmp_path / "shared.txt", TEXT * 200)
    cache = tmp_path / "cache"
    found: list[TokenCorpus] = []

    def open_it() -> None:
        found.append(open_corpus([path], directory=cache, min_bytes=0))

    openers = [threading.Thread(target=open_it) for _ in range(2)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join()

    assert sorted(tokens.cache_hit for tokens in found) == [False, True]
    assert decoded(found[0]) == decoded(found[1])


def _resident_token_pages() -> int:
    """kB of token-file pages this process has resident (Linux: /proc/self/smaps)."""
    total, current = 0, ""
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:
            current = fields[5] if len(fields) >= 6 else ""
        elif line.startswith("Rss:") and current.endswith(".tokens"):
            total += int(fields[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc")
def test_released_pages_leave_the_resident_set_and_read_back_the_same(tmp_path):
    path = write(tmp_path / "big.txt", TEXT * 20_000)  # ~1 MB of ids
    tokens = open_corpus([path], directory=tmp_path / "cache", min_bytes=0)
    before = int(tokens.ids.astype(np.int64).sum())  # touches every page
    assert _resident_token_pages() > 100

    release_pages(tokens.ids[10:])  # a view of the map releases the whole map

    assert _resident_token_pages() == 0
    assert int(tokens.ids.astype(np.int64).sum()) == before
