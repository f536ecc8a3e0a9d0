"""charrnn sample --beam K: the most likely continuation; K = 1 is greedy."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from conftest import cli, make_chain_checkpoint, make_checkpoint

from charrnn.beam import beam_search
from charrnn.checkpoint import load_checkpoint
from charrnn.config import SampleConfig


def records(result):
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_beam_of_one_is_greedy_sampling(tiny_checkpoint):
    common = ["-c", tiny_checkpoint, "-n", "300", "--prime", "To be", "--json", "-q"]
    (beam,) = records(cli("sample", *common, "--beam", "1"))
    (greedy,) = records(cli("sample", *common, "--greedy"))
    assert beam["text"] == greedy["text"] and len(beam["text"]) == 300
    assert beam["logprob"] == pytest.approx(greedy["logprob"], abs=1e-4)
    assert beam["beam"] == 1 and beam["seed"] is None


def sequence_logprob(model, vocab, prime, text):
    ids = torch.tensor([vocab.encode(prime + text)])
    logits, _ = model(ids)
    log_probs = logits[0, len(prime) - 1 : -1].double().log_softmax(-1)
    return float(log_probs.gather(1, ids[0, len(prime) :, None]).sum())


def test_a_beam_as_wide_as_every_prefix_finds_the_most_likely_text(tmp_path):
    text = "abca\nbcab\ncab\n"  # four characters
    checkpoint = load_checkpoint(make_checkpoint(tmp_path / "small.pt", text=text, seed=3))
    model, vocab = checkpoint.model, checkpoint.vocab
    length = 4
    config = SampleConfig(length=length, prime="ab", num_samples=3)
    # A beam of V^(length-1) keeps every prefix: its last step ranks all V^length texts.
    found = beam_search(model, vocab, config, width=len(vocab) ** (length - 1))
    with torch.no_grad():
        every = {
            "".join(chars): sequence_logprob(model, vocab, "ab", "".join(chars))
            for chars in itertools.product(vocab.chars, repeat=length)
        }
    best = sorted(every, key=every.get, reverse=True)[:3]
    assert [sample.text for sample in found] == best
    for sample in found:
        assert sample.logprob == pytest.approx(every[sample.text], abs=1e-5)


def test_num_samples_gives_the_best_texts_most_likely_first(lstm_checkpoint):
    found = records(
        cli("sample", "-c", lstm_checkpoint, "--beam", "6", "--num-samples", "3", "-n", "40",
            "--json", "-q")
    )  # fmt: skip
    assert len(found) == 3 and len({r["text"] for r in found}) == 3
    logprobs = [r["logprob"] for r in found]
    assert logprobs == sorted(logprobs, reverse=True)


def test_plain_output_separates_the_best_texts_like_samples(lstm_checkpoint):
    result = cli("sample", "-c", lstm_checkpoint, "--beam", "3", "--num-samples", "2", "-n", "20",
                 "-p", "To", "-q")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    first, second = result.stdout.split("\n---\n")
    assert first.startswith("To") and second.startswith("To") and first != second


def test_the_stop_text_ends_a_text_and_is_left_out(tmp_path):
    # The chain model continues a -> b -> c -> d -> a ...: the most likely text is that chain.
    checkpoint = make_chain_checkpoint(tmp_path / "chain.pt", cycle="abcd")
    (found,) = records(
        cli("sample", "-c", checkpoint, "--beam", "3", "-n", "50", "--stop", "da", "-p", "b",
            "--json", "-q")
    )  # fmt: skip
    assert found["text"] == "c" and found["stopped"] is True
    (whole,) = records(cli("sample", "-c", checkpoint, "--beam", "3", "-n", "10", "-p", "b",
                           "--json", "-q"))  # fmt: skip
    assert whole["text"] == "cdabcdabcd" and whole["stopped"] is False
    assert whole["logprob"] == pytest.approx(0.0, abs=1e-3)  # each step all but certain


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-t", "0.5"], "--beam looks for the most likely text, so --temperature cannot apply"),
        (["--seed", "3", "--top-k", "4"], "so --top-k, --seed cannot apply"),
        (["--num-samples", "5"], "--num-samples 5 asks for more texts than a beam of 2 keeps"),
    ],
)
def test_options_beam_search_cannot_honour_are_refused(lstm_checkpoint, args, message):
    result = cli("sample", "-c", lstm_checkpoint, "--beam", "2", *args)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert message in line


def test_a_beam_of_zero_is_a_usage_error(lstm_checkpoint):
    result = cli("sample", "-c", lstm_checkpoint, "--beam", "0")
    assert result.exit_code == 2 and "--beam" in result.stderr


@pytest.mark.gpu
def test_a_beam_of_one_is_greedy_on_cuda(lstm_checkpoint):
    common = ["-c", lstm_checkpoint, "-n", "200", "--device", "cuda", "--json", "-q"]
    (beam,) = records(cli("sample", *common, "--beam", "1"))
    (greedy,) = records(cli("sample", *common, "--greedy"))
    assert beam["text"] == greedy["text"]
