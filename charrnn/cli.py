"""The `charrnn` command: a thin Typer layer that parses options, calls the library, renders."""

from __future__ import annotations

import dataclasses
import functools
import signal
import sys
from pathlib import Path
from collections.abc import Callable
from typing import Annotated, Any

import typer

from . import resources
from .checkpoint import load_checkpoint, resolve_checkpoint_path
from .config import ModelConfig, TrainConfig
from .console import LN2, TrainDisplay, err_console, error, format_duration, info, train_summary
from .data import read_corpus
from .errors import CharRNNError, ConfigError
from .train import train as run_training

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
    return f"{text} [default: {_default(cls, name)}]"


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
        err_console.print("\n[yellow]interrupt: saving last.pt after this step (Ctrl-C again to abort)[/]")

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
        typer.Argument(help="UTF-8 text files or directories. Default: the shipped Shakespeare corpus."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory. [default: runs/<corpus-name>]")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue a run exactly from its last.pt (or run directory).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a run already in --out.")] = False,
    model: Annotated[str | None, typer.Option("--model", help=_help("Recurrent cell: lstm, gru or rnn.", ModelConfig, "cell"))] = None,
    layers: Annotated[int | None, typer.Option(help=_help("Stacked recurrent layers.", ModelConfig, "num_layers"))] = None,
    hidden: Annotated[int | None, typer.Option(help=_help("Hidden units per layer.", ModelConfig, "hidden_size"))] = None,
    embedding: Annotated[int | None, typer.Option(help=_help("Character embedding size.", ModelConfig, "embedding_size"))] = None,
    dropout: Annotated[float | None, typer.Option(help=_help("Dropout on embeddings, between layers and on outputs.", ModelConfig, "dropout"))] = None,
    seq_len: Annotated[int | None, typer.Option(help=_help("Characters per BPTT window.", TrainConfig, "seq_len"))] = None,
    batch_size: Annotated[int | None, typer.Option(help=_help("Windows per step.", TrainConfig, "batch_size"))] = None,
    windows: Annotated[str | None, typer.Option(help=_help("stateful (state carried across windows) or random.", TrainConfig, "windows"))] = None,
    lr: Annotated[float | None, typer.Option(help=_help("Peak learning rate (AdamW, warmup then cosine).", TrainConfig, "lr"))] = None,
    warmup: Annotated[int | None, typer.Option(help=_help("Warmup steps.", TrainConfig, "warmup_steps"))] = None,
    weight_decay: Annotated[float | None, typer.Option(help=_help("AdamW weight decay on matrices.", TrainConfig, "weight_decay"))] = None,
    grad_clip: Annotated[float | None, typer.Option(help=_help("Gradient norm clip.", TrainConfig, "grad_clip"))] = None,
    max_steps: Annotated[int | None, typer.Option(help=_help("Stop after this many steps.", TrainConfig, "max_steps"))] = None,
    max_time: Annotated[float | None, typer.Option(help="Stop after this many seconds (the LR schedule fits it).")] = None,
    patience: Annotated[int | None, typer.Option(help="Stop after N evaluations without a new best val loss.")] = None,
    eval_every: Annotated[int | None, typer.Option(help=_help("Evaluate on the whole validation set every N steps.", TrainConfig, "eval_every"))] = None,
    val_fraction: Annotated[float | None, typer.Option(help=_help("Last fraction of the text held out for validation.", TrainConfig, "val_fraction"))] = None,
    sample_chars: Annotated[int | None, typer.Option(help=_help("Characters of sample shown at each evaluation (0: none).", TrainConfig, "sample_chars"))] = None,
    seed: Annotated[int | None, typer.Option(help=_help("Random seed.", TrainConfig, "seed"))] = None,
    device: Annotated[str | None, typer.Option(help=_help("auto, cpu, cuda or mps.", TrainConfig, "device"))] = None,
    precision: Annotated[str | None, typer.Option(help=_help("auto (bf16 on CUDA), fp32 or bf16.", TrainConfig, "precision"))] = None,
    compile: Annotated[bool | None, typer.Option("--compile/--no-compile", help="torch.compile the model.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the final summary.")] = False,
) -> None:
    """Train a character-level language model on UTF-8 text."""
    train_options = _overrides(
        seq_len=seq_len, batch_size=batch_size, windows=windows, lr=lr, warmup_steps=warmup,
        weight_decay=weight_decay, grad_clip=grad_clip, max_steps=max_steps, max_time=max_time,
        patience=patience, eval_every=eval_every, val_fraction=val_fraction,
        sample_chars=sample_chars, seed=seed, device=device, precision=precision, compile=compile,
    )
    model_options = _overrides(cell=model, num_layers=layers, hidden_size=hidden, embedding_size=embedding, dropout=dropout)

    checkpoint = None
    if resume is not None:
        checkpoint = load_checkpoint(resolve_checkpoint_path(resume, "last.pt"))
        if model_options:
            raise ConfigError("the model's shape cannot change on --resume; drop " + ", ".join(sorted(model_options)))
        fixed = {"seq_len", "batch_size", "windows", "val_fraction", "seed"} & train_options.keys()
        if fixed:
            raise ConfigError("these options cannot change on --resume: " + ", ".join(sorted(fixed)))
        base = checkpoint.train_config or TrainConfig()
        config = dataclasses.replace(base, **train_options)
        sources = corpus or [Path(p) for p in checkpoint.info.get("corpus", [])]
        out_dir = out or checkpoint.path.parent
    else:
        config = TrainConfig(**train_options)
        if not corpus:
            corpus = [resources.default_corpus_path()]
            info(f"no corpus given: training on the shipped Shakespeare corpus ({corpus[0]})")
        sources = corpus
        out_dir = out
    text = read_corpus(sources)
    out_dir = out_dir or Path("runs") / text.name
    model_config = ModelConfig(vocab_size=1, **model_options)

    resume_hint = f"charrnn train {' '.join(map(str, sources))} --resume {out_dir / 'last.pt'}"
    with GracefulInterrupt() as interrupt, TrainDisplay(quiet=quiet) as display:
        result = run_training(
            text, model_config, config, out_dir, resume=checkpoint, on_event=display,
            should_stop=interrupt, overwrite=force,
        )
    err_console.print(train_summary(result, resume_hint), soft_wrap=True)
    if result.stop_reason == "interrupted":
        raise typer.Exit(130)


@app.command("info")
@friendly_errors
def info_command(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint file or run directory (its best.pt).")],
) -> None:
    """Describe a checkpoint: model, sizes, training and corpus."""
    loaded = load_checkpoint(checkpoint)
    model_config, details = loaded.model_config, loaded.info
    best = details.get("best_val_loss")
    rows = [
        ("file", str(loaded.path)),
        ("model", f"{model_config.cell.upper()}, {model_config.num_layers} layers x {model_config.hidden_size} hidden, embedding {model_config.embedding_size}, dropout {model_config.dropout}"),
        ("parameters", f"{loaded.model.num_parameters():,}"),
        ("vocabulary", f"{len(loaded.vocab)} characters"),
        ("steps trained", f"{details.get('step', '?')}"),
        ("training time", format_duration(details.get("elapsed_s"))),
        ("best val loss", "-" if best is None else f"{best:.4f} nats ({best / LN2:.4f} bits) per char"),
        ("corpus", ", ".join(details.get("corpus", [])) or "?"),
        ("corpus size", f"{details.get('corpus_chars', 0):,} chars, sha256 {details.get('corpus_sha256', '?')[:16]}"),
        ("device", f"{details.get('device', '?')} ({details.get('precision', '?')})"),
        ("resumable", "yes" if loaded.training_state else "no (weights only)"),
    ]
    if loaded.train_config is not None:
        options = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(loaded.train_config).items())
        rows.append(("training options", options))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name:<{width}}  {value}")


def main() -> None:
    """Entry point for the console script and `python -m charrnn`."""
    try:
        app()
    except BrokenPipeError:
        # A reader such as `head` closed the pipe: not an error for us.
        sys.stderr.close()
        sys.exit(0)
