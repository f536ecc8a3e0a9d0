"""Properties over generated inputs: the vocabulary, the corpus reader, scoring, checkpoint loading.

Each says what holds for any input, and that a bad input is a CharRNNError (one line from the CLI),
never another exception. Tiny models and few examples keep the file fast.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import TINY_TEXT, cli, make_checkpoint, make_run
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import charrnn
from charrnn.checkpoint import load_checkpoint
from charrnn.config import resume_config
from charrnn.data import read_corpus
from charrnn.errors import CharRNNError, CheckpointError, DataError, VocabError
from charrnn.training import train
from charrnn.vocab import Vocab

# No example database: it would write .hypothesis/ into the working tree.
FAST = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
VOCAB = Vocab.from_text(TINY_TEXT)


# --- the vocabulary --------------------------------------------------------------------------


@FAST
@given(st.text(alphabet=VOCAB.chars, max_size=200))
def test_any_text_over_the_vocabulary_round_trips(text):
    ids = VOCAB.encode(text)
    assert all(0 <= i < len(VOCAB) for i in ids)
    assert VOCAB.decode(ids) == text
    assert VOCAB.encode_tensor(text).tolist() == ids


@pytest.mark.slow
@FAST
@given(st.text(min_size=1, max_size=50), st.text(max_size=100))
def test_a_vocabulary_is_the_sorted_distinct_characters_and_skips_or_names_the_rest(chars, text):
    vocab = Vocab.from_text(chars)
    assert vocab.chars == sorted(set(chars))
    assert Vocab(vocab.to_string()) == vocab  # as a checkpoint stores it
    known = "".join(c for c in text if c in vocab)
    assert vocab.decode(vocab.encode(text, unknown="skip")) == known
    missing = vocab.unknown_chars(text)
    assert missing == sorted(set(text) - set(chars))
    if missing:
        with pytest.raises(VocabError, match="the model never saw"):
            vocab.encode(text)
    else:
        assert vocab.decode(vocab.encode(text)) == text


# --- the corpus reader ----------------------------------------------------------------------


def expected_text(data: bytes) -> str | None:
    """What read_corpus makes of these bytes, or None where it must refuse them."""
    if b"\0" in data or data.startswith((b"\xff\xfe", b"\xfe\xff")):  # binary, UTF-16/32 BOM
        return None
    try:
        text = data.decode("utf-8").removeprefix("\ufeff").replace("\r\n", "\n")
    except UnicodeDecodeError:
        return None
    return text or None  # an empty corpus is refused


BYTES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(lambda text: text.encode("utf-8")),
    st.text(max_size=50).map(lambda text: b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()),
)


@FAST
@given(BYTES)
def test_the_corpus_reader_gives_the_utf8_text_or_a_data_error(tmp_path, data):
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    expected = expected_text(data)
    try:
        corpus = read_corpus([path])
    except DataError as problem:
        assert expected is None, f"refused good text: {problem}"
        assert "\n" not in str(problem)
    else:
        assert corpus.text == expected


# --- scoring --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> charrnn.Checkpoint:
    path = make_checkpoint(tmp_path_factory.mktemp("score") / "tiny.pt", cell="gru")
    return load_checkpoint(path)


@FAST
@given(st.text(max_size=80), st.booleans())
def test_any_text_scores_to_finite_figures_or_a_clear_error(tiny_model, text, strict):
    try:
        scored = charrnn.score(tiny_model, text, strict=strict)
    except CharRNNError as problem:
        assert strict and isinstance(problem, VocabError), problem
        assert VOCAB.unknown_chars(text)
        return
    unknown = sum(c not in VOCAB for c in text)
    assert (scored.chars, scored.unknown) == (len(text) - unknown, unknown)
    assert math.isfinite(scored.logprob) and scored.logprob <= 0.0
    if scored.chars:
        assert math.isfinite(scored.bits_per_char) and scored.bits_per_char >= 0.0
        assert math.isfinite(scored.perplexity) and scored.perplexity >= 1.0
    known = ~torch.isnan(scored.logprobs)
    assert int(known.sum()) == scored.chars
    assert math.isclose(float(scored.logprobs[known].sum()), scored.logprob, abs_tol=1e-6)


# --- loading mutated checkpoints -------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Any]:
    """A real last.pt (optimizer, RNG and carried state after 2 steps), its corpus and payload."""
    folder = tmp_path_factory.mktemp("mutated")
    corpus = folder / "tiny.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    last = make_run(folder / "run", corpus)
    return {
        "folder": folder,
        "corpus": read_corpus([corpus]),
        "payload": torch.load(last, weights_only=True),
    }


def paths_in(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a payload a mutation can reach: dict keys and list items, not into tensors."""
    found = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += paths_in(value, (*prefix, key))
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            found += paths_in(value, (*prefix, index))
    return found


JUNK = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([0, -1, 10**12, 2**63, 10**100]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=6),
        st.builds(
            torch.zeros,
            st.lists(st.integers(0, 3), max_size=3),
            dtype=st.sampled_from([torch.float32, torch.float16, torch.int64, torch.uint8]),
        ),
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


def tensor_mutations(value: torch.Tensor) -> st.SearchStrategy:
    return st.sampled_from(
        [
            value.flatten()[:-1] if value.numel() else torch.zeros(1),  # truncated
            value.reshape(-1),
            value.t() if value.dim() == 2 else value[None],
            value.double(),
            value.half(),
            value.long(),
            value.to(torch.uint8),
            value.bool(),
            torch.full_like(value, float("nan")) if value.is_floating_point() else value,
            torch.full_like(value, 255) if value.dtype == torch.uint8 else value,
        ]
    )


def value_mutations(value: Any) -> st.SearchStrategy:
    """Replacements for `value`: junk of any type, or a near miss of its own kind."""
    near: list[st.SearchStrategy] = []
    if isinstance(value, torch.Tensor):
        near.append(tensor_mutations(value))
    elif isinstance(value, str):
        near.append(st.sampled_from([value[:-1], value[::-1], value + value[:1], value.upper()]))
    elif isinstance(value, bool):
        near.append(st.just(not value))
    elif isinstance(value, (int, float)):
        near.append(st.sampled_from([value + 1, -value, value * 10**9, float(value), str(value)]))
    elif isinstance(value, (list, tuple)):
        near.append(
            st.sampled_from([value[:-1], [*value, *value[:1]], type(value)(reversed(value))])
        )
    return st.one_of(JUNK, *near)


def _step_into(container: Any, key: Any) -> Any:
    """container[key] for a dict, list or tuple; TypeError for anything else (indexing a tensor
    with a string warns before it fails, and a warning fails CI)."""
    if not isinstance(container, (dict, list, tuple)):
        raise TypeError(type(container).__name__)
    return container[key]


@st.composite
def mutated(draw, payload: dict, under: tuple = ()) -> dict:
    """A deep copy of `payload` with one to three of its values deleted or replaced."""
    payload = copy.deepcopy(payload)
    places = [path for path in paths_in(payload) if path[: len(under)] == under]
    for path in draw(st.lists(st.sampled_from(places), min_size=1, max_size=3)):
        parent = payload
        try:
            for key in path[:-1]:
                parent = _step_into(parent, key)
            current = _step_into(parent, path[-1])
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed it, or made it a value (a tensor, a number)
        if isinstance(parent, tuple):
            continue  # tuples (AdamW's betas) are replaced whole, from their parent
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(value_mutations(current))
    return payload


def load_mutated(folder: Path, payload: dict) -> charrnn.Checkpoint | None:
    """Save the payload and load it: a Checkpoint, or None after a CheckpointError."""
    path = folder / "mutated.pt"
    torch.save(payload, path)
    try:
        return load_checkpoint(path)
    except CheckpointError as problem:
        assert "\n" not in str(problem) and str(problem).startswith(str(path))
        event("refused")
        return None


@pytest.mark.slow
@settings(FAST, max_examples=150)
@given(data=st.data())
def test_a_mutated_checkpoint_loads_or_is_a_checkpoint_error(run, data):
    loaded = load_mutated(run["folder"], data.draw(mutated(run["payload"])))
    if loaded is not None:  # whatever loads works
        event("loaded")
        logits, _ = loaded.model(torch.zeros(1, 2, dtype=torch.long))
        assert logits.shape == (1, 2, len(loaded.vocab))
        assert bool(torch.isfinite(logits).all())


@pytest.mark.slow
@settings(FAST, max_examples=25)
@given(data=st.data())
def test_a_mutated_training_state_resumes_or_is_one_clear_error(run, data):
    loaded = load_mutated(run["folder"], data.draw(mutated(run["payload"], under=("training",))))
    if loaded is None or loaded.training_state is None:
        return
    step = loaded.training_state["step"]
    config = resume_config(loaded.train_config, loaded.model_config, {}, {"max_steps": step + 1})
    config = dataclasses.replace(config, eval_every=10**6)
    try:
        train(run["corpus"], None, config, run["folder"] / "resumed", resume=loaded)
        event("resumed")
    except CharRNNError as problem:
        assert "\n" not in str(problem)
        event(f"refused on resume: {type(problem).__name__}")


@settings(FAST, max_examples=8)
@given(data=st.data())
def test_info_and_sample_on_a_mutated_checkpoint_print_or_say_one_error_line(run, data):
    path = run["folder"] / "cli.pt"
    torch.save(data.draw(mutated(run["payload"])), path)
    for args in (("info", path), ("sample", "-c", path, "-n", "5", "--seed", "1", "-q")):
        result = cli(*args)  # fails on a traceback or any exception but SystemExit
        if result.exit_code != 0:
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
            assert result.stdout == ""
