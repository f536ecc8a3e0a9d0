"""The `charrnn` command: a thin Typer layer that parses options, calls the library, renders."""

from __future__ import annotations

import shlex
import sys
import time
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
    Context,
    Corpus,
    DeviceOption,
    Dropout,
    Embedding,
    EvalEvery,
    Force,
    GradClip,
    Greedy,
    Heatmap,
    Hidden,
    InfoCheckpoint,
    InitFrom,
    Layers,
    LearningRate,
    Length,
    MaxSteps,
    MaxTime,
    NumSamples,
    Out,
    Patience,
    Prime,
    Quiet,
    Resume,
    SampleChars,
    SampleCheckpoint,
    SampleDevice,
    SampleJson,
    SamplePrecisionOption,
    SampleSeed,
    SaveEvery,
    ScoreBatchSize,
    ScoreInput,
    ScoreJson,
    ScorePrecision,
    ScoreQuiet,
    SeqLen,
    Sort,
    Stop,
    Streams,
    Strict,
    Temperature,
    Threads,
    TopK,
    TopP,
    TrainDevice,
    TrainPrecision,
    TrainQuiet,
    TrainSeed,
    Unknown,
    ValFraction,
    VersionOption,
    Warmup,
    WeightDecay,
    Whole,
    WindowsOption,
    given,
)
from .config import ModelConfig, SampleConfig, ScoreConfig, TrainConfig
from .console import (
    HeatmapWriter,
    ScoreProgress,
    TrainDisplay,
    err_console,
    info,
    sample_status,
    score_summary,
    train_summary,
    warn,
)
from .errors import ConfigError
from .events import TrainStart
from .output import (
    TABLE_MAX_ROWS,
    SampleWriter,
    ScoreWriter,
    checkpoint_rows,
    render_for_terminal,
    score_table,
    silence_stdout,
)

if TYPE_CHECKING:  # only for annotations: importing it would import torch, slowing --help
    from .score_input import TextInput

app = typer.Typer(
    cls=OneLineErrors,
    name="charrnn",
    help="Character-level RNN language models: train, sample and score text.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _main_options(version: VersionOption = None) -> None:
    """Character-level RNN language models: train, sample and score text."""


@app.command()
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
    quiet: TrainQuiet = False,
) -> None:
    """Train a character-level language model on UTF-8 text."""
    options = locals()  # parameters named after config fields go to that config
    from .plan import plan_run

    plan = plan_run(
        corpus,
        given(options, ModelConfig),
        given(options, TrainConfig),
        out=out,
        resume=resume,
        threads=threads,
        init_from=init_from,
    )
    main = plan.group is None or plan.group.main  # under torchrun, rank 0 alone reports
    for note in plan.notes if main else []:
        info(note)
    result, interrupt = _run_training(plan, overwrite=force, quiet=quiet or not main)
    if main:
        summary = train_summary(result, shlex.join(plan.resume_command))
        err_console.print(summary, soft_wrap=True)
    if result.stop_reason == "interrupted":
        raise typer.Exit(interrupt.exit_code)


def _run_training(plan: Any, overwrite: bool, quiet: bool) -> tuple[Any, Any]:
    """Train as planned with the live display, stopping politely on a signal."""
    from .interrupt import GracefulInterrupt
    from .training import train as run_training

    main = plan.group is None or plan.group.main
    with GracefulInterrupt(announce=main) as interrupt, TrainDisplay(quiet=quiet) as show:

        def display(event: Any) -> None:
            if isinstance(event, TrainStart) and plan.threads is not None and not quiet:
                info(f"cpu threads: {plan.threads.reason}")  # once the data has passed its checks
            show(event)

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
    """Describe a checkpoint: model, sizes, training and corpus."""
    from .checkpoint import load_checkpoint, resolve_checkpoint_path
    from .resources import default_checkpoint_path

    path = resolve_checkpoint_path(checkpoint) if checkpoint else default_checkpoint_path()
    stdout = stdout_or_error()
    rows = checkpoint_rows(load_checkpoint(path))
    width = max(len(name) for name, _ in rows)
    stdout.write("".join(f"{name:<{width}}  {value}\n" for name, value in rows))
    stdout.flush()


@app.command("sample")
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
    as_json: SampleJson = False,
    quiet: Quiet = False,
) -> None:
    """Generate text from a trained model, streamed to stdout as it is made."""
    config = SampleConfig(**given(locals(), SampleConfig))
    stdout = stdout_or_error()
    from .checkpoint import load_model
    from .sampling import Generation

    note = None if quiet else info
    loaded = load_model(_one_checkpoint(run, checkpoint), config.device, on_note=note)
    generation = Generation(loaded.model, loaded.vocab, config)
    if generation.skipped_note:
        warn(generation.skipped_note)
    if not quiet:
        weights = f"{loaded.model_config.shape}, {generation.precision} weights"
        info(sample_status(loaded.path, weights, str(generation.device), generation.seeds))
    writer = SampleWriter(stdout, generation.prime, as_json=as_json)
    started = time.perf_counter()
    writer.start()
    for piece in generation:
        writer.piece(piece)
    writer.finish(generation.samples)
    if not quiet:
        chars, seconds = sum(s.chars for s in generation.samples), time.perf_counter() - started
        info(f"{chars:,} characters in {seconds:.2f} s ({chars / max(seconds, 1e-9):,.0f} chars/s)")


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
    """
    config = ScoreConfig(**given(locals(), ScoreConfig))
    if streams is not None and not whole:
        raise ConfigError("--streams applies to --whole only")
    stdout_or_error()
    from .checkpoint import load_model
    from .score_input import open_text_input

    with open_text_input(file) as text:  # read as it is scored, never whole
        loaded = load_model(checkpoint, device or "auto", on_note=None if quiet else info)
        _write_scores(loaded, text, config, whole, sort, as_json, heatmap, quiet)


def _write_scores(
    loaded: Any,
    text: TextInput,
    config: ScoreConfig,
    whole: bool,
    sort: bool,
    as_json: bool,
    heatmap: bool,
    quiet: bool,
) -> None:
    """Score and write: rows go out block by block, in input order, as soon as they are final.
    Ranking them and the terminal's table need every line first, so they keep each row's
    figures and text (the table only up to TABLE_MAX_ROWS rows: beyond, rows are written)."""
    from .scoring import rank_by_bits, score_stream, summarize
    from .vocab import describe_skipped

    table = not as_json and sys.stdout.isatty()
    writer, heatmap_writer = ScoreWriter(sys.stdout, as_json), HeatmapWriter() if heatmap else None
    kept: list[Any] = []  # the rows --sort or the table waits for
    total, count = summarize([]), 0
    with ScoreProgress(quiet, expected=text.size) as progress:
        on_chars = None if heatmap_writer is None else heatmap_writer.piece
        blocks = score_stream(
            loaded, text, config, whole=whole, on_progress=progress, on_chars=on_chars
        )
        for block in blocks:
            kept.extend((None if whole else n, s) for n, s in enumerate(block, count + 1))
            count, total = count + len(block), summarize([total, *block])
            table = table and count <= TABLE_MAX_ROWS  # past it, a terminal gets rows too
            if not (sort or table):
                writer.rows(kept)
                kept = []
    if not count:
        if not quiet:
            info("the input is empty: nothing to score")
        return
    if heatmap_writer is not None:
        heatmap_writer.finish()
    if total.unknown and not quiet:
        unseen = describe_skipped(total.unknown, total.unknown_chars)
        warn(f"{unseen} (--strict makes them an error)")
    rows = rank_by_bits(kept) if sort else kept
    if table:
        sys.stdout.write(render_for_terminal(score_table(rows, total), sys.stdout))
        sys.stdout.flush()
    else:
        if rows:
            writer.rows(rows)
        writer.finish(total)
    if not quiet:
        info(score_summary(total, None if whole else count))


def main() -> None:
    """The CLI's entry point (`charrnn`, through charrnn.entry, and `python -m charrnn`)."""
    hold_closed_standard_fds()
    try:
        app()
    except BrokenPipeError:
        # A reader such as `head` closed the pipe: not an error for us.
        silence_stdout()
        sys.exit(0)
