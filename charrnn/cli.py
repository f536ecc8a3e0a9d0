"""The `charrnn` command: a thin Typer layer that parses options, calls the library, renders."""

from __future__ import annotations

import shlex
import sys
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import typer

# Only modules that do not import torch are imported here, so `--help` and `--version` answer
# at once; each command imports the library modules it needs when it runs.
from .cli_errors import (
    OneLineErrors,
    friendly_errors,
    hold_closed_standard_fds,
    stdout_or_error,
)
from .cli_options import (
    BatchSize,
    CellOption,
    CheckpointOption,
    Compile,
    Corpus,
    DeviceOption,
    Dropout,
    EmaDecay,
    Embedding,
    EvalEvery,
    Force,
    GradClip,
    Hidden,
    InfoCheckpoint,
    InitFrom,
    Layers,
    LearningRate,
    MaxSteps,
    MaxTime,
    OptionalValues,
    Out,
    Patience,
    Quiet,
    Resume,
    SampleChars,
    SaveEvery,
    SeqLen,
    TensorBoard,
    Threads,
    TrainDevice,
    TrainPrecision,
    TrainQuiet,
    TrainSeed,
    ValFraction,
    VersionOption,
    Warmup,
    WeightDecay,
    WindowsOption,
    given,
)
from .cli_runs import add_run_commands
from .cli_sample import NoveltyReport, check_sample_modes, write_beam, write_samples
from .cli_sample_options import (
    Beam,
    Greedy,
    Interactive,
    Length,
    Novelty,
    NumSamples,
    Prime,
    SampleCheckpoint,
    SampleDevice,
    SampleJson,
    SamplePrecisionOption,
    SampleSeed,
    Stop,
    Temperature,
    TopK,
    TopP,
    Unknown,
)
from .cli_score import check_top, write_scores, write_top
from .cli_score_options import (
    Context,
    Heatmap,
    ScoreBatchSize,
    ScoreInput,
    ScoreJson,
    ScorePrecision,
    ScoreQuiet,
    Sort,
    Streams,
    Strict,
    Top,
    Whole,
)
from .cli_serve import add_serve_command
from .config import ModelConfig, SampleConfig, ScoreConfig, TrainConfig
from .console import (
    TrainDisplay,
    err_console,
    info,
    train_summary,
)
from .errors import ConfigError
from .events import TrainStart
from .metrics import val_losses
from .output import (
    checkpoint_rows,
    silence_stdout,
)

if TYPE_CHECKING:  # only for annotations: importing it would import torch, slowing --help
    pass

app = typer.Typer(
    cls=OneLineErrors,
    name="charrnn",
    help="Character-level RNN language models: train, sample and score text; plot and list runs.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion and --show-completion (bash, zsh, fish)
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _main_options(version: VersionOption = None) -> None:
    """Character-level RNN language models: train, sample and score text; plot and list runs."""


@app.command(cls=OptionalValues)
@friendly_errors
def train(
    corpus: Corpus = None,
    out: Out = None,
    resume: Resume = None,
    init_from: InitFrom = None,
    force: Force = False,
    cell: CellOption = None,
    num_layers: Layers = None,
    hidden_size: Hidden = None,
    embedding_size: Embedding = None,
    dropout: Dropout = None,
    seq_len: SeqLen = None,
    batch_size: BatchSize = None,
    windows: WindowsOption = None,
    lr: LearningRate = None,
    warmup_steps: Warmup = None,
    weight_decay: WeightDecay = None,
    grad_clip: GradClip = None,
    ema_decay: EmaDecay = None,
    max_steps: MaxSteps = None,
    max_time: MaxTime = None,
    patience: Patience = None,
    eval_every: EvalEvery = None,
    save_every_s: SaveEvery = None,
    val_fraction: ValFraction = None,
    sample_chars: SampleChars = None,
    seed: TrainSeed = None,
    device: TrainDevice = None,
    precision: TrainPrecision = None,
    compile: Compile = None,
    threads: Threads = None,
    tensorboard: TensorBoard = None,
    quiet: TrainQuiet = False,
) -> None:
    """Train a character-level language model on UTF-8 text.

    \b
    Examples:
      charrnn train my_text.txt --max-time 180
      charrnn train my_text.txt --tensorboard
      charrnn train --resume runs/my_text
    """
    options = locals()  # parameters named after config fields go to that config
    from .plan import plan_run

    model_options, train_options = given(options, ModelConfig), given(options, TrainConfig)
    plan = plan_run(corpus, model_options, train_options, out, resume, threads, init_from)
    main = plan.group is None or plan.group.main  # under torchrun, rank 0 alone reports
    for note in plan.notes if main else []:
        info(note)
    board = None if tensorboard is None or not main else _tensorboard_log(tensorboard, plan.out_dir)
    result, interrupt = _run_training(plan, overwrite=force, quiet=quiet or not main, also=board)
    if main:
        summary = train_summary(result, shlex.join(plan.resume_command), val_losses(plan.out_dir))
        err_console.print(summary, soft_wrap=True)
    if result.stop_reason == "interrupted":
        raise typer.Exit(interrupt.exit_code)


def _tensorboard_log(log_dir: str, out_dir: Any) -> Any:
    """The TensorBoard writer of --tensorboard [DIR] ("" for the run directory's)."""
    from .tensorboard_log import TensorBoardLog, default_log_dir

    board = TensorBoardLog(log_dir or default_log_dir(out_dir))
    info(f"tensorboard: {board.log_dir} (view with: tensorboard --logdir {board.log_dir})")
    return board


def _run_training(plan: Any, overwrite: bool, quiet: bool, also: Any = None) -> tuple[Any, Any]:
    """Train as planned with the live display (and `also`, a context manager that takes every
    event too), stopping politely on a signal."""
    from .interrupt import GracefulInterrupt
    from .training import train as run_training

    main = plan.group is None or plan.group.main
    with (
        GracefulInterrupt(announce=main) as interrupt,
        TrainDisplay(quiet=quiet) as show,
        also or nullcontext(),
    ):

        def display(event: Any) -> None:
            if isinstance(event, TrainStart) and plan.threads is not None and not quiet:
                info(f"cpu threads: {plan.threads.reason}")  # once the data has passed its checks
            show(event)
            if also is not None:
                also(event)

        result = run_training(
            plan.corpus,
            plan.model_config,
            plan.train_config,
            plan.out_dir,
            resume=plan.resume,
            init_from=plan.init_from,
            on_event=display,
            should_stop=interrupt,
            overwrite=overwrite,
            group=plan.group,
        )
    return result, interrupt


@app.command("info")
@friendly_errors
def info_command(checkpoint: InfoCheckpoint = None) -> None:
    """Describe a checkpoint: model, sizes, training and corpus.

    \b
    Example:
      charrnn info runs/my_text
    """
    from .checkpoint import load_checkpoint, resolve_checkpoint_path
    from .resources import default_checkpoint_path

    path = resolve_checkpoint_path(checkpoint) if checkpoint else default_checkpoint_path()
    stdout = stdout_or_error()
    rows = checkpoint_rows(load_checkpoint(path))
    width = max(len(name) for name, _ in rows)
    stdout.write("".join(f"{name:<{width}}  {value}\n" for name, value in rows))
    stdout.flush()


@app.command("sample", cls=OptionalValues)
@friendly_errors
def sample_command(
    run: SampleCheckpoint = None,
    checkpoint: CheckpointOption = None,
    length: Length = None,
    temperature: Temperature = None,
    greedy: Greedy = False,
    top_k: TopK = None,
    top_p: TopP = None,
    prime: Prime = None,
    seed: SampleSeed = None,
    num_samples: NumSamples = None,
    stop: Stop = None,
    unknown: Unknown = None,
    device: SampleDevice = None,
    precision: SamplePrecisionOption = None,
    beam: Beam = None,
    novelty: Novelty = None,
    interactive: Interactive = False,
    as_json: SampleJson = False,
    quiet: Quiet = False,
) -> None:
    """Generate text from a trained model, streamed to stdout as it is made.

    \b
    Examples:
      charrnn sample -n 300 --prime $'ROMEO.\\n' --seed 1
      charrnn sample runs/my_text --num-samples 4 --stop $'\\n\\n' --json
      charrnn sample --beam 8 -n 200 --novelty
      charrnn sample runs/my_text --interactive
    """
    options = given(locals(), SampleConfig)
    config = SampleConfig(**options)
    check_sample_modes(options, beam, interactive, as_json)
    stdout = stdout_or_error()
    from .checkpoint import load_model

    note = None if quiet else info
    loaded = load_model(_one_checkpoint(run, checkpoint), config.device, on_note=note)
    report = None if novelty is None else NoveltyReport(novelty, loaded.info, quiet)
    if interactive:
        from .cli_interactive import run_interactive

        return run_interactive(loaded, config, report)
    annotate = report.fields if report else None
    if beam is not None:
        samples = write_beam(loaded, config, beam, stdout, as_json, quiet, annotate)
    else:
        samples = write_samples(loaded, config, stdout, as_json, quiet, annotate, keep=bool(report))
    if report is not None:
        report.report(samples)


def _one_checkpoint(positional: Any, option: Any) -> Any:
    """The checkpoint named either way (`charrnn sample runs/x`, the char-rnn habit, or -c)."""
    if positional is not None and option is not None and positional != option:
        raise ConfigError(f"two checkpoints given ({positional} and -c {option}); give one")
    return positional or option


@app.command("score")
@friendly_errors
def score_command(
    file: ScoreInput = None,
    checkpoint: CheckpointOption = None,
    device: DeviceOption = None,
    batch_size: ScoreBatchSize = None,
    context: Context = None,
    whole: Whole = False,
    strict: Strict = False,
    sort: Sort = False,
    as_json: ScoreJson = False,
    heatmap: Heatmap = False,
    precision: ScorePrecision = None,
    streams: Streams = None,
    top: Top = None,
    quiet: ScoreQuiet = False,
) -> None:
    """Score text: how probable it is under the model, in bits per character and perplexity.

    Each line is scored on its own: the model reads --context (a newline), then predicts every
    character of the line and its newline (a blank line is just its newline; a last line
    without one is scored without it). --whole scores the input as one text. Characters the
    model never saw are skipped, counted as unknown and left out of every figure.

    Output, on stdout: a table on a terminal (up to 2,000 lines); otherwise tab-separated rows
    under a header line (no colours; tabs and newlines in the text escaped as \\t and \\n); or
    --json. The input is read as it is scored, and rows and JSON objects are written as soon as
    they are scored, in input order, so `| head` answers at once; --sort and the terminal's
    table wait for every line. The total is also written to stderr. Empty input: no rows, a
    note on stderr, exit 0.

    \b
    Examples:
      echo "To be, or not to be" | charrnn score -c runs/my_text
      charrnn score sonnet.txt --sort | head
      echo "To be, or not" | charrnn score --top 5
    """
    config = ScoreConfig(**given(locals(), ScoreConfig))
    if streams is not None and not whole:
        raise ConfigError("--streams applies to --whole only")
    check_top(top, sort=sort, heatmap=heatmap, streams=streams)
    stdout_or_error()
    from .checkpoint import load_model
    from .score_input import open_text_input

    with open_text_input(file) as text:  # read as it is scored, never whole
        loaded = load_model(checkpoint, device or "auto", on_note=None if quiet else info)
        if top is not None:
            write_top(loaded, text, top, config, as_json, quiet)
        else:
            write_scores(loaded, text, config, whole, sort, as_json, heatmap, quiet)


add_run_commands(app)  # plot and runs
add_serve_command(app)


def main() -> None:
    """The CLI's entry point (`charrnn`, through charrnn.entry, and `python -m charrnn`)."""
    hold_closed_standard_fds()
    try:
        app()
    except KeyboardInterrupt:
        # Ctrl-C before a command took charge of it (while Typer builds the commands): quiet.
        sys.exit(130)
    except BrokenPipeError:
        # A reader such as `head` closed the pipe: not an error for us.
        silence_stdout()
        sys.exit(0)
