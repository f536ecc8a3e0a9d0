"""The options of `charrnn score`, declared once as Typer `Annotated` aliases (see cli_options
for the machinery: a parameter named after a config field sets it, under its flag). Torch-free."""

from __future__ import annotations

from typing import Annotated

import typer

from .cli_options import Precision, _default, _field
from .config import CPU_BATCH_SIZE, GPU_BATCH_SIZE, ScoreConfig, flag

# --- score ----------------------------------------------------------------------------------

ScoreInput = Annotated[
    str | None,
    typer.Argument(
        metavar="FILE|-",
        show_default=False,
        help="UTF-8 text to score; '-', or nothing while text is piped in, reads stdin.",
    ),
]
ScoreBatchSize = Annotated[
    int | None,
    typer.Option(
        flag("batch_size"),
        help="Lines scored together in one padded batch (longest first). "
        f"[default: {CPU_BATCH_SIZE} on a CPU, {GPU_BATCH_SIZE} on a GPU]",
    ),
]
Context = Annotated[
    str | None,
    typer.Option(
        flag("context"),
        help="Text the model reads before each line (before the text with --whole); the first "
        "character is predicted after it. [default: a newline] "
        "Two newlines in bash: --context $'\\n\\n'",
    ),
]
Whole = Annotated[
    bool, typer.Option("--whole", help="Score the input as one text instead of line by line.")
]
Strict = Annotated[
    bool,
    typer.Option(
        flag("strict"),
        help="Characters the model never saw are an error, instead of skipped and counted as "
        "unknown.",
    ),
]
Sort = Annotated[
    bool,
    typer.Option(
        "--sort",
        help="Rank lines by bits per character, most probable (fewest bits) first; each keeps "
        "its line number. Waits for every line to be scored before writing any.",
    ),
]
ScoreJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="One JSON object per line (line, text, chars, unknown, logprob, log10prob, "
        "bits_per_char, perplexity; null where nothing was scored), then one with "
        '"total": true and the same figures.',
    ),
]
Heatmap = Annotated[
    bool,
    typer.Option(
        "--heatmap",
        help="Also draw the text on stderr, each character coloured by its surprisal in bits, "
        "with a legend (in colour where stderr is a terminal); stdout is unchanged.",
    ),
]
ScorePrecision = Annotated[
    Precision | None,
    _field(
        ScoreConfig,
        "precision",
        "auto: bf16 autocast on CUDA, fp32 elsewhere; bf16 also on a CPU with bf16 matrix units.",
    ),
]
Streams = Annotated[
    int | None,
    typer.Option(
        flag("streams"),
        help="With --whole: score the text as N segments side by side, each after reading the "
        f"{_default(ScoreConfig, 'warmup')} characters before it. Faster but approximate. "
        "[default: 1, exact]",
    ),
]
ScoreQuiet = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No notes on stderr: no total, warning or progress."),
]
Top = Annotated[
    int | None,
    typer.Option(
        "--top",
        metavar="N",
        min=1,
        help="Instead of scores: for each position of the text (read as one, after --context), "
        "the N characters the model expected next with their probabilities, and the "
        "probability and rank of the one that came. A table on a terminal, rows when piped, "
        "or --json.",
    ),
]
