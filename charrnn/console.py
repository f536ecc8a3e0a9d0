"""Rich rendering shared by the commands. Everything here goes to stderr; stdout is for data."""

from __future__ import annotations

import math
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from .train import EvalReport, Event, StepReport, TrainResult, TrainStart

err_console = Console(stderr=True, highlight=False)

LN2 = math.log(2)


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_loss(loss: float | None) -> str:
    return "-" if loss is None else f"{loss:.4f}"


def error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}")


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}")


def info(message: str) -> None:
    err_console.print(escape(message))


class TrainDisplay:
    """Shows training: a live bar on a terminal, plain log lines otherwise, nothing if quiet."""

    def __init__(self, quiet: bool = False, console: Console = err_console, log_interval_s: float = 10.0):
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self.log_interval_s = log_interval_s
        self.last_log = 0.0
        self.progress: Progress | None = None
        self.task = None

    def __enter__(self) -> TrainDisplay:
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(bar_width=None),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                console=self.console,
                transient=False,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        if isinstance(event, TrainStart):
            self._start(event)
        elif isinstance(event, StepReport):
            self._step(event)
        elif isinstance(event, EvalReport):
            self._eval(event)

    def _start(self, event: TrainStart) -> None:
        resumed = f", resuming at step {event.start_step}" if event.start_step else ""
        self.console.print(
            f"training on [bold]{event.device}[/] ({event.precision}): "
            f"{event.num_parameters:,} parameters, vocabulary {event.vocab_size}, "
            f"{event.train_chars:,} train / {event.val_chars:,} validation chars{resumed}",
            soft_wrap=True,
        )
        if self.progress is not None:
            self.task = self.progress.add_task("train", total=event.max_steps, completed=event.start_step, stats="")

    def _step(self, event: StepReport) -> None:
        stats = (
            f"loss {event.train_loss:.4f}  val {format_loss(event.last_val_loss)}  "
            f"best {format_loss(event.best_val_loss)}  {event.chars_per_second:,.0f} chars/s  "
            f"{format_duration(event.elapsed_s)} elapsed  ETA {format_duration(event.eta_s)}"
        )
        if self.progress is not None:
            self.progress.update(self.task, completed=event.step, stats=stats)
            return
        now = time.monotonic()
        if now - self.last_log >= self.log_interval_s:
            self.last_log = now
            self.console.print(f"step {event.step}/{event.max_steps}  {stats}", soft_wrap=True)

    def _eval(self, event: EvalReport) -> None:
        marker = "  [green]new best[/]" if event.improved else ""
        self.console.print(
            f"step {event.step}: val loss {event.val_loss:.4f} "
            f"({event.val_loss / LN2:.3f} bits/char){marker}",
            soft_wrap=True,
        )
        if event.sample:
            self.console.print(f"[dim]{escape(event.sample.strip())}[/]", soft_wrap=True)


def train_summary(result: TrainResult, resume_hint: str) -> str:
    """The one-line (plus hint) summary printed at the end of a run, as Rich markup."""
    out: Path = result.out_dir
    if result.best_val_loss is None:
        best = "no evaluation yet"
    else:
        best = (
            f"best val loss {result.best_val_loss:.4f} nats "
            f"({result.best_val_loss / LN2:.4f} bits) per char"
        )
    reason = {
        "max_steps": "reached --max-steps",
        "max_time": "reached --max-time",
        "patience": "no improvement for --patience evaluations",
        "interrupted": "interrupted",
    }[result.stop_reason]
    line = (
        f"done at step {result.step} ({reason}) in {format_duration(result.elapsed_s)}, "
        f"{result.chars_per_second:,.0f} chars/s: {best}; checkpoints in {out}/"
    )
    if result.stop_reason == "interrupted":
        return escape(line) + f"\nresume with: [bold]{escape(resume_hint)}[/]"
    return escape(line) + f"\nsample with: [bold]charrnn sample -c {escape(str(out))}[/]"
