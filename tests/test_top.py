"""charrnn score --top N: what the model expected at each position, its own softmax."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_TEXT, cli

from charrnn import next_chars
from charrnn.checkpoint import load_checkpoint


def softmax_before_each(checkpoint, text, context="\n"):
    """(len(text), V): the model's softmax before each character of `text` (all known)."""
    loaded = load_checkpoint(checkpoint)
    ids = torch.tensor([loaded.vocab.encode(context + text)])
    with torch.no_grad():
        logits, _ = loaded.model(ids)
    return loaded.vocab, logits[0, len(context) - 1 : -1].softmax(-1)


def rows(result):
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_top_probabilities_are_the_models_softmax(tiny_checkpoint):
    text = "To be, or not to be"
    found = rows(cli("score", "-c", tiny_checkpoint, "--top", "5", "--json", "-q", input=text))
    vocab, probs = softmax_before_each(tiny_checkpoint, text)
    assert [row["position"] for row in found] == list(range(len(text)))
    for row, expected in zip(found, probs, strict=True):
        best = expected.topk(5)
        assert [t["char"] for t in row["top"]] == [vocab.chars[i] for i in best.indices.tolist()]
        assert [t["prob"] for t in row["top"]] == pytest.approx(best.values.tolist(), abs=1e-6)
        came = vocab.index[row["char"]]
        assert row["prob"] == pytest.approx(float(expected[came]), abs=1e-6)
        assert row["rank"] == int((expected > expected[came]).sum()) + 1


def test_a_character_the_model_never_saw_gets_a_row_and_is_not_read(lstm_checkpoint):
    found = rows(cli("score", "-c", lstm_checkpoint, "--top", "3", "--json", "-q", input="To#be"))
    assert [row["char"] for row in found] == list("To#be")
    assert found[2]["prob"] is None and found[2]["rank"] is None
    vocab, probs = softmax_before_each(lstm_checkpoint, "Tobe")  # as if '#' were not there
    assert found[2]["top"][0]["prob"] == pytest.approx(float(probs[2].max()), abs=1e-6)
    assert found[3]["prob"] == pytest.approx(float(probs[2][vocab.index["b"]]), abs=1e-6)


def test_strict_makes_an_unknown_character_an_error(lstm_checkpoint):
    result = cli("score", "-c", lstm_checkpoint, "--top", "3", "--strict", input="To#be")
    assert result.exit_code == 1 and result.stdout == ""
    assert "never saw: '#'" in result.stderr


def test_a_long_text_read_in_chunks_is_read_as_one(lstm_checkpoint, monkeypatch):
    text = TINY_TEXT[:300]
    monkeypatch.setattr(next_chars, "CHUNK", 7)
    found = rows(cli("score", "-c", lstm_checkpoint, "--top", "1", "--json", "-q", input=text))
    vocab, probs = softmax_before_each(lstm_checkpoint, text)
    assert [row["prob"] for row in found] == pytest.approx(
        [float(p[vocab.index[c]]) for p, c in zip(probs, text, strict=True)], abs=1e-6
    )


def test_piped_rows_are_tab_separated_with_a_column_pair_per_guess(lstm_checkpoint):
    result = cli("score", "-c", lstm_checkpoint, "--top", "2", "-q", input="a\nb")
    assert result.exit_code == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == ["position", "char", "prob", "rank", "next1", "p1", "next2", "p2"]
    assert [line.split("\t")[1] for line in lines] == ["a", "\\n", "b"]
    assert all(len(line.split("\t")) == 8 for line in lines)


def test_more_guesses_than_characters_lists_them_all(lstm_checkpoint):
    vocab_size = len(load_checkpoint(lstm_checkpoint).vocab)
    (row,) = rows(cli("score", "-c", lstm_checkpoint, "--top", "1000", "--json", "-q", input="T"))
    assert len(row["top"]) == vocab_size
    assert sum(t["prob"] for t in row["top"]) == pytest.approx(1.0, abs=1e-5)


def test_the_context_is_read_first(lstm_checkpoint):
    (row,) = rows(cli("score", "-c", lstm_checkpoint, "--top", "2", "--json", "--context", "To",
                      "-q", input=" "))  # fmt: skip
    _, probs = softmax_before_each(lstm_checkpoint, " ", context="To")
    assert row["top"][0]["prob"] == pytest.approx(float(probs[0].max()), abs=1e-6)


@pytest.mark.parametrize("other", [["--sort"], ["--heatmap"], ["--whole", "--streams", "2"]])
def test_options_that_shape_score_rows_are_refused_with_top(lstm_checkpoint, other):
    result = cli("score", "-c", lstm_checkpoint, "--top", "3", *other, input="To be")
    assert result.exit_code == 2
    assert "--top lists what was expected at each position" in result.stderr


def test_empty_input_is_a_note(lstm_checkpoint):
    result = cli("score", "-c", lstm_checkpoint, "--top", "3", input="")
    assert result.exit_code == 0 and result.stdout == ""
    assert "the input is empty" in result.stderr
