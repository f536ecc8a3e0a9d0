"""charrnn sample --novelty: the longest span a sample copies from the corpus, exactly, and the
share of its 20-character windows found there; the index cached once per corpus."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
from conftest import cli, make_chain_checkpoint, make_run, write

from charrnn.novelty import WINDOW, NoveltyIndex, cache_path, suffix_array


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARRNN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def oracle(sample: str, corpus: str) -> tuple[int, int]:
    """Longest span and windows found, by brute force."""
    longest = max(
        (j - i for i in range(len(sample)) for j in range(i + 1, len(sample) + 1)
         if sample[i:j] in corpus),
        default=0,
    )  # fmt: skip
    found = sum(sample[i : i + WINDOW] in corpus for i in range(len(sample) - WINDOW + 1))
    return longest, found


def test_the_suffix_array_sorts_every_suffix():
    generator = random.Random(0)
    for _ in range(200):
        text = "".join(generator.choice("ab\u00e9\n") for _ in range(generator.randint(1, 70)))
        assert list(suffix_array(text)) == sorted(range(len(text)), key=lambda i: text[i:])
    assert list(suffix_array("a" * 300)) == list(range(299, -1, -1))  # one long repeat


def test_a_copied_span_is_reported_exactly(private_cache):
    generator = random.Random(1)
    corpus = "".join(generator.choice("abcdefgh \n") for _ in range(20_000))
    span = corpus[12_345 : 12_345 + 57]
    sample = "XYZ0123" + span + "9876QRS"  # no character around the span is in the corpus
    novelty = NoveltyIndex.for_text(corpus).measure(sample)
    assert novelty.longest_span == span and novelty.span_start == 7
    assert corpus[novelty.corpus_offset :].startswith(span)
    assert novelty.corpus_line == corpus.count("\n", 0, novelty.corpus_offset) + 1
    assert novelty.windows == len(sample) - WINDOW + 1
    assert novelty.windows_found == len(span) - WINDOW + 1


def test_random_samples_agree_with_brute_force(private_cache):
    generator = random.Random(2)
    corpus = "".join(generator.choice("abc d") for _ in range(3_000))
    index = NoveltyIndex.for_text(corpus)
    for _ in range(40):
        sample = "".join(generator.choice("abc de") for _ in range(generator.randint(0, 90)))
        novelty = index.measure(sample)
        assert (len(novelty.longest_span), novelty.windows_found) == oracle(sample, corpus)
        assert novelty.longest_span in corpus and novelty.longest_span in sample


def test_a_long_copy_is_followed_past_the_first_probe(private_cache):
    generator = random.Random(3)
    corpus = "".join(generator.choice("abcdefgh") for _ in range(5_000))
    span = corpus[1_000:1_700]  # longer than the first comparison
    assert NoveltyIndex.for_text(corpus).measure("#" + span + "#").longest_span == span


def test_the_index_is_built_once_and_cached(private_cache):
    corpus = "the cat sat on the mat\n" * 50
    NoveltyIndex.for_text(corpus)
    cached = cache_path(corpus)
    assert cached.parent == private_cache / "novelty" and cached.is_file()
    np.save(cached, np.arange(len(corpus), dtype=np.int32))  # a marker: not a suffix array
    assert list(NoveltyIndex.for_text(corpus).suffixes[:3]) == [0, 1, 2]  # read, not rebuilt
    cached.write_bytes(b"damaged")
    rebuilt = NoveltyIndex.for_text(corpus)
    assert list(rebuilt.suffixes) == list(suffix_array(corpus))


CYCLE = "Tohe bsaqutin:"  # what the chain model writes, round and round


def test_sample_novelty_reports_the_span_the_model_copied(tmp_path):
    checkpoint = make_chain_checkpoint(tmp_path / "chain.pt", cycle=CYCLE)
    text = (CYCLE * 6)[:60]  # greedy sampling writes exactly this
    span = text[5:33]
    corpus = write(tmp_path / "corpus.txt", "1234567890\n" * 3 + "#" + span + "#\n" + "0987\n")
    result = cli("sample", "-c", checkpoint, "--greedy", "-n", "60", "--json", "--novelty",
                 corpus, "-q")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["text"] == text
    expected_longest, expected_found = oracle(text, corpus.read_text())
    novelty = record["novelty"]
    assert novelty["longest_span"] == span and len(span) == expected_longest
    assert novelty["corpus_line"] == 4 and novelty["windows_found"] == expected_found
    assert novelty["windows"] == 41 and novelty["share_found"] == pytest.approx(expected_found / 41)
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("novelty:")]
    assert f"{len(span)} chars" in line and f"{expected_found} of 41 20-character windows" in line


def test_beam_search_reports_novelty_too(tmp_path):
    checkpoint = make_chain_checkpoint(tmp_path / "chain.pt", cycle=CYCLE)
    corpus = write(tmp_path / "corpus.txt", "xx" + CYCLE[2:9] + "xx\n")
    result = cli("sample", "-c", checkpoint, "--beam", "2", "-n", "30", "--novelty", corpus, "-q")
    assert result.exit_code == 0, result.stderr
    assert f'7 chars, "{CYCLE[2:9]}" (at its line 1)' in result.stderr


def test_bare_novelty_uses_the_runs_own_corpus_and_says_when_it_is_gone(tmp_path, tiny_corpus):
    run = tmp_path / "runs" / "tiny"
    make_run(run, tiny_corpus)
    result = cli("sample", run, "-n", "30", "--seed", "1", "--novelty")
    assert result.exit_code == 0, result.stderr
    assert f"novelty: indexing {tiny_corpus.resolve()}" in result.stderr
    assert f"novelty: longest span found in {tiny_corpus.resolve()}" in result.stderr
    again = cli("sample", run, "-n", "30", "--seed", "1", "--novelty")
    assert "indexing" not in again.stderr  # cached
    shutil.move(tiny_corpus, tmp_path / "moved.txt")
    gone = cli("sample", run, "-n", "30", "--novelty")
    assert gone.exit_code == 1
    (line,) = gone.stderr.splitlines()[-1:]
    assert "the text this model was trained on is not at hand" in line
    assert "give it: --novelty CORPUS" in line


def test_a_changed_corpus_is_not_taken_for_the_runs_own(tmp_path, tiny_corpus):
    run = tmp_path / "runs" / "tiny"
    make_run(run, tiny_corpus)
    tiny_corpus.write_text("something else entirely\n")
    result = cli("sample", run, "-n", "10", "--novelty")
    assert result.exit_code == 1 and "or changed since" in result.stderr
