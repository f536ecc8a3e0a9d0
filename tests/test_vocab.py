"""The vocabulary: every distinct character of the text, full Unicode, sorted."""

from __future__ import annotations

import pytest
import torch

from charrnn.errors import VocabError
from charrnn.vocab import Vocab, describe_chars, describe_skipped

UNICODE_TEXT = "Café — naïve 🙂 façade\nzebra ÅNGSTRÖM 🙂 é"


def test_vocab_is_every_distinct_character_sorted_by_code_point():
    vocab = Vocab.from_text(UNICODE_TEXT)

    assert vocab.chars == sorted(set(UNICODE_TEXT))
    assert len(vocab) == len(set(UNICODE_TEXT))
    for char in "é—🙂\nÅ":
        assert char in vocab
    assert vocab.chars[0] == "\n"  # lowest code point first
    assert vocab.chars[-1] == "🙂"  # astral-plane emoji last
    assert vocab.to_string() == "".join(sorted(set(UNICODE_TEXT)))


def test_vocab_ids_do_not_depend_on_the_order_characters_appear():
    assert Vocab.from_text("cab") == Vocab.from_text("abcabc")
    assert Vocab.from_text("cab").index == {"a": 0, "b": 1, "c": 2}


def test_encode_then_decode_round_trips_unicode_text():
    vocab = Vocab.from_text(UNICODE_TEXT)

    ids = vocab.encode(UNICODE_TEXT)

    assert len(ids) == len(UNICODE_TEXT)  # one id per code point, emoji included
    assert all(0 <= i < len(vocab) for i in ids)
    assert vocab.decode(ids) == UNICODE_TEXT
    assert torch.equal(vocab.encode_tensor(UNICODE_TEXT), torch.tensor(ids, dtype=torch.long))


def test_unknown_characters_raise_an_error_that_lists_them():
    vocab = Vocab.from_text("abc")

    with pytest.raises(VocabError) as raised:
        vocab.encode("abXcé\tX")

    message = str(raised.value)
    assert "the text has 3 characters the model never saw" in message
    for shown in ("'X'", "'é'", "'\\t'"):  # control characters shown by their escape
        assert shown in message
    assert vocab.unknown_chars("abXcé\tX") == ["\t", "X", "é"]


def test_one_unknown_character_is_counted_in_the_singular():
    with pytest.raises(VocabError, match="the text has 1 character the model never saw: 'X'"):
        Vocab.from_text("abc").encode("abXc")


def test_skipped_characters_are_described_by_occurrences_and_by_distinct_characters():
    assert describe_skipped(7, ["é", "€"]) == (
        "skipped 7 occurrences of 2 characters the model never saw: 'é', '€'"
    )
    assert (
        describe_skipped(1, ["é"]) == "skipped 1 occurrence of 1 character the model never saw: 'é'"
    )
    assert describe_skipped(3, ["é"]).startswith("skipped 3 occurrences of 1 character ")


def test_skip_mode_drops_unknown_characters():
    vocab = Vocab.from_text("abc")

    ids = vocab.encode("aXbé🙂c", unknown="skip")

    assert vocab.decode(ids) == "abc"


def test_describe_chars_caps_long_lists():
    chars = [chr(ord("a") + i) for i in range(26)]

    described = describe_chars(chars, limit=5)

    assert described.startswith("'a', 'b', 'c', 'd', 'e'")
    assert described.endswith("and 21 more")


def test_empty_vocabulary_is_refused():
    with pytest.raises(VocabError, match="empty"):
        Vocab.from_text("")
