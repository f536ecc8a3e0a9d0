"""The sampling library: the fast step, the draws, seeds, batches, prime, stop text, log-probs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import make_checkpoint

from charrnn import resources, sampling
from charrnn.checkpoint import Checkpoint, load_checkpoint
from charrnn.config import SampleConfig
from charrnn.decoding import StopFilter
from charrnn.device import cpu_has_bf16
from charrnn.errors import CheckpointError, ConfigError, VocabError
from charrnn.model import CharRNN
from charrnn.sampling import (
    NOISE_BLOCK,
    Generation,
    generate,
    preview,
    resolve_precision,
    sample_text,
    sample_texts,
    stream_text,
)
from charrnn.stepper import Stepper

PRIME = "To be, or not"


def peaked(checkpoint_path: Path, sharpness: float = 6.0) -> Checkpoint:
    """A loaded tiny checkpoint whose output layer is scaled up, so its next-character
    distributions are far from uniform and top-k/top-p/temperature make a visible difference."""
    loaded = load_checkpoint(checkpoint_path)
    with torch.no_grad():
        loaded.model.head.weight.mul_(sharpness)
        loaded.model.head.bias.mul_(sharpness)
    return loaded


def parts(state: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """An LSTM's (h, c) or another cell's (h,)."""
    assert isinstance(state, tuple)
    return state


def step_logits(checkpoint: Checkpoint, prime: str, text: str) -> torch.Tensor:
    """model.forward's logits (len(text), V) for choosing each character of `text` after `prime`,
    re-reading the whole history: the slow, obviously right reference."""
    vocab = checkpoint.vocab
    ids = vocab.encode(prime or "\n") + vocab.encode(text)
    with torch.no_grad():
        logits, _ = checkpoint.model(torch.tensor([ids]))
    start = len(prime or "\n") - 1
    return logits[0, start : start + len(text)]


def ranks(logits: torch.Tensor, chosen: list[int]) -> list[int]:
    """How many characters were strictly more likely than the chosen one, per step."""
    chosen_logits = logits[torch.arange(len(chosen)), torch.tensor(chosen)]
    return (logits > chosen_logits[:, None]).sum(1).tolist()


# -- the fast step ---------------------------------------------------------------------------


@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fast_step_logits_and_state_equal_model_forward(tmp_path, cell, num_layers):
    model = load_checkpoint(make_checkpoint(tmp_path / "m.pt", cell, num_layers=num_layers)).model
    ids = torch.randint(
        0, model.config.vocab_size, (3, 40), generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        expected_logits, expected_state = model(ids)
    stepper = Stepper(model, batch_size=3)
    logits = torch.empty(3, model.config.vocab_size)
    with torch.inference_mode():
        for t in range(ids.size(1)):
            stepper.step(ids[:, t].contiguous(), logits)
            torch.testing.assert_close(logits, expected_logits[:, t], atol=1e-5, rtol=1e-5)
    for got, want in zip(parts(stepper.state()), parts(expected_state), strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_fast_step_continues_from_a_loaded_state(tiny_checkpoint):
    model = load_checkpoint(tiny_checkpoint).model
    ids = torch.randint(
        0, model.config.vocab_size, (1, 30), generator=torch.Generator().manual_seed(2)
    )
    with torch.no_grad():
        expected, _ = model(ids)
        _, state_after_20 = model(ids[:, :20])
    stepper = Stepper(model, batch_size=2)  # batch 1 state is broadcast to both streams
    stepper.load_state(state_after_20)
    logits = torch.empty(2, model.config.vocab_size)
    with torch.inference_mode():
        for t in range(20, 30):
            stepper.step(ids[0, t].repeat(2), logits)
            torch.testing.assert_close(logits, expected[0, t].expand(2, -1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "precision, tolerance",
    [
        ("fp16", 2e-3),
        ("int8", 3e-2),
        pytest.param(
            "bf16",
            2e-2,
            marks=pytest.mark.skipif(not cpu_has_bf16(), reason="no bf16 matrix units here"),
        ),
    ],
)
def test_reduced_precision_steps_stay_close_to_model_forward(tiny_checkpoint, precision, tolerance):
    model = load_checkpoint(tiny_checkpoint).model
    ids = torch.randint(
        0, model.config.vocab_size, (2, 30), generator=torch.Generator().manual_seed(3)
    )
    with torch.no_grad():
        expected, _ = model(ids)
    stepper = Stepper(model, batch_size=2, precision=precision)
    got = torch.empty(2, 30, model.config.vocab_size)
    with torch.inference_mode():
        for t in range(30):
            stepper.step(ids[:, t].contiguous(), got[:, t])
    error = (got - expected).abs().max().item()
    assert 0 < error <= tolerance * expected.abs().max().item()  # close, and really reduced


def test_auto_precision_is_fp32_for_small_models_and_fp16_for_big(lstm_checkpoint, monkeypatch):
    loaded = load_checkpoint(lstm_checkpoint)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", loaded.model, cpu) == "fp32"
    assert resolve_precision("auto", loaded.model, torch.device("cuda")) == "fp32"
    monkeypatch.setattr(sampling, "AUTO_FP16_BYTES", 0)  # as if the model were big
    if "fbgemm" not in torch.backends.quantized.supported_engines:
        pytest.skip("fp16 weights need PyTorch's fbgemm kernels (x86)")
    assert resolve_precision("auto", loaded.model, cpu) == "fp16"
    generation = generate(loaded, length=40, seed=2, device="cpu")
    assert generation.precision == "fp16"
    assert generation.run()[0].text == sample_text(loaded, length=40, seed=2, device="cpu")


def test_auto_takes_bf16_for_a_batch_on_a_cpu_with_bf16_units(lstm_checkpoint, monkeypatch):
    loaded = load_checkpoint(lstm_checkpoint)
    cpu, batch = torch.device("cpu"), sampling.AUTO_BF16_MIN_BATCH
    monkeypatch.setattr(sampling, "cpu_has_bf16", lambda: True)
    assert resolve_precision("auto", loaded.model, cpu, batch) == "bf16"
    assert resolve_precision("auto", loaded.model, cpu, batch - 1) == "fp32"  # small model
    assert resolve_precision("auto", loaded.model, torch.device("cuda"), batch) == "fp32"
    monkeypatch.setattr(sampling, "cpu_has_bf16", lambda: False)
    assert resolve_precision("auto", loaded.model, cpu, batch) == "fp32"
    with pytest.raises(ConfigError, match="bf16 matrix units"):
        resolve_precision("bf16", loaded.model, cpu, batch)


@pytest.mark.skipif(not cpu_has_bf16(), reason="no bf16 matrix units here")
def test_a_batch_in_bf16_stays_close_to_fp32(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    options = dict(length=60, seed=4, num_samples=sampling.AUTO_BF16_MIN_BATCH, device="cpu")
    in_bf16 = generate(loaded, **options)
    assert in_bf16.precision == "bf16"  # auto
    samples = in_bf16.run()
    # The log-probabilities are read from the bf16 step's logits: the fp32 model's own
    # log-probabilities of the same texts stay close.
    for sample in samples[:4]:
        logits = step_logits(loaded, "\n", sample.text)
        chosen = torch.tensor(loaded.vocab.encode(sample.text))
        exact = logits.log_softmax(-1)[torch.arange(len(chosen)), chosen].double().sum().item()
        assert sample.logprob == pytest.approx(exact, abs=0.02 * len(chosen))


def test_reduced_precision_is_refused_off_cpu(lstm_checkpoint):
    model = load_checkpoint(lstm_checkpoint).model
    with pytest.raises(ConfigError, match="--precision int8"):
        resolve_precision("int8", model, torch.device("cuda"))


# -- seeds and batches -----------------------------------------------------------------------


def test_same_seed_same_text_and_other_seeds_differ(tiny_checkpoint):
    first = sample_text(tiny_checkpoint, length=120, seed=7, prime=PRIME, device="cpu")
    again = sample_text(tiny_checkpoint, length=120, seed=7, prime=PRIME, device="cpu")
    other = sample_text(tiny_checkpoint, length=120, seed=8, prime=PRIME, device="cpu")
    assert first == again
    assert len(first) == 120
    assert first != other


def test_seed_holds_across_noise_blocks(lstm_checkpoint):
    """A longer run is the shorter run plus more: blocks of draws do not depend on the length."""
    long = sample_text(lstm_checkpoint, length=NOISE_BLOCK * 2 + 5, seed=3, device="cpu")
    short = sample_text(lstm_checkpoint, length=NOISE_BLOCK + 7, seed=3, device="cpu")
    assert long.startswith(short)


def test_batch_of_n_equals_n_single_runs(tiny_checkpoint):
    """Same draws, same text. A batched matrix product may round the last bit differently
    from a single one, so log-probabilities agree to float precision, not bit for bit."""
    loaded = peaked(tiny_checkpoint, 3.0)
    batch = generate(loaded, length=150, seed=40, num_samples=4, prime=PRIME, device="cpu").run()
    singles = [
        generate(loaded, length=150, seed=40 + i, prime=PRIME, device="cpu").run()[0]
        for i in range(4)
    ]
    assert [s.seed for s in batch] == [40, 41, 42, 43]
    assert [s.text for s in batch] == [s.text for s in singles]
    for in_batch, alone in zip(batch, singles, strict=True):
        assert in_batch.logprob == pytest.approx(alone.logprob, rel=1e-6)
    assert len({s.text for s in batch}) == 4


def test_no_seed_draws_a_fresh_one_and_reports_it(lstm_checkpoint):
    run = generate(lstm_checkpoint, length=50, device="cpu")
    samples = run.run()
    assert (
        sample_text(lstm_checkpoint, length=50, seed=samples[0].seed, device="cpu")
        == samples[0].text
    )
    # Fresh means fresh: unseeded runs draw different seeds and so make different texts.
    others = [generate(lstm_checkpoint, length=50, device="cpu").run()[0] for _ in range(3)]
    assert len({s.seed for s in [samples[0], *others]}) == 4
    assert len({s.text for s in [samples[0], *others]}) > 1


def test_generation_leaves_global_rng_and_threads_alone(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    torch.manual_seed(0)
    torch.set_num_threads(2)  # generation steps on one thread, then gives the setting back
    rng_before = torch.get_rng_state()
    sample_text(loaded, length=30, seed=1, device="cpu")
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.get_num_threads() == 2


# -- the draws against the model's own probabilities -----------------------------------------


def test_greedy_equals_argmax_step_by_step(tiny_checkpoint):
    loaded = load_checkpoint(tiny_checkpoint)
    text = sample_text(loaded, length=80, greedy=True, prime=PRIME, device="cpu")
    logits = step_logits(loaded, PRIME, text)
    assert loaded.vocab.encode(text) == logits.argmax(-1).tolist()


def test_top_k_never_emits_outside_the_k_most_likely(tiny_checkpoint):
    loaded = peaked(tiny_checkpoint)
    text = sample_text(
        loaded, length=400, top_k=3, temperature=2.0, seed=5, prime=PRIME, device="cpu"
    )
    chosen_ranks = ranks(step_logits(loaded, PRIME, text), loaded.vocab.encode(text))
    assert max(chosen_ranks) < 3
    assert set(chosen_ranks) == {0, 1, 2}  # it does draw, not just take the argmax
    unfiltered = sample_text(loaded, length=400, temperature=2.0, seed=5, prime=PRIME, device="cpu")
    assert max(ranks(step_logits(loaded, PRIME, unfiltered), loaded.vocab.encode(unfiltered))) >= 3


def test_top_k_is_clamped_to_the_vocabulary(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    huge_k = sample_text(loaded, length=60, top_k=10_000, seed=2, device="cpu")
    assert huge_k == sample_text(loaded, length=60, seed=2, device="cpu")


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_top_p_never_emits_outside_the_nucleus(tiny_checkpoint, temperature):
    loaded = peaked(tiny_checkpoint)
    top_p = 0.6
    text = sample_text(
        loaded, length=400, top_p=top_p, temperature=temperature, seed=9, prime=PRIME, device="cpu"
    )
    probs = (step_logits(loaded, PRIME, text) / temperature).softmax(-1)
    chosen = torch.tensor(loaded.vocab.encode(text))
    chosen_probs = probs[torch.arange(len(chosen)), chosen]
    mass_before = torch.where(probs > chosen_probs[:, None], probs, 0).sum(-1)
    assert (mass_before < top_p + 1e-5).all()
    assert (mass_before > 0).any()  # not only the argmax was taken
    unfiltered = sample_text(
        loaded, length=400, temperature=temperature, seed=9, prime=PRIME, device="cpu"
    )
    probs = (step_logits(loaded, PRIME, unfiltered) / temperature).softmax(-1)
    chosen = torch.tensor(loaded.vocab.encode(unfiltered))
    chosen_probs = probs[torch.arange(len(chosen)), chosen]
    assert (torch.where(probs > chosen_probs[:, None], probs, 0).sum(-1) >= top_p).any()


def test_temperature_towards_zero_approaches_greedy(tiny_checkpoint):
    loaded = peaked(tiny_checkpoint, 2.0)
    greedy = sample_text(loaded, length=150, greedy=True, prime=PRIME, device="cpu")
    cold = sample_text(loaded, length=150, temperature=1e-4, seed=3, prime=PRIME, device="cpu")
    warm = sample_text(loaded, length=150, temperature=1.0, seed=3, prime=PRIME, device="cpu")
    assert cold == greedy
    assert warm != greedy


def test_logprob_is_the_sum_of_log_softmax_under_model_forward(tiny_checkpoint):
    loaded = peaked(tiny_checkpoint, 2.0)
    [sample] = generate(
        loaded,
        length=NOISE_BLOCK + 40,
        temperature=1.3,
        top_k=5,
        seed=11,
        prime=PRIME,
        device="cpu",
    ).run()
    logits = step_logits(loaded, PRIME, sample.text)
    chosen = torch.tensor(loaded.vocab.encode(sample.text))
    expected = logits.log_softmax(-1)[torch.arange(len(chosen)), chosen].double().sum().item()
    assert sample.logprob == pytest.approx(expected, abs=1e-3)
    assert sample.chars == len(sample.text) == NOISE_BLOCK + 40


# -- the prime -------------------------------------------------------------------------------


def test_prime_is_consumed_state_equals_model_forward(tiny_checkpoint):
    loaded = load_checkpoint(tiny_checkpoint)
    generation = generate(loaded, length=10, prime=PRIME, num_samples=2, seed=1, device="cpu")
    state, last_logits = generation.read_prime()
    with torch.no_grad():
        expected_logits, expected_state = loaded.model(torch.tensor([loaded.vocab.encode(PRIME)]))
    for got, want in zip(parts(state), parts(expected_state), strict=True):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(last_logits, expected_logits[:, -1])
    # and the generation really starts from it: its stepper holds that state for every sample
    generation.run()
    with torch.no_grad():
        _, after = loaded.model(
            torch.tensor([loaded.vocab.encode(PRIME + generation.samples[0].text[:-1])])
        )
    for got, want in zip(parts(generation._stepper.state()), parts(after), strict=True):
        torch.testing.assert_close(got[:, :1], want, atol=1e-5, rtol=1e-5)


def test_unknown_prime_characters_are_listed(lstm_checkpoint):
    with pytest.raises(VocabError) as caught:
        generate(lstm_checkpoint, prime="To bé or not 2b", device="cpu")
    message = str(caught.value)
    assert "'é'" in message and "'2'" in message and "--unknown skip" in message


def test_unknown_prime_characters_skipped_with_a_note(lstm_checkpoint):
    generation = generate(
        lstm_checkpoint, prime="To bé", unknown="skip", length=20, seed=1, device="cpu"
    )
    assert generation.prime == "To b"
    assert generation.skipped_chars == ["é"]
    assert "skipped 1 prime character" in generation.skipped_note
    assert "'é'" in generation.skipped_note
    assert generate(lstm_checkpoint, prime="To b", device="cpu").skipped_note is None
    clean = sample_text(lstm_checkpoint, prime="To b", length=20, seed=1, device="cpu")
    assert generation.run()[0].text == clean


# -- the stop text ---------------------------------------------------------------------------


def test_stop_ends_the_sample_and_is_dropped(tiny_checkpoint):
    loaded = load_checkpoint(tiny_checkpoint)
    full = sample_text(loaded, length=300, seed=4, prime=PRIME, device="cpu")
    stop = full[40:42]
    [sample] = generate(loaded, length=300, seed=4, prime=PRIME, stop=stop, device="cpu").run()
    assert sample.text == full[: full.index(stop)]
    assert sample.stopped
    assert stop not in sample.text


def test_stop_never_met_gives_the_full_length(lstm_checkpoint):
    [sample] = generate(lstm_checkpoint, length=90, seed=4, stop="@@", device="cpu").run()
    assert len(sample.text) == 90 and not sample.stopped


def test_stop_in_a_batch_ends_each_sample_on_its_own(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    fulls = sample_texts(loaded, length=200, seed=20, num_samples=3, device="cpu")
    stop = fulls[1][30]
    stopped = sample_texts(loaded, length=200, seed=20, num_samples=3, stop=stop, device="cpu")
    assert stopped == [text.split(stop)[0] for text in fulls]


def test_each_sample_ends_with_a_piece_carrying_it_as_it_stops(lstm_checkpoint):
    generation = generate(
        lstm_checkpoint, length=400, seed=2, num_samples=3, stop="e", device="cpu"
    )
    ends, pieces_seen = {}, 0
    for piece in generation:
        pieces_seen += 1
        if piece.finished is not None:
            assert piece.sample not in ends
            ends[piece.sample] = (pieces_seen, piece.finished)
    assert sorted(ends) == [0, 1, 2]
    for index, (_, finished) in ends.items():
        assert finished == generation.samples[index] and finished.stopped
    assert ends[2][0] < ends[0][0] < ends[1][0] == pieces_seen  # the order they stopped in


def test_samples_that_run_to_the_length_end_after_the_last_step(lstm_checkpoint):
    generation = generate(lstm_checkpoint, length=30, seed=1, num_samples=2, device="cpu")
    finished = [piece.finished for piece in generation if piece.finished is not None]
    assert finished == generation.samples and not any(sample.stopped for sample in finished)


def test_stop_filter_holds_back_partial_matches():
    def run(stop: str, text: str) -> tuple[str, bool]:
        stop_filter = StopFilter(stop)
        shown = ""
        for char in text:
            if stop_filter.stopped:
                break
            shown += stop_filter.feed(char)
        if not stop_filter.stopped:
            shown += stop_filter.flush()
        return shown, stop_filter.stopped

    assert run("aab", "xaaab yz") == ("xa", True)
    assert run("\n\n", "one\ntwo\n\nthree") == ("one\ntwo", True)
    assert run("abc", "abxab") == ("abxab", False)
    assert run("abc", "ababc") == ("ab", True)


def test_streamed_pieces_make_the_sample(lstm_checkpoint):
    pieces = list(stream_text(lstm_checkpoint, length=70, seed=6, stop="e", device="cpu"))
    assert all(pieces)
    assert "".join(pieces) == sample_text(
        lstm_checkpoint, length=70, seed=6, stop="e", device="cpu"
    )


def test_length_zero_gives_empty_text(lstm_checkpoint):
    [sample] = generate(lstm_checkpoint, length=0, prime="To", seed=1, device="cpu").run()
    assert sample.text == "" and sample.logprob == 0.0 and sample.prime == "To"


def test_a_generation_runs_once(lstm_checkpoint):
    generation = generate(lstm_checkpoint, length=5, seed=1, device="cpu")
    generation.run()
    with pytest.raises(RuntimeError):
        generation.run()


# -- options, checkpoints, the training preview ----------------------------------------------


@pytest.mark.parametrize(
    "options, flag",
    [
        ({"temperature": 0.0}, "--temperature"),
        ({"temperature": -1.0}, "--temperature"),
        ({"temperature": math.nan}, "--temperature"),
        ({"top_k": 0}, "--top-k"),
        ({"top_p": 0.0}, "--top-p"),
        ({"top_p": 1.5}, "--top-p"),
        ({"length": -1}, "--length"),
        ({"num_samples": 0}, "--num-samples"),
        ({"seed": -3}, "--seed"),
        ({"stop": ""}, "--stop"),
        ({"unknown": "ignore"}, "--unknown"),
        ({"device": "tpu"}, "--device"),
        ({"precision": "fp8"}, "--precision"),
    ],
)
def test_sample_config_rejects_nonsense(options, flag):
    with pytest.raises(ConfigError, match=flag):
        SampleConfig(**options)


def test_missing_default_checkpoint_says_to_pass_checkpoint(monkeypatch):
    monkeypatch.setattr(resources, "_find", lambda name, subdir: None)
    with pytest.raises(CheckpointError, match="--checkpoint"):
        generate(length=5)


def test_run_directory_means_its_best_checkpoint(tmp_path):
    make_checkpoint(tmp_path / "run" / "best.pt")
    assert len(sample_text(tmp_path / "run", length=12, seed=1, device="cpu")) == 12


def test_preview_is_seeded_and_leaves_training_rng_alone(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    loaded.model.train()
    torch.manual_seed(123)
    rng_before = torch.get_rng_state()
    text = preview(loaded.model, loaded.vocab, 50, seed=9)
    assert len(text) == 50
    assert text == preview(loaded.model, loaded.vocab, 50, seed=9)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert loaded.model.training


@pytest.mark.gpu
def test_cuda_fast_step_matches_and_seeds_hold(tiny_checkpoint):
    model = load_checkpoint(tiny_checkpoint, device="cuda").model
    ids = torch.randint(0, model.config.vocab_size, (4, 50), device="cuda")
    with torch.no_grad():
        expected, _ = model(ids)
    stepper = Stepper(model, batch_size=4)
    logits = torch.empty(4, model.config.vocab_size, device="cuda")
    with torch.inference_mode():
        for t in range(ids.size(1)):
            stepper.step(ids[:, t].contiguous(), logits)
            torch.testing.assert_close(logits, expected[:, t], atol=1e-4, rtol=1e-4)
    options = {"length": 300, "seed": 5, "prime": PRIME, "device": "cuda"}
    assert sample_text(tiny_checkpoint, **options) == sample_text(tiny_checkpoint, **options)
    batch = sample_texts(tiny_checkpoint, num_samples=3, **options)
    assert batch[1] == sample_text(tiny_checkpoint, **{**options, "seed": 6})


def test_generation_from_a_model_in_memory(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    model = CharRNN(loaded.model_config)
    model.load_state_dict(loaded.model.state_dict())
    generation = Generation(
        model.eval(), loaded.vocab, SampleConfig(length=25, seed=2, device="cpu")
    )
    assert generation.run()[0].text == sample_text(loaded, length=25, seed=2, device="cpu")
