"""charrnn.scoring: exact log-probabilities, the figures made from them, batching and chunking."""

from __future__ import annotations

import math
import random

import pytest
import torch
from conftest import TINY_TEXT, make_checkpoint

from charrnn import device as device_module
from charrnn import resources
from charrnn.checkpoint import load_checkpoint
from charrnn.config import ModelConfig
from charrnn.errors import CheckpointError, ConfigError, DeviceError, VocabError
from charrnn.model import CharRNN
from charrnn.score_blocks import long_line_chars
from charrnn.scoring import (
    BLOCK_BATCHES,
    BLOCK_ROW_CHARS,
    ScoreConfig,
    ScoreSummary,
    TextScore,
    iter_score_lines,
    score,
    score_line_blocks,
    score_lines,
    score_stream,
    split_lines,
    summarize,
)
from charrnn.vocab import Vocab

LINES = TINY_TEXT.splitlines(keepends=True)[:5]


def step_by_step(model: CharRNN, vocab: Vocab, context: str, text: str) -> list[float]:
    """The reference: one character at a time through forward(), state carried, log-softmax of
    the next character; the context is read first and not scored."""
    ids = vocab.encode(context + text)
    state, logprobs = None, []
    model.eval()
    with torch.no_grad():
        for position in range(len(ids) - 1):
            logits, state = model(torch.tensor([[ids[position]]]), state)
            if position >= len(context) - 1:
                logprobs.append(float(logits[0, -1].log_softmax(-1)[ids[position + 1]]))
    return logprobs


def test_total_logprob_is_the_sum_of_step_by_step_log_softmax(tiny_checkpoint):
    loaded = load_checkpoint(tiny_checkpoint)
    text = "".join(LINES[:3])

    scored = score(loaded, text, chunk_len=16)

    reference = step_by_step(loaded.model, loaded.vocab, "\n", text)
    assert scored.chars == len(text) and scored.unknown == 0
    assert scored.logprob == pytest.approx(sum(reference), abs=1e-3)
    assert torch.allclose(scored.logprobs, torch.tensor(reference, dtype=torch.float64), atol=1e-5)


def test_each_line_is_scored_on_its_own_after_the_context(tiny_checkpoint):
    loaded = load_checkpoint(tiny_checkpoint)
    context = "To be, or not"

    result = score_lines(loaded, "".join(LINES[:3]), context=context)

    assert [line.text for line in result.lines] == LINES[:3]
    for line in result.lines:
        reference = step_by_step(loaded.model, loaded.vocab, context, line.text)
        assert line.chars == len(line.text)  # the newline is scored too
        assert line.logprob == pytest.approx(sum(reference), abs=1e-3)


@pytest.mark.parametrize("batch_size, chunk_len", [(2, 5), (3, 7), (64, 1)])
def test_batched_and_chunked_lines_equal_unbatched(tiny_checkpoint, batch_size, chunk_len):
    loaded = load_checkpoint(tiny_checkpoint)
    # Lengths from 1 to 45 characters, so batches mix short and long lines and chunks cut lines.
    lines = ["\n", "a\n", *LINES, "To be\n", "T"]

    one_by_one = score_lines(loaded, lines, batch_size=1, chunk_len=10_000)
    batched = score_lines(loaded, lines, batch_size=batch_size, chunk_len=chunk_len)

    for alone, together in zip(one_by_one.lines, batched.lines, strict=True):
        assert together.text == alone.text
        assert torch.allclose(together.logprobs, alone.logprobs, atol=1e-5)
    assert batched.total.logprob == pytest.approx(one_by_one.total.logprob, abs=1e-3)


def test_padding_beside_a_long_line_does_not_change_a_short_one(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    short = "To be\n"

    alone = score_lines(loaded, [short]).lines[0]
    padded = score_lines(loaded, [short, TINY_TEXT[:300]], batch_size=2, chunk_len=4).lines[0]

    assert torch.allclose(padded.logprobs, alone.logprobs, atol=1e-6)


def test_whole_text_in_small_chunks_equals_one_chunk(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    text = TINY_TEXT[:400]

    small = score(loaded, text, chunk_len=7)
    large = score(loaded, text, chunk_len=100_000)

    assert torch.allclose(small.logprobs, large.logprobs, atol=1e-5)


def test_bits_per_char_perplexity_and_log10_follow_their_formulas(lstm_checkpoint):
    result = score_lines(load_checkpoint(lstm_checkpoint), "".join(LINES))

    for figures in [*result.lines, result.total]:
        assert figures.chars > 0 and figures.logprob < 0
        bits = -figures.logprob / (figures.chars * math.log(2))
        assert figures.bits_per_char == pytest.approx(bits)
        assert figures.perplexity == pytest.approx(math.exp(-figures.logprob / figures.chars))
        assert figures.log10prob == pytest.approx(figures.logprob / math.log(10))
    assert result.total.chars == sum(line.chars for line in result.lines)
    assert result.total.logprob == pytest.approx(sum(line.logprob for line in result.lines))


def test_nothing_scored_gives_nan_rates_not_a_division_error():
    empty = ScoreSummary(chars=0, unknown=3, logprob=0.0)
    assert math.isnan(empty.bits_per_char) and math.isnan(empty.perplexity)


def test_unknown_characters_are_counted_skipped_and_left_out_of_the_sums(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    clean = "To be, or not to be\n"
    dirty = "To b\u00e9e, or n\u00a7ot to be\n"  # two characters the tiny model never saw
    assert loaded.vocab.unknown_chars(dirty) == ["\u00a7", "\u00e9"]

    scored = score(loaded, dirty)
    line = score_lines(loaded, dirty).lines[0]

    # Skipped on both sides: the model reads the text as if they were not there.
    expected = score(loaded, clean)
    for result in (scored, line):
        assert (result.chars, result.unknown) == (len(clean), 2)
        assert result.logprob == pytest.approx(expected.logprob, abs=1e-4)
        unknown_positions = torch.isnan(result.logprobs).nonzero().flatten().tolist()
        assert unknown_positions == [dirty.index("\u00e9"), dirty.index("\u00a7")]


def test_a_line_of_only_unknown_characters_scores_nothing(lstm_checkpoint):
    result = score_lines(load_checkpoint(lstm_checkpoint), "To be\n\u00e9\u00e9")
    last = result.lines[1]
    assert (last.chars, last.unknown, last.logprob) == (0, 2, 0.0)
    assert math.isnan(last.bits_per_char)
    assert result.total.unknown == 2


def test_strict_makes_unknown_characters_an_error_naming_them_and_the_line(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    with pytest.raises(VocabError, match=r"2 characters .*'\u00a7', '\u00e9'.*first on line 2"):
        score_lines(loaded, "To be\nor \u00e9 not \u00a7\n", strict=True)
    assert score_lines(loaded, "To be\n", strict=True).total.unknown == 0


def test_split_lines_keeps_newlines_and_a_last_line_without_one():
    assert split_lines("a\nb") == ["a\n", "b"]
    assert split_lines("a\n") == ["a\n"]
    assert split_lines("\n\n") == ["\n", "\n"]  # blank lines: just their newline
    assert split_lines("") == []
    assert split_lines("a\rb\x0cc\n") == ["a\rb\x0cc\n"]  # only \n ends a line


def test_a_last_line_without_newline_is_scored_without_one(lstm_checkpoint):
    result = score_lines(load_checkpoint(lstm_checkpoint), "To be\nor not")
    assert [(line.text, line.chars) for line in result.lines] == [("To be\n", 6), ("or not", 6)]


def test_empty_input_scores_nothing(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    assert score_lines(loaded, "").lines == ()
    assert score_lines(loaded, "").total == ScoreSummary(chars=0, unknown=0, logprob=0.0)
    assert score(loaded, "").chars == 0 and len(score(loaded, "").logprobs) == 0


def test_context_must_be_non_empty_and_known(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    with pytest.raises(ConfigError, match="--context"):
        score(loaded, "To be", context="")
    with pytest.raises(VocabError, match="context has 1 character.*'\u00e9'"):
        score(loaded, "To be", context="\u00e9")


@pytest.mark.parametrize(
    "options", [{"batch_size": 0}, {"chunk_len": 0}, {"streams": 0}, {"precision": "fp8"}]
)
def test_nonsense_options_are_config_errors(options):
    with pytest.raises(ConfigError):
        ScoreConfig(**options)


def test_bf16_is_refused_on_a_cpu_without_bf16_units(lstm_checkpoint, monkeypatch):
    monkeypatch.setenv("CHARRNN_CPU_BF16", "0")
    device_module.cpu_has_bf16.cache_clear()
    try:
        with pytest.raises(DeviceError, match="bf16 matrix units"):
            score(load_checkpoint(lstm_checkpoint), "To be", precision="bf16")
    finally:
        device_module.cpu_has_bf16.cache_clear()


def test_streams_score_each_segment_after_its_warmup_and_stay_close_to_exact(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    text, warmup = TINY_TEXT[:600], 40

    exact = score(loaded, text)
    parallel = score(loaded, text, streams=3, warmup=warmup, batch_size=1)

    # Segment k is exactly the text from `warmup` characters before it, scored from the context.
    for start in (0, 200, 400):
        begin = max(0, start - warmup)
        alone = score(loaded, text[begin : start + 200]).logprobs[start - begin :]
        assert torch.allclose(parallel.logprobs[start : start + 200], alone, atol=1e-5)
    assert parallel.chars == exact.chars
    assert torch.allclose(parallel.logprobs[:200], exact.logprobs[:200], atol=1e-5)
    assert parallel.logprob == pytest.approx(exact.logprob, rel=1e-3)


def test_scoring_runs_in_eval_mode_and_restores_training_mode(tmp_path):
    vocab = Vocab.from_text(TINY_TEXT)
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=len(vocab), hidden_size=16, embedding_size=8, dropout=0.5)
    model = CharRNN(config)
    model.train()

    first = score(model, "To be, or not", vocab=vocab)
    second = score(model, "To be, or not", vocab=vocab)

    assert model.training
    assert torch.equal(first.logprobs, second.logprobs)  # no dropout noise
    reference = step_by_step(model, vocab, "\n", "To be, or not")
    assert first.logprob == pytest.approx(sum(reference), abs=1e-4)


def test_a_bare_model_needs_its_vocabulary_and_it_must_fit(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    with pytest.raises(TypeError, match="vocab"):
        score(loaded.model, "To be")
    with pytest.raises(VocabError, match="expects"):
        score(loaded.model, "To be", vocab=Vocab("abc"))


def test_a_checkpoint_path_or_run_directory_is_accepted(tmp_path):
    path = make_checkpoint(tmp_path / "run" / "best.pt")
    by_path = score(path, "To be", device="cpu")
    by_directory = score(tmp_path / "run", "To be", device="cpu")
    assert by_path.logprob == by_directory.logprob
    with pytest.raises(CheckpointError, match="not found"):
        score(tmp_path / "nothing.pt", "To be")


def test_progress_is_reported_up_to_every_scored_character(lstm_checkpoint):
    reports = []
    score_lines(
        load_checkpoint(lstm_checkpoint),
        "".join(LINES),
        batch_size=2,
        on_progress=lambda done, total: reports.append((done, total)),
    )
    total = sum(len(line) for line in LINES)
    assert reports[-1] == (total, total)
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)


# -- streaming: lines come out in input order while later ones are still to be scored -------


def test_the_first_lines_come_out_before_later_blocks_are_scored(lstm_checkpoint):
    lines = LINES * 40  # 200 lines: blocks of 4, 8, 16, ... lines at batch size 4
    reports = []
    streamed = iter_score_lines(
        load_checkpoint(lstm_checkpoint),
        lines,
        batch_size=4,
        on_progress=lambda done, total: reports.append((done, total)),
    )

    first = next(streamed)

    total = sum(len(line) for line in lines)
    assert first.text == lines[0]
    assert reports == [(sum(len(line) for line in lines[:4]), total)]  # one batch, no more
    rest = list(streamed)
    assert reports[-1] == (total, total)
    assert [line.text for line in [first, *rest]] == lines


def test_blocks_grow_to_a_bound_and_score_exactly_like_the_whole_input(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    lines = ["\n", "a\n", *LINES, "To b\u00e9\n"] * 30
    blocks = list(score_line_blocks(loaded, lines, batch_size=2))

    sizes = [len(block) for block in blocks]
    assert sizes[:4] == [2, 4, 8, 16] and max(sizes) == 2 * BLOCK_BATCHES
    one_by_one = score_lines(loaded, lines, batch_size=1)
    streamed = [line for block in blocks for line in block]
    for alone, together in zip(one_by_one.lines, streamed, strict=True):
        assert (together.text, together.chars, together.unknown) == (
            alone.text,
            alone.chars,
            alone.unknown,
        )
        assert torch.allclose(together.logprobs, alone.logprobs, atol=1e-5, equal_nan=True)
    assert summarize(streamed).logprob == pytest.approx(one_by_one.total.logprob, abs=1e-3)


def test_long_lines_make_short_blocks(lstm_checkpoint):
    long_line = TINY_TEXT.replace("\n", " ")[:600] + "\n"
    lines = [long_line] * 6
    blocks = list(score_line_blocks(load_checkpoint(lstm_checkpoint), lines, batch_size=2))
    # Budgets of 2, 4 and 8 lines of BLOCK_ROW_CHARS: 512 (still one line), 1024, 2048 chars.
    assert BLOCK_ROW_CHARS == 256 and [len(block) for block in blocks] == [1, 1, 3, 1]


def test_bad_input_is_refused_before_the_first_line(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    with pytest.raises(VocabError, match="first on line 2"):
        iter_score_lines(loaded, "To be\nor \u00e9\n", strict=True)  # not even one next()
    with pytest.raises(VocabError, match="context"):
        score_line_blocks(loaded, "To be\n", context="\u00e9")


@pytest.mark.gpu
def test_cuda_scores_match_the_cpu(lstm_checkpoint):
    lines = [*LINES, "To be\n"]
    on_cpu = score_lines(load_checkpoint(lstm_checkpoint, "cpu"), lines)
    on_gpu = score_lines(load_checkpoint(lstm_checkpoint, "cuda"), lines, chunk_len=8)
    in_bf16 = score_lines(load_checkpoint(lstm_checkpoint, "cuda"), lines, precision="bf16")
    # cuDNN may run fp32 RNNs in TF32; bf16 keeps about 3 significant digits.
    assert on_gpu.total.logprob == pytest.approx(on_cpu.total.logprob, rel=1e-3)
    assert in_bf16.total.bits_per_char == pytest.approx(on_cpu.total.bits_per_char, abs=0.05)


def _shipped_model():
    try:
        return resources.default_checkpoint_path()
    except CheckpointError:
        return None


SHAKESPEARE = """\
ROMEO:
But, soft! what light through yonder window breaks?
It is the east, and Juliet is the sun.
JULIET:
O Romeo, Romeo! wherefore art thou Romeo?
Deny thy father and refuse thy name;
HAMLET:
To be, or not to be, that is the question:
Whether 'tis nobler in the mind to suffer
The slings and arrows of outrageous fortune,
Now is the winter of our discontent
Made glorious summer by this sun of York;
Friends, Romans, countrymen, lend me your ears;
I come to bury Caesar, not to praise him.
"""


@pytest.mark.skipif(_shipped_model() is None, reason="shipped model not built")
def test_the_shipped_model_prefers_shakespeare_to_shuffled_shakespeare():
    loaded = load_checkpoint(_shipped_model(), "cpu")
    real = split_lines(SHAKESPEARE)
    generator = random.Random(0)
    shuffled = []
    for line in real:
        chars = list(line.rstrip("\n"))
        generator.shuffle(chars)
        shuffled.append("".join(chars) + "\n")  # same characters, same newline, no order

    real_score = score_lines(loaded, real)
    shuffled_score = score_lines(loaded, shuffled)

    assert real_score.total.bits_per_char < 3.0
    assert real_score.total.bits_per_char + 1.5 < shuffled_score.total.bits_per_char
    better = sum(
        a.bits_per_char < b.bits_per_char
        for a, b in zip(real_score.lines, shuffled_score.lines, strict=True)
    )
    assert better >= 0.9 * len(real)


# -- text read as it is scored (score_stream): the same figures, a bounded part held at once --


def cut_anywhere(text: str, seed: int = 0, most: int = 700) -> list[str]:
    """`text` in pieces of random sizes, cut anywhere (inside lines, between "\\r" and "\\n")."""
    generator, pieces, start = random.Random(seed), [], 0
    while start < len(text):
        size = generator.randint(1, most)
        pieces.append(text[start : start + size])
        start += size
    return pieces


def long_line(length: int, seed: int = 0) -> str:
    """A line of `length` characters of the tiny text, no newline, with an unknown one in it."""
    generator = random.Random(seed)
    chars = list(TINY_TEXT.replace("\n", " "))
    line = "".join(generator.choice(chars) for _ in range(length))
    return line[: length // 2] + "\u00e9" + line[length // 2 + 1 :]


def assert_same_rows(streamed, in_memory):
    assert len(streamed) == len(in_memory)
    for ours, theirs in zip(streamed, in_memory, strict=True):
        assert (ours.text, ours.chars, ours.unknown) == (theirs.text, theirs.chars, theirs.unknown)
        assert ours.unknown_chars == theirs.unknown_chars
        assert ours.logprob == pytest.approx(theirs.logprob, rel=1e-9, abs=1e-9)


@pytest.mark.slow
def test_streamed_text_scores_exactly_like_the_lines_in_memory(tiny_checkpoint):
    loaded = load_checkpoint(tiny_checkpoint)
    # Lines longer than chunk_len, than a first block's budget (2 x 256 characters) and than
    # any block (long_line_chars(2) = 16,384: scored as it is read), blank ones and unknown ones.
    lines = [*LINES, "\n", "To b\u00e9\n", long_line(700) + "\n", long_line(17_000, 1) + "\n"]
    text = "".join(lines * 3) + "no newline at the end"
    options = {"batch_size": 2, "chunk_len": 64}

    in_memory = score_lines(loaded, text, **options)
    blocks = list(score_stream(loaded, cut_anywhere(text), per_char=True, **options))

    streamed = [line for block in blocks for line in block]
    assert [len(block) for block in blocks] == [
        len(block) for block in score_line_blocks(loaded, text, **options)
    ]
    assert_same_rows(streamed, in_memory.lines)
    for ours, theirs in zip(streamed, in_memory.lines, strict=True):
        assert torch.equal(ours.logprobs.nan_to_num(9.0), theirs.logprobs.nan_to_num(9.0))
    total = summarize(streamed)
    assert total.logprob == pytest.approx(in_memory.total.logprob, rel=1e-9)
    assert total.unknown_chars == in_memory.total.unknown_chars == ("\u00e9",)


def test_a_long_line_read_in_pieces_scores_as_one_piece(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    line = long_line(20_000)  # over long_line_chars(1) = 8,192: carried chunk by chunk

    one_piece = score(loaded, line, chunk_len=100)
    ((row,),) = score_stream(loaded, cut_anywhere(line, most=3_000), batch_size=1, chunk_len=100)
    ((whole,),) = score_stream(loaded, cut_anywhere(line, 1), whole=True, per_char=True)
    default = score(loaded, line)

    assert (row.text, row.chars, row.unknown) == (line, len(line) - 1, 1)
    assert row.logprob == pytest.approx(one_piece.logprob, rel=1e-9)
    assert whole.logprob == pytest.approx(default.logprob, rel=1e-9)
    assert torch.equal(whole.logprobs.nan_to_num(9.0), default.logprobs.nan_to_num(9.0))
    # Chunks of another length change only the float rounding.
    assert row.logprob == pytest.approx(default.logprob, rel=1e-6)


@pytest.mark.slow
def test_the_input_is_read_only_as_fast_as_it_is_scored(lstm_checkpoint):
    # What is held at once: the characters read from the input and not yet handed back (rows,
    # or scored stretches through on_chars). Scoring the whole text at once would read it all
    # before the first row; here it stays under one block, or one segment of a long line.
    loaded = load_checkpoint(lstm_checkpoint)
    batch_size = 2
    lines = [*LINES * 400, long_line(40_000) + "\n", *LINES * 100]  # 2,500 lines, 150,000 chars
    text = "".join(lines)
    read, handed_back, held = 0, 0, []

    def pieces():
        nonlocal read
        for piece in cut_anywhere(text, most=1_000):
            read += len(piece)
            yield piece

    def scored(stretch: str, _) -> None:
        nonlocal handed_back
        held.append(read - handed_back)
        handed_back += len(stretch)

    shapes = []
    loaded.model.register_forward_pre_hook(lambda _, args: shapes.append(args[0].shape))
    for block in score_stream(
        loaded, pieces(), batch_size=batch_size, chunk_len=32, on_chars=scored
    ):
        assert not any(isinstance(row, TextScore) for row in block)  # no per-character values

    assert handed_back == len(text)
    # At most a block's lines, the start of the next line up to the length that makes it a long
    # line (long_line_chars each), and the piece that was read last.
    bound = 2 * long_line_chars(batch_size) + 1_000
    assert max(held) <= bound < len(text) / 4
    assert max(rows for rows, _ in shapes) <= batch_size
    assert max(steps for _, steps in shapes) <= 32


def test_strict_in_a_stream_stops_at_the_block_holding_the_character(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    text = "".join(LINES * 4) + "or \u00e9\n" + "".join(LINES)
    blocks = score_stream(loaded, cut_anywhere(text), batch_size=4, strict=True)

    first = next(blocks)  # rows before it come out
    assert [row.text for row in first] == LINES[:4]
    with pytest.raises(VocabError, match="'\u00e9' \\(first on line 21\\)"):
        list(blocks)
    with pytest.raises(VocabError, match="context"):
        score_stream(loaded, ["To be\n"], context="\u00e9")  # at once, before any block


def test_an_empty_stream_has_no_rows(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    assert list(score_stream(loaded, [])) == []
    assert list(score_stream(loaded, ["", ""], whole=True)) == []
    assert list(score_stream(loaded, [], whole=True, streams=3)) == []


def test_whole_with_streams_in_a_stream_is_the_approximate_score(lstm_checkpoint):
    loaded = load_checkpoint(lstm_checkpoint)
    text = TINY_TEXT[:600]
    ((row,),) = score_stream(loaded, cut_anywhere(text), whole=True, streams=3, warmup=40)
    assert row.logprob == pytest.approx(score(loaded, text, streams=3, warmup=40).logprob)


def test_summaries_carry_the_distinct_unknown_characters(lstm_checkpoint):
    result = score_lines(load_checkpoint(lstm_checkpoint), "To b\u00e9\n\u00a7\u00a7\nTo be\n")
    assert [line.unknown_chars for line in result.lines] == [("\u00e9",), ("\u00a7",), ()]
    assert result.total.unknown_chars == ("\u00a7", "\u00e9")
    assert score(load_checkpoint(lstm_checkpoint), "\u20acT\u20ac").unknown_chars == ("\u20ac",)
