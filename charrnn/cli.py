"""The `charrnn` command: a thin Typer layer that parses options, calls the library, renders."""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import os
import shlex
import signal
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

# Only modules that do not import torch are imported here, so `--help` and `--version` answer
# at once; each command imports the library modules it needs when it runs.
from . import __version__, resources
from .config import (
    AUTO_FP16_BYTES,
    CELLS,
    CPU_BATCH_SIZE,
    CPU_MULTITHREAD_MODEL,
    DEVICE_DEFAULTS,
    DEVICE_HELP,
    GPU_BATCH_SIZE,
    PRECISIONS,
    SAMPLE_PRECISIONS,
    UNKNOWN_CHAR_POLICIES,
    WINDOWS,
    ModelConfig,
    SampleConfig,
    ScoreConfig,
    TrainConfig,
)
from .console import (
    HeatmapWriter,
    ScoreProgress,
    TrainDisplay,
    err_console,
    error,
    info,
    sample_status,
    score_summary,
    train_summary,
    warn,
)
from .errors import CharRNNError, ConfigError, DataError
from .events import TrainStart
from .output import (
    TABLE_MAX_ROWS,
    SampleWriter,
    ScoreWriter,
    checkpoint_rows,
    render_for_terminal,
    score_table,
)

try:  # Typer 0.2x carries its own copy of click; older Typer uses click itself
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click import exceptions as click_errors


class _OneLineErrors(TyperGroup):
    """Click's usage errors as one line (`error: ...`, exit 2) like every other charrnn error,
    instead of a usage block; asking for help with no arguments still shows the help."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click_errors.UsageError as problem:
            if type(problem).__name__ == "NoArgsIsHelpError" or problem.ctx is None:
                problem.show()
                sys.exit(problem.exit_code)
            command = problem.ctx.command_path
            error(f"{problem.format_message()} ({command} -h for help)")
            sys.exit(2)
        except click_errors.ClickException as problem:
            error(problem.format_message())
            sys.exit(problem.exit_code)
        except click_errors.Abort:
            error("aborted")
            sys.exit(1)
        sys.exit(code or 0)


app = typer.Typer(
    cls=_OneLineErrors,
    name="charrnn",
    help="Character-level RNN language models: train, sample and score text.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"charrnn {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = None,
) -> None:
    """Character-level RNN language models: train, sample and score text."""


def _default(cls: type, name: str) -> Any:
    """The dataclass default, so each default lives in config.py alone."""
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


def _help(text: str, cls: type, name: str) -> str:
    part = "model" if cls is ModelConfig else "train"
    on_cpu = DEVICE_DEFAULTS["cpu"].get(part, {})
    cpu_note = f"; on CPU: {on_cpu[name]}" if name in on_cpu else ""
    if part == "model" and name in CPU_MULTITHREAD_MODEL:
        cpu_note += f" on one thread, {CPU_MULTITHREAD_MODEL[name]} on two or more"
    return f"{text} [default: {_default(cls, name)}{cpu_note}]"


class GracefulInterrupt:
    """Ctrl-C, SIGTERM (`timeout`, `docker stop`, systemd) and SIGHUP (a dropped ssh session) ask
    the loop to stop after the current step and save; a second signal aborts at once."""

    SIGNALS = tuple(
        getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
    )

    def __init__(self) -> None:
        self.received: int | None = None  # the first signal's number
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulInterrupt:
        for signum in self.SIGNALS:
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        name = "interrupt" if signum == signal.SIGINT else signal.Signals(signum).name
        err_console.print(f"\n[yellow]{name}: saving last.pt after this step (again to abort)[/]")

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process ended by it (130 for Ctrl-C)."""
        return 128 + (self.received or signal.SIGINT)

    def __call__(self) -> bool:
        return self.received is not None


def friendly_errors(command: Callable[..., None]) -> Callable[..., None]:
    """Library errors become one line on stderr and an exit code (usage 2, runtime 1)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except CharRNNError as problem:
            error(str(problem))
            raise typer.Exit(problem.exit_code) from None

    return wrapper


def _choices(name: str, values: tuple[str, ...]) -> type[enum.Enum]:
    """An Enum of a config's choices, so Typer checks them and `--help` lists them."""
    return enum.Enum(name, {value: value for value in values}, type=str)


Cell = _choices("Cell", CELLS)
Windows = _choices("Windows", WINDOWS)
Precision = _choices("Precision", PRECISIONS)
SamplePrecision = _choices("SamplePrecision", SAMPLE_PRECISIONS)
UnknownChars = _choices("UnknownChars", UNKNOWN_CHAR_POLICIES)


# Options shared by several commands, declared once (the fastapi-cli way).
CheckpointOption = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint",
        "-c",
        help="A checkpoint file or run directory (its best.pt, or last.pt before the first evaluation). [default: the shipped model]",
    ),
]


def _overrides(**values: Any) -> dict[str, Any]:
    """The options the user gave, as plain values (choices as their strings)."""
    return {
        key: value.value if isinstance(value, enum.Enum) else value
        for key, value in values.items()
        if value is not None
    }


@app.command()
@friendly_errors
def train(
    corpus: Annotated[
        list[Path] | None,
        typer.Argument(
            help="UTF-8 text files or directories. Default: the shipped Shakespeare corpus."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Run directory. [default: runs/<corpus-name>]"),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue a run exactly from its last.pt (or run directory)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite a run already in --out.")
    ] = False,
    model: Annotated[
        Cell | None,
        typer.Option(
            "--model",
            help=_help("Recurrent cell.", ModelConfig, "cell"),
        ),
    ] = None,
    layers: Annotated[
        int | None, typer.Option(help=_help("Stacked recurrent layers.", ModelConfig, "num_layers"))
    ] = None,
    hidden: Annotated[
        int | None, typer.Option(help=_help("Hidden units per layer.", ModelConfig, "hidden_size"))
    ] = None,
    embedding: Annotated[
        int | None,
        typer.Option(help=_help("Character embedding size.", ModelConfig, "embedding_size")),
    ] = None,
    dropout: Annotated[
        float | None,
        typer.Option(
            help=_help(
                "Dropout on embeddings, between layers and on outputs.", ModelConfig, "dropout"
            )
        ),
    ] = None,
    seq_len: Annotated[
        int | None, typer.Option(help=_help("Characters per BPTT window.", TrainConfig, "seq_len"))
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help=_help("Windows per step.", TrainConfig, "batch_size"))
    ] = None,
    windows: Annotated[
        Windows | None,
        typer.Option(
            help=_help("stateful: state carried across windows.", TrainConfig, "windows"),
        ),
    ] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            help=_help("Peak learning rate (AdamW, warmup then cosine).", TrainConfig, "lr")
        ),
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(help=_help("Warmup steps.", TrainConfig, "warmup_steps"))
    ] = None,
    weight_decay: Annotated[
        float | None,
        typer.Option(help=_help("AdamW weight decay on matrices.", TrainConfig, "weight_decay")),
    ] = None,
    grad_clip: Annotated[
        float | None, typer.Option(help=_help("Gradient norm clip.", TrainConfig, "grad_clip"))
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(help=_help("Stop after this many steps.", TrainConfig, "max_steps")),
    ] = None,
    max_time: Annotated[
        float | None,
        typer.Option(
            help="Stop after this many seconds of this invocation (a resumed run gets this many "
            "more); the LR schedule decays to its floor by then."
        ),
    ] = None,
    patience: Annotated[
        int | None, typer.Option(help="Stop after N evaluations without a new best val loss.")
    ] = None,
    eval_every: Annotated[
        int | None,
        typer.Option(
            help=_help(
                "Evaluate on the whole validation set every N steps.", TrainConfig, "eval_every"
            )
        ),
    ] = None,
    save_every: Annotated[
        float | None,
        typer.Option(
            "--save-every",
            metavar="SECONDS",
            help=_help(
                "Also save last.pt this often between evaluations (0: after every step), "
                "so a crash loses at most that much.",
                TrainConfig,
                "save_every_s",
            ),
        ),
    ] = None,
    val_fraction: Annotated[
        float | None,
        typer.Option(
            help=_help(
                "Last fraction of the text held out for validation.", TrainConfig, "val_fraction"
            )
        ),
    ] = None,
    sample_chars: Annotated[
        int | None,
        typer.Option(
            help=_help(
                "Characters of sample shown at each evaluation (0: none).",
                TrainConfig,
                "sample_chars",
            )
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help=_help("Random seed.", TrainConfig, "seed"))
    ] = None,
    device: Annotated[
        str | None, typer.Option(help=_help(DEVICE_HELP, TrainConfig, "device"))
    ] = None,
    precision: Annotated[
        Precision | None,
        typer.Option(
            help=_help("auto: bf16 autocast on CUDA, fp32 elsewhere.", TrainConfig, "precision"),
        ),
    ] = None,
    compile: Annotated[
        bool | None, typer.Option("--compile/--no-compile", help="torch.compile the model.")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="CPU threads. [default: one per free core, at most torch's count; OMP_NUM_THREADS is respected]",
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the final summary.")
    ] = False,
) -> None:
    """Train a character-level language model on UTF-8 text."""
    train_options = _overrides(
        seq_len=seq_len,
        batch_size=batch_size,
        windows=windows,
        lr=lr,
        warmup_steps=warmup,
        weight_decay=weight_decay,
        grad_clip=grad_clip,
        max_steps=max_steps,
        max_time=max_time,
        patience=patience,
        eval_every=eval_every,
        save_every_s=save_every,
        val_fraction=val_fraction,
        sample_chars=sample_chars,
        seed=seed,
        device=device,
        precision=precision,
        compile=compile,
    )
    model_options = _overrides(
        cell=model, num_layers=layers, hidden_size=hidden, embedding_size=embedding, dropout=dropout
    )
    from .plan import plan_run
    from .training import train as run_training

    plan = plan_run(corpus, model_options, train_options, out=out, resume=resume, threads=threads)
    for note in plan.notes:
        info(note)
    resume_hint = shlex.join(plan.resume_command)
    with GracefulInterrupt() as interrupt, TrainDisplay(quiet=quiet) as show:

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
            on_event=display,
            should_stop=interrupt,
            overwrite=force,
        )
    err_console.print(train_summary(result, resume_hint), soft_wrap=True)
    if result.stop_reason == "interrupted":
        raise typer.Exit(interrupt.exit_code)


@app.command("info")
@friendly_errors
def info_command(
    checkpoint: Annotated[
        Path | None,
        typer.Argument(
            help="A checkpoint file or run directory (its best.pt). [default: the shipped model]"
        ),
    ] = None,
) -> None:
    """Describe a checkpoint: model, sizes, training and corpus."""
    from .checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint or resources.default_checkpoint_path())
    rows = checkpoint_rows(loaded)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name:<{width}}  {value}")


@app.command("sample")
@friendly_errors
def sample_command(
    run: Annotated[
        Path | None,
        typer.Argument(
            metavar="CHECKPOINT",
            show_default=False,
            help="A checkpoint file or run directory, as with -c.",
        ),
    ] = None,
    checkpoint: CheckpointOption = None,
    length: Annotated[
        int | None,
        typer.Option(
            "--length",
            "-n",
            help=_help("Characters to generate per sample.", SampleConfig, "length"),
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            "--temperature",
            "-t",
            help=_help("Above 1 wilder, below 1 safer; must be > 0.", SampleConfig, "temperature"),
        ),
    ] = None,
    greedy: Annotated[
        bool,
        typer.Option(
            "--greedy", help="Always take the most likely character (ignores -t, --top-k, --top-p)."
        ),
    ] = False,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="Draw only among the K most likely characters.")
    ] = None,
    top_p: Annotated[
        float | None,
        typer.Option(
            "--top-p",
            help="Draw only among the most likely characters that hold P of the probability, 0 < P <= 1.",
        ),
    ] = None,
    prime: Annotated[
        str | None,
        typer.Option(
            "--prime",
            "-p",
            help="Text the model reads first; printed first (dimmed on a terminal).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            help="Same seed, checkpoint and device: same text. [default: random, shown on stderr]",
        ),
    ] = None,
    num_samples: Annotated[
        int | None,
        typer.Option(
            "--num-samples",
            help=_help(
                "Samples made together as one batch (sample i uses seed + i), printed one after another with a line '---' between them.",
                SampleConfig,
                "num_samples",
            ),
        ),
    ] = None,
    stop: Annotated[
        str | None,
        typer.Option(
            "--stop",
            help="End a sample where this text appears; the stop text itself is not printed. A blank line in bash: --stop $'\\n\\n'",
        ),
    ] = None,
    unknown: Annotated[
        UnknownChars | None,
        typer.Option(
            "--unknown",
            help=_help(
                "Prime characters the model never saw: error, or skip them with a note.",
                SampleConfig,
                "unknown",
            ),
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help=_help(DEVICE_HELP, SampleConfig, "device"))
    ] = None,
    precision: Annotated[
        SamplePrecision | None,
        typer.Option(
            help=_help(
                f"Weights for CPU sampling; auto: fp16 for models over {AUTO_FP16_BYTES / 2**20:g} MB, where it is faster.",
                SampleConfig,
                "precision",
            ),
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object per sample and line: text, prime, seed, logprob (natural log under the plain softmax), chars, stopped.",
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No status lines on stderr.")
    ] = False,
) -> None:
    """Generate text from a trained model, streamed to stdout as it is made."""
    from .checkpoint import load_checkpoint, resolve_checkpoint_path
    from .device import resolve_device
    from .sampling import Generation

    checkpoint = _one_checkpoint(run, checkpoint)
    config = SampleConfig(
        **_overrides(
            length=length,
            temperature=temperature,
            greedy=greedy or None,
            top_k=top_k,
            top_p=top_p,
            prime=prime,
            seed=seed,
            num_samples=num_samples,
            stop=stop,
            unknown=unknown,
            device=device,
            precision=precision,
        )
    )
    path = (
        resolve_checkpoint_path(checkpoint, on_note=None if quiet else info)
        if checkpoint
        else resources.default_checkpoint_path()
    )
    loaded = load_checkpoint(path, resolve_device(config.device))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generation = Generation(loaded.model, loaded.vocab, config)
    for warning in caught:
        warn(str(warning.message))
    description = f"{loaded.model_config.shape}, {generation.precision} weights"
    if not quiet:
        info(sample_status(path, description, str(generation.device), generation.seeds))
    writer = SampleWriter(sys.stdout, generation.prime, as_json=as_json)
    started = time.perf_counter()
    try:
        writer.start()
        for piece in generation:
            writer.piece(piece)
        writer.finish(generation.samples)
    except BrokenPipeError:
        _silence_stdout()  # a reader such as `head` has all it wants
        return
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if not quiet:
        chars = sum(sample.chars for sample in generation.samples)
        seconds = time.perf_counter() - started
        info(f"{chars:,} characters in {seconds:.2f} s ({chars / max(seconds, 1e-9):,.0f} chars/s)")


def _one_checkpoint(positional: Path | None, option: Path | None) -> Path | None:
    """The checkpoint named either way (`charrnn sample runs/x`, the char-rnn habit, or -c)."""
    if positional is not None and option is not None and positional != option:
        raise ConfigError(f"two checkpoints given ({positional} and -c {option}); give one")
    return positional or option


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail on a closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _read_score_input(file: str | None) -> str:
    """The text to score, from FILE or from stdin ('-', or no FILE while stdin is piped)."""
    from .data import decode_text

    if file is None or file == "-":
        if file is None and sys.stdin.isatty():
            raise ConfigError(
                "no text to score: give a FILE, or pipe text in (echo 'To be' | charrnn score); "
                "'-' reads stdin"
            )
        return decode_text(sys.stdin.buffer.read(), "stdin")
    path = Path(file)
    if path.is_dir():
        if (path / "best.pt").is_file() or (path / "last.pt").is_file():
            raise ConfigError(
                f"{file} is a run directory, not text to score; "
                f"to score with its model: charrnn score TEXT_FILE -c {file}"
            )
        raise DataError(f"{file} is a directory; give a text file")
    if path.suffix == ".pt":
        raise ConfigError(
            f"{file} looks like a checkpoint, not text to score; "
            f"to score with it: charrnn score TEXT_FILE -c {file}"
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"file not found: {file}") from None
    except OSError as problem:
        raise DataError(f"cannot read {file}: {problem.strerror}") from None
    return decode_text(data, file)


@app.command("score")
@friendly_errors
def score_command(
    file: Annotated[
        str | None,
        typer.Argument(
            metavar="FILE|-",
            show_default=False,
            help="UTF-8 text to score; '-', or nothing while text is piped in, reads stdin.",
        ),
    ] = None,
    checkpoint: CheckpointOption = None,
    device: Annotated[str, typer.Option(help=DEVICE_HELP)] = "auto",
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size",
            help=f"Lines scored together in one padded batch (longest first). [default: {CPU_BATCH_SIZE} on a CPU, {GPU_BATCH_SIZE} on a GPU]",
        ),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            help="Text the model reads before each line (before the text with --whole); the first character is predicted after it. [default: a newline] Two newlines in bash: --context $'\\n\\n'",
        ),
    ] = None,
    whole: Annotated[
        bool, typer.Option("--whole", help="Score the input as one text instead of line by line.")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Characters the model never saw are an error, instead of skipped and counted as unknown.",
        ),
    ] = False,
    sort: Annotated[
        bool,
        typer.Option(
            "--sort",
            help="Rank lines by bits per character, most probable (fewest bits) first; each keeps its line number. Waits for every line to be scored before writing any.",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='One JSON object per line (line, text, chars, unknown, logprob, log10prob, bits_per_char, perplexity; null where nothing was scored), then one with "total": true and the same figures.',
        ),
    ] = False,
    heatmap: Annotated[
        bool,
        typer.Option(
            "--heatmap",
            help="Also draw the text on stderr, each character coloured by its surprisal in bits, with a legend (in colour where stderr is a terminal); stdout is unchanged.",
        ),
    ] = False,
    precision: Annotated[
        Precision | None,
        typer.Option(
            help=_help("auto: bf16 autocast on CUDA, fp32 elsewhere.", ScoreConfig, "precision"),
        ),
    ] = None,
    streams: Annotated[
        int | None,
        typer.Option(
            help=f"With --whole: score the text as N segments side by side, each after reading the {_default(ScoreConfig, 'warmup')} characters before it. Faster but approximate. [default: 1, exact]"
        ),
    ] = None,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="No notes on stderr: no total, warning or progress."),
    ] = False,
) -> None:
    """Score text: how probable it is under the model, in bits per character and perplexity.

    Each line is scored on its own: the model reads --context (a newline), then predicts every
    character of the line and its newline (a blank line is just its newline; a last line
    without one is scored without it). --whole scores the input as one text. Characters the
    model never saw are skipped, counted as unknown and left out of every figure.

    Output, on stdout: a table on a terminal (up to 2,000 lines); otherwise tab-separated rows
    under a header line (no colours; tabs and newlines in the text escaped as \\t and \\n); or
    --json. Rows and JSON objects are written as soon as they are scored, in input order, so
    `| head` answers at once; --sort and the terminal's table wait for every line. The total is
    also written to stderr. Empty input: no rows, a note on stderr, exit 0.
    """
    from .checkpoint import load_checkpoint, resolve_checkpoint_path
    from .device import resolve_device
    from .scoring import TextScore, score_line_blocks, summarize
    from .scoring import score as score_text
    from .vocab import describe_skipped

    if streams is not None and not whole:
        raise ConfigError("--streams applies to --whole only")
    config = ScoreConfig(
        **_overrides(
            context=context,
            batch_size=batch_size,
            strict=strict or None,
            precision=precision,
            streams=streams,
        )
    )
    text = _read_score_input(file)
    path = (
        resolve_checkpoint_path(checkpoint, on_note=None if quiet else info)
        if checkpoint
        else resources.default_checkpoint_path()
    )
    loaded = load_checkpoint(path, resolve_device(device))
    if not text:
        if not quiet:
            info("the input is empty: nothing to score")
        return
    # Rows go out block by block as soon as they are final, in input order; ranking them and the
    # terminal's table need every line first.
    table = not as_json and sys.stdout.isatty()
    waiting = sort or table
    writer = ScoreWriter(sys.stdout, as_json)
    heatmap_writer = HeatmapWriter() if heatmap else None
    scores: list[TextScore] = []
    try:
        with ScoreProgress(quiet) as progress:
            if whole:
                blocks = iter([[score_text(loaded, text, config, on_progress=progress)]])
            else:
                blocks = score_line_blocks(loaded, text, config, on_progress=progress)
            for block in blocks:
                first = len(scores) + 1
                scores.extend(block)
                if heatmap_writer is not None:
                    heatmap_writer.add(block)
                if not waiting:
                    writer.rows([(None if whole else n, s) for n, s in enumerate(block, first)])
        total, lines = summarize(scores), None if whole else len(scores)
        if heatmap_writer is not None:
            heatmap_writer.finish()
        if total.unknown and not quiet:
            unseen = describe_skipped(total.unknown, loaded.vocab.unknown_chars(text))
            warn(f"{unseen} (--strict makes them an error)")
        rows = [(None, scores[0])] if whole else list(enumerate(scores, 1))
        if sort:
            rows.sort(key=lambda row: (math.isnan(row[1].bits_per_char), row[1].bits_per_char))
        if table and len(rows) <= TABLE_MAX_ROWS:
            sys.stdout.write(render_for_terminal(score_table(rows, total), sys.stdout))
            sys.stdout.flush()
        else:
            if waiting:
                writer.rows(rows)
            writer.finish(total)
    except BrokenPipeError:
        _silence_stdout()  # a reader such as `head` has all it wants
        return
    if not quiet:
        info(score_summary(total, lines))


def main() -> None:
    """Entry point for the console script and `python -m charrnn`."""
    try:
        app()
    except BrokenPipeError:
        # A reader such as `head` closed the pipe: not an error for us.
        sys.stderr.close()
        sys.exit(0)
