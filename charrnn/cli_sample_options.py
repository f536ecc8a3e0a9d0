"""The options of `charrnn sample`, declared once as Typer `Annotated` aliases (see cli_options
for the machinery: a parameter named after a config field sets it, under its flag). Torch-free."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .cli_options import SamplePrecision, UnknownChars, _field
from .config import AUTO_BF16_MIN_BATCH, AUTO_FP16_BYTES, DEVICE_HELP, SampleConfig, flag

# --- sample ---------------------------------------------------------------------------------

SampleCheckpoint = Annotated[
    Path | None,
    typer.Argument(
        metavar="CHECKPOINT",
        show_default=False,
        help="A checkpoint file or run directory, as with -c.",
    ),
]
Length = Annotated[
    int | None, _field(SampleConfig, "length", "Characters to generate per sample.", "-n")
]
Temperature = Annotated[
    float | None,
    _field(SampleConfig, "temperature", "Above 1 wilder, below 1 safer; must be > 0.", "-t"),
]
Greedy = Annotated[
    bool,
    typer.Option(
        flag("greedy"),
        help="Always take the most likely character (ignores -t, --top-k, --top-p).",
    ),
]
TopK = Annotated[
    int | None,
    typer.Option(flag("top_k"), help="Draw only among the K most likely characters."),
]
TopP = Annotated[
    float | None,
    typer.Option(
        flag("top_p"),
        help="Draw only among the most likely characters that hold P of the probability, "
        "0 < P <= 1.",
    ),
]
Prime = Annotated[
    str | None,
    typer.Option(
        flag("prime"),
        "-p",
        help="Text the model reads first; printed first (dimmed on a terminal).",
    ),
]
SampleSeed = Annotated[
    int | None,
    typer.Option(
        flag("seed"),
        help="Same seed, checkpoint and device: same text. [default: random, shown on stderr]",
    ),
]
NumSamples = Annotated[
    int | None,
    _field(
        SampleConfig,
        "num_samples",
        "Samples made together as one batch (sample i uses seed + i), printed one after "
        "another with a line '---' between them.",
    ),
]
Stop = Annotated[
    str | None,
    typer.Option(
        flag("stop"),
        help="End a sample where this text appears; the stop text itself is not printed. "
        "A blank line in bash: --stop $'\\n\\n'",
    ),
]
Unknown = Annotated[
    UnknownChars | None,
    _field(
        SampleConfig,
        "unknown",
        "Prime characters the model never saw: error, or skip them with a note.",
    ),
]
SampleDevice = Annotated[str | None, _field(SampleConfig, "device", DEVICE_HELP)]
SamplePrecisionOption = Annotated[
    SamplePrecision | None,
    _field(
        SampleConfig,
        "precision",
        f"Weights for CPU sampling; auto: bf16 for {AUTO_BF16_MIN_BATCH} or more samples at "
        "once on a CPU with bf16 matrix units, else fp16 for models over "
        f"{AUTO_FP16_BYTES / 2**20:g} MB, where each is faster.",
    ),
]
SampleJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="One JSON object per sample and line: text, prime, seed, logprob (natural log "
        "under the plain softmax), chars, stopped.",
    ),
]
Beam = Annotated[
    int | None,
    typer.Option(
        "--beam",
        metavar="K",
        min=1,
        help="The most likely continuation, by beam search of width K, instead of a random "
        "draw: conservative, like a low temperature (--beam 1 is --greedy). --length, --stop "
        "and --json apply, and --num-samples N gives the N best (N <= K); -t, --top-k, "
        "--top-p, --greedy and --seed do not apply.",
    ),
]
Novelty = Annotated[
    str | None,
    typer.Option(
        "--novelty",
        metavar="[CORPUS]",
        show_default=False,
        help="After each sample, on stderr (and in --json), the longest span of it found "
        "verbatim in CORPUS and the share of its 20-character windows found there. Given alone "
        "(after CHECKPOINT), the text the model was trained on, where it is at hand. The "
        "corpus's index is built once and cached (in ~/.cache/charrnn, or $CHARRNN_CACHE_DIR).",
    ),
]
Interactive = Annotated[
    bool,
    typer.Option(
        "--interactive",
        "-i",
        help="A prompt on a terminal: type a prime, see it continued, again and again with the "
        "model loaded; :help lists the commands (:t 0.5, :n 300, :k 40, :p 0.9, :seed 3). "
        "Ctrl-C stops a continuation, Ctrl-D quits.",
    ),
]
