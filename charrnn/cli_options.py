"""The options of the `charrnn` command, each declared once as a Typer `Annotated` alias: the
machinery, the options several commands share, and those of train and info (sample's are in
cli_sample_options, score's in cli_score_options).

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
from typer.core import TyperCommand

from . import __version__
from .config import (
    CELLS,
    CPU_BF16_MIN_HIDDEN,
    CPU_MULTITHREAD_MODEL,
    DEVICE_DEFAULTS,
    DEVICE_HELP,
    FINETUNE_DEFAULTS,
    PRECISIONS,
    SAMPLE_PRECISIONS,
    UNKNOWN_CHAR_POLICIES,
    WINDOWS,
    ModelConfig,
    ServeConfig,
    TrainConfig,
    flag,
)
from .plot import AGAINST
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


# Options whose value may be left out: `--tensorboard` alone means its default, `--tensorboard
# DIR` a directory. Typer cannot declare that, so commands that have one rewrite a bare one to
# `--tensorboard=` before parsing: given bare, such an option's value is "". A value is taken
# when the next argument does not start with "-", so a bare one goes after positionals.
OPTIONAL_VALUE_OPTIONS = ("--tensorboard", "--novelty")


def fill_optional_values(
    args: list[str], names: tuple[str, ...] = OPTIONAL_VALUE_OPTIONS
) -> list[str]:
    """`args` with each bare option of `names` given as `--name=` (its value left empty)."""
    filled = []
    for index, arg in enumerate(args):
        if arg == "--":
            return filled + args[index:]
        following = args[index + 1] if index + 1 < len(args) else None
        bare = following is None or (following.startswith("-") and following != "-")
        filled.append(arg + "=" if arg in names and bare else arg)
    return filled


class OptionalValues(TyperCommand):
    """A command with options of OPTIONAL_VALUE_OPTIONS (see fill_optional_values)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, fill_optional_values(args))


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
EmaDecay = Annotated[
    float | None,
    _field(
        TrainConfig,
        "ema_decay",
        "Evaluate, and keep as best.pt, a moving average of the weights with this decay per "
        "step (0.999: about the last 1,000 steps; 0: off). May change on --resume.",
        metavar="DECAY",
    ),
]
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
    _field(
        TrainConfig,
        "precision",
        "auto: bf16 autocast on CUDA, and on a CPU with bf16 matrix units (AVX512-BF16, AMX) "
        f"for LSTM layers of {CPU_BF16_MIN_HIDDEN['lstm']} or more, GRU and RNN of "
        f"{CPU_BF16_MIN_HIDDEN['gru']} or more; fp32 elsewhere. bf16 keeps fp32 weights.",
    ),
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
TensorBoard = Annotated[
    str | None,
    typer.Option(
        "--tensorboard",
        metavar="[DIR]",
        show_default=False,
        help="Also write the metrics as TensorBoard event files, in DIR or, given alone (after "
        "CORPUS), in the run directory's tensorboard/ (needs the tensorboard package: pip "
        "install 'charrnn[tensorboard]').",
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

# --- plot -----------------------------------------------------------------------------------

AgainstChoice = _choices("AgainstChoice", AGAINST)
PlotRuns = Annotated[
    list[Path] | None,
    typer.Argument(
        metavar="RUN...",
        show_default=False,
        help="Run directories (or their metrics.jsonl), drawn together.",
    ),
]
Png = Annotated[
    Path | None,
    typer.Option(
        "--png",
        metavar="FILE",
        help="Save the chart as a PNG instead (needs matplotlib: pip install 'charrnn[plot]').",
    ),
]
Against = Annotated[
    AgainstChoice,
    typer.Option("--against", help="Loss against steps, elapsed training time, or both."),
]
ChartWidth = Annotated[
    int | None,
    typer.Option(
        "--width", min=40, help="Columns of the chart. [default: the terminal's; 80 when piped]"
    ),
]
ChartHeight = Annotated[int, typer.Option("--height", min=3, help="Rows of each chart.")]

# --- runs -----------------------------------------------------------------------------------

RunsDirectory = Annotated[
    Path | None,
    typer.Argument(
        metavar="DIR",
        show_default=False,
        help="The directory that holds the runs. [default: runs]",
    ),
]
RunsJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="One JSON object per run and line: run, corpus, model, parameters, steps, "
        "best_val_loss, state, why, saved_at.",
    ),
]

# --- serve ----------------------------------------------------------------------------------

Host = Annotated[
    str | None,
    _field(
        ServeConfig,
        "host",
        "Address to listen on; anything but loopback lets other machines in (a warning says so).",
    ),
]
Port = Annotated[int | None, _field(ServeConfig, "port", "Port to listen on; 0: any free one.")]
MaxLength = Annotated[
    int | None, _field(ServeConfig, "max_length", "Most characters per sample a request may ask.")
]
MaxSamples = Annotated[
    int | None, _field(ServeConfig, "max_samples", "Most samples per request (num_samples).")
]
MaxRequestBytes = Annotated[
    int | None,
    _field(
        ServeConfig,
        "max_request_bytes",
        "Largest request body; a bigger one gets 413 (it bounds a text to score).",
        metavar="BYTES",
    ),
]
ServeQuiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No status lines on stderr (warnings still show).")
]
