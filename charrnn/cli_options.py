"""Every option of the `charrnn` command, declared once as a Typer `Annotated` alias.

The commands in cli.py list these aliases and nothing else (the fastapi-cli way). A parameter
that sets a config field is named after the field, and its flag comes from `config.flag`, so
the walk from `--hidden` to `ModelConfig.hidden_size` is direct: same name, one table.
Defaults are read from the config dataclasses, so each lives in config.py alone. Torch-free.
"""

from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Annotated, Any

import typer

from . import __version__
from .config import (
    AUTO_FP16_BYTES,
    CELLS,
    CPU_BATCH_SIZE,
    CPU_MULTITHREAD_MODEL,
    DEVICE_DEFAULTS,
    DEVICE_HELP,
    FINETUNE_DEFAULTS,
    GPU_BATCH_SIZE,
    PRECISIONS,
    SAMPLE_PRECISIONS,
    UNKNOWN_CHAR_POLICIES,
    WINDOWS,
    ModelConfig,
    SampleConfig,
    ScoreConfig,
    TrainConfig,
    flag,
)
from .resources import SHIPPED_MODELS


def _choices(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    """An Enum of a config's choices, so Typer checks them and `--help` lists them."""
    return enum.Enum(name, {value: value for value in values}, type=str)


Cell = _choices("Cell", CELLS)
Windows = _choices("Windows", WINDOWS)
Precision = _choices("Precision", PRECISIONS)
SamplePrecision = _choices("SamplePrecision", SAMPLE_PRECISIONS)
UnknownChars = _choices("UnknownChars", UNKNOWN_CHAR_POLICIES)


def _default(cls: type, name: str) -> Any:
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


def _help(text: str, cls: type, name: str) -> str:
    """The help text with the field's default, and its CPU default where that differs."""
    part = "model" if cls is ModelConfig else "train"
    on_cpu = DEVICE_DEFAULTS["cpu"].get(part, {}) if cls in (ModelConfig, TrainConfig) else {}
    cpu_note = f"; on CPU: {on_cpu[name]}" if name in on_cpu else ""
    if cls is ModelConfig and name in CPU_MULTITHREAD_MODEL:
        cpu_note += f" on one thread, {CPU_MULTITHREAD_MODEL[name]} on two or more"
    return f"{text} [default: {_default(cls, name)}{cpu_note}]"


def _field(cls: type, name: str, text: str, *short: str, **option: Any) -> Any:
    """An option that sets config field `name`, under its flag, with its default in the help."""
    return typer.Option(flag(name), *short, help=_help(text, cls, name), **option)


def given(values: dict[str, Any], cls: type) -> dict[str, Any]:
    """The options the user gave that set fields of `cls`, as plain values (choices as strings).

    `values` is a command's parameters by name; a flag left out is None (or False) and is not
    given, so the config's own default applies.
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    return {
        name: value.value if isinstance(value, enum.Enum) else value
        for name, value in values.items()
        if name in fields and value is not None and value is not False
    }


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"charrnn {__version__}")
        raise typer.Exit()


VersionOption = Annotated[
    bool | None,
    typer.Option(
        "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
]

# --- shared by several commands -----------------------------------------------------------

CheckpointOption = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        "-c",
        help="A checkpoint file or run directory (its best.pt, or last.pt before the first "
        "evaluation). [default: the shipped model]",
    ),
]
DeviceOption = Annotated[str | None, typer.Option(flag("device"), help=DEVICE_HELP)]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No status lines on stderr.")]
TrainSeed = Annotated[int | None, _field(TrainConfig, "seed", "Random seed.")]

# --- train ----------------------------------------------------------------------------------

Corpus = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="CORPUS",
        show_default=False,
        help="UTF-8 text files or directories, or - for stdin. "
        "Default: the shipped Shakespeare corpus (a short demo run).",
    ),
]
Out = Annotated[
    Path | None, typer.Option("--out", "-o", help="Run directory. [default: runs/<corpus-name>]")
]
Resume = Annotated[
    Path | None,
    typer.Option(
        "--resume",
        help="Continue a run exactly from its last.pt (or run directory); 'auto': the run "
        "directory's last.pt if it has one, else start the run (for torchrun restarts).",
    ),
]
InitFrom = Annotated[
    str | None,
    typer.Option(
        flag("init_from"),
        metavar="SOURCE",
        help="Fine-tune: start a new run from SOURCE's weights, a checkpoint file, a run "
        "directory or a shipped model by name ("
        + ", ".join(SHIPPED_MODELS)
        + "). The shape is SOURCE's; characters of CORPUS it never saw are added to its "
        "vocabulary. Defaults where not given: "
        + ", ".join(f"{flag(name)} {value:g}" for name, value in FINETUNE_DEFAULTS.items())
        + ", SOURCE's --dropout, the rest as for a new run.",
    ),
]
Force = Annotated[bool, typer.Option("--force", help="Overwrite a run already in --out.")]
CellOption = Annotated[Cell | None, _field(ModelConfig, "cell", "Recurrent cell.")]
Layers = Annotated[int | None, _field(ModelConfig, "num_layers", "Stacked recurrent layers.")]
Hidden = Annotated[int | None, _field(ModelConfig, "hidden_size", "Hidden units per layer.")]
Embedding = Annotated[
    int | None, _field(ModelConfig, "embedding_size", "Character embedding size.")
]
Dropout = Annotated[
    float | None,
    _field(ModelConfig, "dropout", "Dropout on embeddings, between layers and on outputs."),
]
SeqLen = Annotated[int | None, _field(TrainConfig, "seq_len", "Characters per BPTT window.")]
BatchSize = Annotated[int | None, _field(TrainConfig, "batch_size", "Windows per step.")]
WindowsOption = Annotated[
    Windows | None,
    _field(TrainConfig, "windows", "stateful: state carried across windows."),
]
LearningRate = Annotated[
    float | None,
    _field(TrainConfig, "lr", "Peak learning rate (AdamW, warmup then cosine)."),
]
Warmup = Annotated[int | None, _field(TrainConfig, "warmup_steps", "Warmup steps.")]
WeightDecay = Annotated[
    float | None, _field(TrainConfig, "weight_decay", "AdamW weight decay on matrices.")
]
GradClip = Annotated[float | None, _field(TrainConfig, "grad_clip", "Gradient norm clip.")]
MaxSteps = Annotated[int | None, _field(TrainConfig, "max_steps", "Stop after this many steps.")]
MaxTime = Annotated[
    float | None,
    typer.Option(
        flag("max_time"),
        help="Stop after this many seconds of this invocation (a resumed run gets this many "
        "more); the LR schedule decays to its floor by then.",
    ),
]
Patience = Annotated[
    int | None,
    typer.Option(flag("patience"), help="Stop after N evaluations without a new best val loss."),
]
EvalEvery = Annotated[
    int | None,
    _field(TrainConfig, "eval_every", "Evaluate on the whole validation set every N steps."),
]
SaveEvery = Annotated[
    float | None,
    _field(
        TrainConfig,
        "save_every_s",
        "Also save last.pt this often between evaluations (0: after every step), "
        "so a crash loses at most that much.",
        metavar="SECONDS",
    ),
]
ValFraction = Annotated[
    float | None,
    _field(TrainConfig, "val_fraction", "Last fraction of the text held out for validation."),
]
SampleChars = Annotated[
    int | None,
    _field(TrainConfig, "sample_chars", "Characters of sample shown at each evaluation (0: none)."),
]
TrainDevice = Annotated[str | None, _field(TrainConfig, "device", DEVICE_HELP)]
TrainPrecision = Annotated[
    Precision | None,
    _field(TrainConfig, "precision", "auto: bf16 autocast on CUDA, fp32 elsewhere."),
]
Compile = Annotated[
    bool | None, typer.Option("--compile/--no-compile", help="torch.compile the model.")
]
Threads = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="CPU threads. [default: one per free core, at most torch's count; "
        "OMP_NUM_THREADS is respected]",
    ),
]
TrainQuiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary.")]

# --- info -----------------------------------------------------------------------------------

InfoCheckpoint = Annotated[
    Path | None,
    typer.Argument(
        help="A checkpoint file or run directory (its best.pt). [default: the shipped model]"
    ),
]

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
        "Weights for CPU sampling; auto: fp16 for models over "
        f"{AUTO_FP16_BYTES / 2**20:g} MB, where it is faster.",
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
    _field(ScoreConfig, "precision", "auto: bf16 autocast on CUDA, fp32 elsewhere."),
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
