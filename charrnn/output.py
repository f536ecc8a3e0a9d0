"""What programs read, on stdout: generated text and score rows (table, tab-separated, JSON).

People's messages, progress and the heatmap go to stderr through `console`.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from .text import format_duration, nats_and_bits, plural

if TYPE_CHECKING:  # only for annotations: importing them would import torch, slowing --help
    from .checkpoint import Checkpoint
    from .sampling import Piece, Sample
    from .scoring import ScoredText, ScoreSummary


# -- charrnn sample ---------------------------------------------------------------------------

SAMPLE_SEPARATOR = "---"  # the line between samples on stdout (plain output only)


def styled_output(stream: TextIO) -> bool:
    """ANSI styles only on a terminal, and never with NO_COLOR set or TERM=dumb."""
    isatty = getattr(stream, "isatty", None)
    return (
        bool(isatty and isatty())
        and "NO_COLOR" not in os.environ
        and (os.environ.get("TERM") != "dumb")
    )


class SampleWriter:
    """Writes samples to stdout as data. Plain: each sample is its prime (dimmed on a terminal)
    then its text; the first streams as it is generated, the others (made in the same batch)
    follow whole, each after a line holding only `---` (a newline is added first when the previous
    sample does not end with one). JSON: one object per sample and line, no separator. A sample
    is written as soon as it and every sample before it have ended, so --stop's early finishers
    need not wait for the whole batch."""

    def __init__(
        self,
        stream: TextIO,
        prime: str,
        as_json: bool = False,
        annotate: Callable[[Sample], dict[str, Any]] | None = None,
    ):
        self.stream, self.prime, self.as_json = stream, prime, as_json
        self.annotate = annotate  # more fields for a sample's JSON object
        self.styled = styled_output(stream)
        self.last_char = ""
        self.written = 0  # samples written, in order
        self.waiting: dict[int, Sample] = {}  # ended, but after one still running

    def _write(self, text: str, dim: bool = False) -> None:
        if text:
            self.stream.write(f"\x1b[2m{text}\x1b[22m" if dim and self.styled else text)
            self.stream.flush()
            self.last_char = text[-1]

    def start(self) -> None:
        if not self.as_json:
            self._write(self.prime, dim=True)

    def piece(self, piece: Piece) -> None:
        """Stream the first sample; write each other one when it and those before have ended."""
        if piece.sample == 0 and not self.as_json:
            self._write(piece.text)
        if piece.finished is not None:
            self.waiting[piece.sample] = piece.finished
            while self.written in self.waiting:
                self._write_sample(self.waiting.pop(self.written))

    def finish(self, samples: Sequence[Sample] = ()) -> None:
        """Write the samples not written yet, in order (those of `samples` the pieces did not
        already bring)."""
        for sample in samples[self.written :]:
            self._write_sample(sample)
        if self.styled and not self.as_json and self.last_char not in ("", "\n"):
            self._write("\n")  # leave the shell prompt on its own line; never when piped

    def _write_sample(self, sample: Sample) -> None:
        index, self.written = self.written, self.written + 1
        if self.as_json:
            record = sample_record(sample)
            if self.annotate is not None:
                record.update(self.annotate(sample))
            self._write(json.dumps(record, ensure_ascii=False) + "\n")
        elif index > 0:  # the first one was streamed piece by piece
            self._write(("" if self.last_char in ("", "\n") else "\n") + SAMPLE_SEPARATOR + "\n")
            self._write(self.prime, dim=True)
            self._write(sample.text)


def sample_record(sample: Sample) -> dict[str, Any]:
    """A finished sample as `--json` writes it (and the HTTP API returns it)."""
    return {
        "text": sample.text,
        "prime": sample.prime,
        "seed": sample.seed,
        "logprob": sample.logprob,
        "chars": sample.chars,
        "stopped": sample.stopped,
    }


# -- charrnn score: rows (table, tab-separated, JSON) --

# A scored row: its 1-based line number, or None for the whole text (--whole).
ScoreRow = tuple["int | None", "ScoredText"]

SCORE_FIELDS = ("chars", "unknown", "logprob", "log10prob", "bits_per_char", "perplexity")
TABLE_MAX_ROWS = 2_000  # Rich lays out about 1,000 rows a second; past this, plain rows
SURPRISAL_EDGES = (1.0, 2.0, 4.0, 6.0, 8.0)  # bits; a character at an edge takes the next colour
# Green (expected) to red (a surprise), one more than the edges. Named ANSI colours, so that
# they stay distinct on a 16-colour terminal too (hex colours there collapse into each other).
SURPRISAL_STYLES = (
    "black on green",
    "black on bright_green",
    "black on bright_yellow",
    "black on yellow",
    "black on bright_red",
    "bold bright_white on red",
)
UNKNOWN_STYLE = "bold bright_white on magenta"  # outside the vocabulary: no probability at all
NEWLINE_MARK = "\u21b5"  # the newline is scored too, so it gets a visible, coloured mark

# Control characters shown as their Unicode pictures (ESC as U+241B), so that user text can
# neither drive the terminal nor break a row; the heatmap keeps tabs and newlines as layout.
CONTROL_PICTURES = {code: 0x2400 + code for code in range(32)} | {0x7F: 0x2421}


def shown_text(row: ScoreRow) -> str:
    """A row's text as reported: a line without its final newline (which is still scored)."""
    number, scored = row
    return scored.text if number is None else scored.text.removesuffix("\n")


def surprisal_style(bits: float) -> str:
    if math.isnan(bits):
        return UNKNOWN_STYLE
    return SURPRISAL_STYLES[bisect.bisect_right(SURPRISAL_EDGES, bits)]


def format_number(value: float, digits: int = 4) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


# A tab-separated row is one line of cells: the text's own tabs, newlines, backslashes and other
# control characters (ESC would reach a terminal through `cat`) are written as escapes.
_TSV_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(32), 0x7F)} | {
    ord("\\"): "\\\\",
    ord("\t"): "\\t",
    ord("\r"): "\\r",
    ord("\n"): "\\n",
}


def tsv_cell(text: str) -> str:
    """Text as one tab-separated cell: tabs, newlines and control characters escaped."""
    return text.translate(_TSV_ESCAPES)


TSV_HEADER = "\t".join(("line", *SCORE_FIELDS, "text")) + "\n"


def score_tsv_row(row: ScoreRow) -> str:
    """One tab-separated row: no colour; tabs and newlines escaped."""
    number, scored = row
    cells = [
        "-" if number is None else str(number),
        str(scored.chars),
        str(scored.unknown),
        format_number(scored.logprob),
        format_number(scored.log10prob),
        format_number(scored.bits_per_char),
        format_number(scored.perplexity),
        shown_text(row).translate(_TSV_ESCAPES),
    ]
    return "\t".join(cells) + "\n"


def score_tsv(rows: Iterable[ScoreRow]) -> Iterator[str]:
    """Tab-separated rows after a header, for pipes."""
    yield TSV_HEADER
    for row in rows:
        yield score_tsv_row(row)


def _json_figures(summary: ScoreSummary) -> dict[str, float | int | None]:
    # NaN (nothing scored, or weights gone NaN) and infinities are not JSON: null.
    return {
        name: None if isinstance(value, float) and not math.isfinite(value) else value
        for name, value in summary.figures().items()
    }


def score_record(row: ScoreRow) -> dict[str, Any]:
    """A row as `--json` writes it (and the HTTP API returns it): NaN and infinities as None."""
    number, scored = row
    return {"line": number, "text": shown_text(row), **_json_figures(scored)}


def score_total_record(total: ScoreSummary, rows: int) -> dict[str, Any]:
    """The total as `--json` writes it last, with "total": true."""
    return {"total": True, "lines": rows, **_json_figures(total)}


def score_json_row(row: ScoreRow) -> str:
    return json.dumps(score_record(row), ensure_ascii=False, allow_nan=False) + "\n"


def score_json_total(total: ScoreSummary, rows: int) -> str:
    return json.dumps(score_total_record(total, rows), ensure_ascii=False, allow_nan=False) + "\n"


def score_json(rows: Sequence[ScoreRow], total: ScoreSummary) -> Iterator[str]:
    """One JSON object per row, then the total with "total": true."""
    for row in rows:
        yield score_json_row(row)
    yield score_json_total(total, len(rows))


class ScoreWriter:
    """Writes score rows to `stream` as they come, tab-separated under a header or as JSON (the
    total last), and flushes after each batch of rows, so a reader such as `head` gets them now."""

    def __init__(self, stream: TextIO, as_json: bool = False):
        self.stream, self.as_json = stream, as_json
        self.rows_written = 0

    def rows(self, rows: Sequence[ScoreRow]) -> None:
        if not self.as_json and self.rows_written == 0:
            self.stream.write(TSV_HEADER)
        row_text = score_json_row if self.as_json else score_tsv_row
        self.stream.write("".join(row_text(row) for row in rows))
        self.rows_written += len(rows)
        self.stream.flush()

    def finish(self, total: ScoreSummary) -> None:
        if self.as_json:
            self.stream.write(score_json_total(total, self.rows_written))
        elif self.rows_written == 0:
            self.stream.write(TSV_HEADER)
        self.stream.flush()


def score_table(rows: Sequence[ScoreRow], total: ScoreSummary) -> Table:
    """The rows for a terminal, the total as footer; the text is cut to the width left."""
    table = Table(show_footer=True, expand=True, header_style="bold", footer_style="bold")
    right = {"justify": "right", "no_wrap": True}
    table.add_column("#", "total", **right)
    table.add_column("bits/char", format_number(total.bits_per_char, 3), **right)
    table.add_column("perplexity", format_number(total.perplexity, 2), **right)
    table.add_column("logprob", format_number(total.logprob, 2), **right)
    table.add_column("chars", f"{total.chars:,}", **right)
    table.add_column("unknown", f"{total.unknown:,}", **right)
    count = "the text" if rows and rows[0][0] is None else f"{len(rows):,} lines"
    table.add_column("text", count, no_wrap=True, overflow="ellipsis", ratio=1, min_width=10)
    for number, scored in rows:
        bits = scored.bits_per_char
        table.add_row(
            "all" if number is None else str(number),
            Text(format_number(bits, 3), style=surprisal_style(bits)),
            format_number(scored.perplexity, 2),
            format_number(scored.logprob, 2),
            f"{scored.chars:,}",
            f"{scored.unknown:,}",
            Text(shown_text((number, scored)).translate(CONTROL_PICTURES)),
        )
    return table


def render_for_terminal(renderable: RenderableType, stream: TextIO) -> str:
    """Rich output as text fitted to `stream`, a terminal; the caller writes it there."""
    console = Console(file=stream, highlight=False)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


# -- charrnn info ------------------------------------------------------------------------------


def checkpoint_rows(loaded: Checkpoint) -> list[tuple[str, str]]:
    """What `charrnn info` prints about a checkpoint, as (name, value) rows."""
    details, best = loaded.info, loaded.info.get("best_val_loss")
    rows = [
        ("file", str(loaded.path)),
        ("model", loaded.model_config.describe()),
        ("parameters", f"{loaded.model.num_parameters():,}"),
        ("vocabulary", plural(len(loaded.vocab), "character")),
        ("steps trained", f"{details.get('step', '?')}"),
        ("training time", format_duration(details.get("elapsed_s"))),
        ("best val loss", "-" if best is None else nats_and_bits(best)),
        ("corpus", ", ".join(details.get("corpus", [])) or "?"),
        (
            "corpus size",
            f"{details.get('corpus_chars', 0):,} chars, "
            f"sha256 {details.get('corpus_sha256', '?')[:16]}",
        ),
        *_lineage_rows(details.get("init_from")),
        ("device", f"{details.get('device', '?')} ({details.get('precision', '?')})"),
        ("resumable", "yes" if loaded.training_state else "no (weights only)"),
    ]
    if loaded.train_config is not None:
        options = dataclasses.asdict(loaded.train_config)
        rows.append(("training options", ", ".join(f"{k}={v}" for k, v in options.items())))
    # Corpus names and paths come from the file: a newline or ESC in one must not break a row
    # or reach the terminal.
    return [(name, value.translate(CONTROL_PICTURES)) for name, value in rows]


def _lineage_rows(lineage: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A fine-tuned model's origin: 'shakespeare (step 3584, corpus sha256 e94e05538b0baa12)'."""
    if not lineage:
        return []
    step, sha256 = lineage.get("step"), lineage.get("corpus_sha256")
    details = ["step ?" if step is None else f"step {step}"]
    if sha256 is not None:
        details.append(f"corpus sha256 {sha256[:16]}")
    return [("fine-tuned from", f"{lineage['source']} ({', '.join(details)})")]


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that after a reader such as `head` closed the pipe the
    interpreter's final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
