"""The `charrnn` command: a thin Typer layer that parses options, calls the library, renders."""

from __future__ import annotations

import dataclasses
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

import torch
import typer

from . import resources
from .checkpoint import load_checkpoint, resolve_checkpoint_path
from .config import (
    CPU_MULTITHREAD_MODEL,
    DEVICE_DEFAULTS,
    ModelConfig,
    SampleConfig,
    TrainConfig,
    build_configs,
    resume_config,
)
from .console import (
    LN2,
    TABLE_MAX_ROWS,
    HeatmapWriter,
    SampleWriter,
    ScoreProgress,
    ScoreWriter,
    TrainDisplay,
    err_console,
    error,
    format_duration,
    info,
    render_for_terminal,
    sample_status,
    score_summary,
    score_table,
    train_summary,
    warn,
)
from .data import decode_text, read_corpus
from .device import resolve_device
from .errors import CharRNNError, ConfigError, DataError
from .sampling import Generation
from .score import (
    CPU_BATCH_SIZE,
    GPU_BATCH_SIZE,
    ScoreConfig,
    TextScore,
    score_line_blocks,
    summarize,
)
from .score import score as score_text
from .train import train as run_training
from .vocab import describe_chars

app = typer.Typer(
    name="charrnn",
    help="Character-level RNN language models: train, sample and score text.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


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
    """First Ctrl-C asks the loop to stop after the current step (and save); a second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: Any = None

    def __enter__(self) -> GracefulInterrupt:
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        err_console.print(
            "\n[yellow]interrupt: saving last.pt after this step (Ctrl-C again to abort)[/]"
        )

    def __call__(self) -> bool:
        return self.requested


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


def _overrides(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


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
        str | None,
        typer.Option(
            "--model", help=_help("Recurrent cell: lstm, gru or rnn.", ModelConfig, "cell")
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
        str | None,
        typer.Option(
            help=_help("stateful (state carried across windows) or random.", TrainConfig, "windows")
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
        float | None, typer.Option(help="Stop after this many seconds (the LR schedule fits it).")
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
        str | None, typer.Option(help=_help("auto, cpu, cuda or mps.", TrainConfig, "device"))
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(help=_help("auto (bf16 on CUDA), fp32 or bf16.", TrainConfig, "precision")),
    ] = None,
    compile: Annotated[
        bool | None, typer.Option("--compile/--no-compile", help="torch.compile the model.")
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
    # Check every option before touching files, so a usage error is reported as one (exit 2).
    model_config = ModelConfig(vocab_size=1, **model_options)
    TrainConfig(**train_options)

    checkpoint = None
    if resume is not None:
        checkpoint = load_checkpoint(resolve_checkpoint_path(resume, "last.pt"))
        config = resume_config(checkpoint.train_config, model_options, train_options)
        sources = corpus or [Path(p) for p in checkpoint.info.get("corpus", [])]
        out_dir = out or checkpoint.path.parent
    else:
        device_type = resolve_device(train_options.get("device", "auto")).type
        model_config, config = build_configs(
            device_type, model_options, train_options, cpu_threads=torch.get_num_threads()
        )
        if not corpus:
            corpus = [resources.default_corpus_path()]
            info(f"no corpus given: training on the shipped Shakespeare corpus ({corpus[0]})")
        sources = corpus
        out_dir = out
    text = read_corpus(sources)
    out_dir = out_dir or Path("runs") / text.name

    resume_hint = shlex.join(
        ["charrnn", "train", *map(str, sources), "--resume", str(out_dir / "last.pt")]
    )
    with GracefulInterrupt() as interrupt, TrainDisplay(quiet=quiet) as display:
        result = run_training(
            text,
            model_config,
            config,
            out_dir,
            resume=checkpoint,
            on_event=display,
            should_stop=interrupt,
            overwrite=force,
        )
    err_console.print(train_summary(result, resume_hint), soft_wrap=True)
    if result.stop_reason == "interrupted":
        raise typer.Exit(130)


@app.command("info")
@friendly_errors
def info_command(
    checkpoint: Annotated[
        Path, typer.Argument(help="A checkpoint file or run directory (its best.pt).")
    ],
) -> None:
    """Describe a checkpoint: model, sizes, training and corpus."""
    loaded = load_checkpoint(checkpoint)
    model_config, details = loaded.model_config, loaded.info
    best = details.get("best_val_loss")
    rows = [
        ("file", str(loaded.path)),
        (
            "model",
            f"{model_config.cell.upper()}, {model_config.num_layers} layers x {model_config.hidden_size} hidden, embedding {model_config.embedding_size}, dropout {model_config.dropout}",
        ),
        ("parameters", f"{loaded.model.num_parameters():,}"),
        ("vocabulary", f"{len(loaded.vocab)} characters"),
        ("steps trained", f"{details.get('step', '?')}"),
        ("training time", format_duration(details.get("elapsed_s"))),
        (
            "best val loss",
            "-" if best is None else f"{best:.4f} nats ({best / LN2:.4f} bits) per char",
        ),
        ("corpus", ", ".join(details.get("corpus", [])) or "?"),
        (
            "corpus size",
            f"{details.get('corpus_chars', 0):,} chars, sha256 {details.get('corpus_sha256', '?')[:16]}",
        ),
        ("device", f"{details.get('device', '?')} ({details.get('precision', '?')})"),
        ("resumable", "yes" if loaded.training_state else "no (weights only)"),
    ]
    if loaded.train_config is not None:
        options = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(loaded.train_config).items())
        rows.append(("training options", options))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name:<{width}}  {value}")


@app.command("sample")
@friendly_errors
def sample_command(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            "-c",
            help="A checkpoint file or run directory (its best.pt). [default: the shipped model]",
        ),
    ] = None,
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
        str | None,
        typer.Option(
            "--unknown",
            help=_help(
                "Prime characters the model never saw: error, or skip them with a warning.",
                SampleConfig,
                "unknown",
            ),
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help=_help("auto, cpu, cuda or mps.", SampleConfig, "device"))
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help=_help(
                "Weights for CPU sampling: auto (fp16 for models over 4 MB, where it is faster), fp32, fp16 or int8.",
                SampleConfig,
                "precision",
            )
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
        resolve_checkpoint_path(checkpoint) if checkpoint else resources.default_checkpoint_path()
    )
    loaded = load_checkpoint(path, resolve_device(config.device))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        generation = Generation(loaded.model, loaded.vocab, config)
    for warning in caught:
        warn(str(warning.message))
    model_config = loaded.model_config
    description = (
        f"{model_config.cell.upper()} {model_config.num_layers}x{model_config.hidden_size}"
        f", {generation.precision} weights"
    )
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


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail on a closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _read_score_input(file: str | None) -> str:
    """The text to score, from FILE or from stdin ('-', or no FILE while stdin is piped)."""
    if file is None or file == "-":
        if file is None and sys.stdin.isatty():
            raise ConfigError(
                "no text to score: give a FILE, or pipe text in (echo 'To be' | charrnn score); "
                "'-' reads stdin"
            )
        return decode_text(sys.stdin.buffer.read(), "stdin")
    path = Path(file)
    if path.is_dir():
        raise DataError(f"{file} is a directory; give a text file")
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
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            "-c",
            help="A checkpoint file or run directory (its best.pt). [default: the shipped model]",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
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
        str | None,
        typer.Option(
            help=_help(
                "fp32, or bf16 autocast on CUDA (auto: bf16 on CUDA).", ScoreConfig, "precision"
            )
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
        resolve_checkpoint_path(checkpoint) if checkpoint else resources.default_checkpoint_path()
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
            unseen = describe_chars(loaded.vocab.unknown_chars(text))
            warn(
                f"{total.unknown:,} character(s) the model never saw were skipped: {unseen} "
                "(--strict makes them an error)"
            )
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
