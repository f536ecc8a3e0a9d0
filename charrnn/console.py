"""What people watch, on stderr through Rich: messages, the training display, the heatmap, progress
and summaries. What programs read (generated text, score rows) is formatted in `output`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from .chart import sparkline
from .events import EvalReport, Event, StepReport, TrainResult, TrainStart
from .output import (
    CONTROL_PICTURES,
    NEWLINE_MARK,
    SURPRISAL_EDGES,
    SURPRISAL_STYLES,
    UNKNOWN_STYLE,
    format_number,
    surprisal_style,
)
from .text import LN2, format_duration, nats_and_bits

if TYPE_CHECKING:  # only for annotations: importing them would import torch, slowing --help
    import torch

    from .scoring import ScoreSummary, TextScore

err_console = Console(stderr=True, highlight=False)


def format_loss(loss: float | None) -> str:
    return "-" if loss is None else f"{loss:.4f}"


def error(message: str) -> None:
    # soft_wrap: one line whatever the width, never folded at 80 columns when piped.
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def info(message: str) -> None:
    err_console.print(escape(message), soft_wrap=True)


BAR = "\u2501"  # the heavy horizontal line Rich's progress bars are drawn with
MIN_BAR_WIDTH = 20  # narrower than this, the stats move to a second line under the bar
FINISHED = {
    "max_steps": "done",
    "max_time": "done",
    "patience": "stopped (patience)",
    "interrupted": "interrupted",
}


class TrainFrame:
    """The live display's frame, laid out for the width it is given: one line where everything
    fits beside a bar, else the bar with step and ETA, then the losses and speed. The elapsed
    time is the first thing dropped; step, losses, chars/s and ETA are always kept."""

    def __init__(self) -> None:
        self.start: TrainStart | None = None
        self.started_at = 0.0
        self.report: StepReport | None = None
        self.finished: str | None = None  # the stop reason, once the run has ended

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        if self.report is None:
            yield _line(self._waiting(), width)
            return
        report = self.report
        count = (
            f"step {report.step}"
            if report.limit == "max_time"
            else f"{report.step}/{report.max_steps}"
        )
        ending = (
            FINISHED[self.finished] if self.finished else f"ETA {format_duration(report.eta_s)}"
        )
        stats = [
            f"loss {report.train_loss:.4f}",
            f"val {format_loss(report.last_val_loss)}",
            f"best {format_loss(report.best_val_loss)}",
            f"{report.chars_per_second:,.0f} chars/s",
        ]
        elapsed = f"{format_duration(report.elapsed_s)} elapsed"
        fraction = 1.0 if self.finished in ("max_steps", "max_time") else report.fraction_done
        if fraction is None:
            fraction = report.step / max(1, report.max_steps)
        one_line = "  ".join([count, *stats, ending, elapsed])
        if len(one_line) + 2 + MIN_BAR_WIDTH <= width:
            yield _line(
                _bar(fraction, width - len(one_line) - 2, self.finished) + "  " + one_line, width
            )
            return
        tail = f"{count}  {ending}"
        bar_width = width - len(tail) - 2
        head = (
            _bar(fraction, bar_width, self.finished) + "  " + tail
            if bar_width >= 10
            else Text(tail)
        )
        yield _line(head, width)
        second = "  ".join([*stats, elapsed])
        yield _line(Text(second if len(second) <= width else "  ".join(stats)), width)

    def _waiting(self) -> Text:
        if self.start is None:
            return Text("preparing the run\u2026")
        waited = format_duration(time.monotonic() - self.started_at)
        return Text(f"first step (allocating memory, compiling)\u2026 {waited}")


def _bar(fraction: float, width: int, finished: str | None) -> Text:
    filled = round(width * min(1.0, max(0.0, fraction)))
    complete = "bar.finished" if finished in ("max_steps", "max_time") else "bar.complete"
    return Text.assemble((BAR * filled, complete), (BAR * (width - filled), "bar.back"))


def _line(text: Text, width: int) -> Text:
    text.no_wrap, text.overflow = True, "ellipsis"
    text.truncate(width, overflow="ellipsis")
    return text


class TrainDisplay:
    """Shows training: a live frame on a terminal, plain log lines otherwise, nothing if quiet."""

    def __init__(
        self, quiet: bool = False, console: Console = err_console, log_interval_s: float = 10.0
    ):
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self.log_interval_s = log_interval_s
        self.last_log = 0.0
        self.frame = TrainFrame()
        self.display: Live | None = None

    def __enter__(self) -> TrainDisplay:
        if self.live:
            self.display = Live(
                self.frame, console=self.console, refresh_per_second=4, transient=False
            )
            self.display.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.display is not None:
            self.display.stop()  # draws the frame once more: the last one on screen is current

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        if isinstance(event, TrainStart):
            self._start(event)
        elif isinstance(event, StepReport):
            self._step(event)
        elif isinstance(event, EvalReport):
            self._eval(event)
        elif isinstance(event, TrainResult):
            self.frame.finished = event.stop_reason

    def _start(self, event: TrainStart) -> None:
        resumed = f", resuming at step {event.start_step}" if event.start_step else ""
        averaged = ""
        if event.ema_decay:
            averaged = f"; val loss and best.pt: the weights' average (--ema {event.ema_decay})"
        self.console.print(
            f"training on [bold]{event.device}[/] ({event.precision}): "
            f"{event.num_parameters:,} parameters, vocabulary {event.vocab_size}, "
            f"{event.train_chars:,} train / {event.val_chars:,} validation chars{resumed}"
            f"{averaged}",
            soft_wrap=True,
        )
        self.frame.start, self.frame.started_at = event, time.monotonic()

    def _step(self, event: StepReport) -> None:
        self.frame.report = event
        if self.display is not None:
            return
        now = time.monotonic()
        if now - self.last_log >= self.log_interval_s:
            self.last_log = now
            stats = (
                f"loss {event.train_loss:.4f}  val {format_loss(event.last_val_loss)}  "
                f"best {format_loss(event.best_val_loss)}  "
                f"{event.chars_per_second:,.0f} chars/s  "
                f"{format_duration(event.elapsed_s)} elapsed  ETA {format_duration(event.eta_s)}"
            )
            self.console.print(f"step {event.step}/{event.max_steps}  {stats}", soft_wrap=True)

    def _eval(self, event: EvalReport) -> None:
        if self.frame.report is not None:
            # The frame shows the new val and best at once, not at the next step's report.
            self.frame.report = replace(
                self.frame.report, last_val_loss=event.val_loss, best_val_loss=event.best_val_loss
            )
        marker = "  [green]new best[/]" if event.improved else ""
        self.console.print(
            f"step {event.step}: val loss {event.val_loss:.4f} "
            f"({event.val_loss / LN2:.3f} bits/char){marker}",
            soft_wrap=True,
        )
        if event.sample:
            self.console.print(f"[dim]{escape(event.sample.strip())}[/]", soft_wrap=True)


def train_summary(result: TrainResult, resume_hint: str, val_losses: Sequence[float] = ()) -> str:
    """The summary printed at the end of a run, as Rich markup: one line, a sparkline of the
    val losses (the run's whole history, from metrics.jsonl) where there are two or more, and
    the command to resume or sample."""
    out: Path = result.out_dir
    if result.best_val_loss is None:
        best = "no evaluation yet"
    else:
        best = f"best val loss {nats_and_bits(result.best_val_loss)}"
    reason = {
        "max_steps": "reached --max-steps",
        "max_time": "reached --max-time",
        "patience": "no improvement for --patience evaluations",
        "interrupted": "interrupted",
    }[result.stop_reason]
    if result.chars_per_second:
        speed = f", {result.chars_per_second:,.0f} chars/s"
    else:  # a resumed run already at its limit (a rerun recipe) took no step here
        reason, speed = f"{reason} before: nothing left to train", ""
    line = (
        f"done at step {result.step} ({reason}) in {format_duration(result.elapsed_s)}"
        f"{speed}: {best}; checkpoints in {out}/"
    )
    if len(val_losses) >= 2:
        line += (
            f"\nval loss {sparkline(val_losses)} {val_losses[0]:.4f} -> {val_losses[-1]:.4f} "
            f"over {len(val_losses)} evaluations"
        )
    if result.stop_reason == "interrupted":
        return escape(line) + f"\nresume with: [bold]{escape(resume_hint)}[/]"
    # Name only a checkpoint that exists: the run directory means its best.pt.
    target = out if result.best_path else result.last_path
    if target is None:
        return escape(line)
    return escape(line) + f"\nsample with: [bold]charrnn sample -c {escape(str(target))}[/]"


def sample_status(path: Path | None, description: str, device: str, seeds: list[int]) -> str:
    """The stderr line that says what is being sampled (plain text; pass it through info())."""
    seed = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
    return f"sampling from {path or 'the shipped model'} ({description}) on {device}, {seed}"


def serve_status(path: Path | None, shape: str, device: str, url: str) -> str:
    """The stderr line that says what is served where (plain text; pass it through info())."""
    model = f"{path or 'the shipped model'} ({shape})"
    return f"serving {model} on {device} at {url} (API: /docs); Ctrl-C stops"


# -- charrnn score: heatmap, progress and the total on stderr --

_HEATMAP_PICTURES = {k: v for k, v in CONTROL_PICTURES.items() if chr(k) not in "\t\n"}


def surprisal_legend() -> Text:
    edges = [f"{edge:g}" for edge in SURPRISAL_EDGES]
    middle = [f"{low}-{high}" for low, high in zip(edges, edges[1:], strict=False)]
    labels = [f"<{edges[0]}", *middle, f">={edges[-1]}"]
    legend = Text("surprisal in bits (-log2 p):")
    for label, style in zip(labels, SURPRISAL_STYLES, strict=True):
        legend.append(" ")
        legend.append(f" {label} ", style=style)
    legend.append(" ")
    legend.append(" unknown ", style=UNKNOWN_STYLE)
    legend.append(f"  ({NEWLINE_MARK} marks a scored newline)")
    return legend


def surprisal_heatmap(scores: Sequence[TextScore]) -> Text:
    """The texts with each character on the colour of its surprisal; runs of a colour merged."""
    return _heatmap((scored.text, scored.surprisal_bits) for scored in scores)


def _heatmap(stretches: Iterable[tuple[str, torch.Tensor]]) -> Text:
    """Stretches of text, each with the surprisal in bits of each of its characters, coloured."""
    heatmap = Text()
    for text, surprisal in stretches:
        run: list[str] = []
        run_style = ""
        for char, bits in zip(text, surprisal.tolist(), strict=True):
            style = surprisal_style(bits)
            if style != run_style and run:
                heatmap.append("".join(run), style=run_style)
                run = []
            run_style = style
            if char == "\n":
                # The mark carries the newline's colour; the line break itself stays unstyled.
                heatmap.append("".join(run) + NEWLINE_MARK, style=run_style)
                heatmap.append("\n")
                run = []
            else:
                run.append(char.translate(_HEATMAP_PICTURES))
        if run:
            heatmap.append("".join(run), style=run_style)
    return heatmap


class HeatmapWriter:
    """Draws the heatmap on `console` (stderr) as scores come, then the legend: whole texts
    (add), or stretches of text with their log-probabilities as they are scored (piece), so
    that a long line is drawn without its values being kept."""

    def __init__(self, console: Console = err_console):
        self.console = console
        self.ends_line = True

    def add(self, scores: Sequence[TextScore]) -> None:
        self._draw(surprisal_heatmap(scores))

    def piece(self, text: str, logprobs: torch.Tensor) -> None:
        self._draw(_heatmap([(text, -logprobs / LN2)]))

    def _draw(self, heatmap: Text) -> None:
        if heatmap.plain:
            self.console.print(heatmap, end="", soft_wrap=True)
            self.ends_line = heatmap.plain.endswith("\n")

    def finish(self) -> None:
        if not self.ends_line:
            self.console.print()
        self.console.print(surprisal_legend(), soft_wrap=True)


def print_heatmap(scores: Sequence[TextScore], console: Console = err_console) -> None:
    """The heatmap and its legend, for people (stderr); coloured where that is a terminal."""
    writer = HeatmapWriter(console)
    writer.add(scores)
    writer.finish()


def score_summary(total: ScoreSummary, lines: int | None) -> str:
    """One plain line for people with the total figures (lines: None for --whole)."""
    what = "the text" if lines is None else f"{lines:,} line{'' if lines == 1 else 's'}"
    unknown = f" ({total.unknown:,} unknown, skipped)" if total.unknown else ""
    return (
        f"scored {what}: {total.chars:,} chars{unknown}, "
        f"{format_number(total.bits_per_char)} bits/char, perplexity {format_number(total.perplexity, 3)}, "
        f"logprob {format_number(total.logprob, 3)} (log10 {format_number(total.log10prob, 3)})"
    )


class ScoreProgress:
    """A transient progress bar while scoring, on a terminal only; pass it as on_progress.

    expected: the characters to score when on_progress cannot say (text read as it is scored):
    the input's size in bytes, one per character or more, so the bar never overshoots.
    """

    def __init__(
        self, quiet: bool = False, console: Console = err_console, expected: int | None = None
    ):
        self.live = console.is_terminal and not quiet
        self.console, self.expected = console, expected
        self.progress: Progress | None = None
        self.task = None

    def __enter__(self) -> ScoreProgress:
        if self.live:
            self.progress = Progress(
                TextColumn("[bold]score"),
                BarColumn(bar_width=None),
                TextColumn("{task.fields[chars]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, done: int, total: int | None) -> None:
        if self.progress is None:
            return
        chars = f"{done:,}/{total:,} chars" if total is not None else f"{done:,} chars"
        total = self.expected if total is None else total
        if self.task is None:
            self.task = self.progress.add_task("score", total=total, chars=chars)
        self.progress.update(self.task, completed=done, total=total, chars=chars)
