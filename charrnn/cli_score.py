"""How `charrnn score` writes what it scores: rows as they come (tab-separated or JSON), the
terminal's table, the heatmap and the total; or, with --top, what the model expected at each
position. Thin, like cli.py: call the library, render. Torch-free at import."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .config import ScoreConfig
from .console import HeatmapWriter, ScoreProgress, info, score_summary, warn
from .errors import ConfigError
from .output import TABLE_MAX_ROWS, ScoreWriter, render_for_terminal, score_table

if TYPE_CHECKING:  # only for annotations: importing it would import torch, slowing --help
    from .score_input import TextInput


def write_scores(
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


def check_top(top: int | None, **others: object) -> None:
    """--top writes its own rows: options that shape score rows do not apply."""
    clash = [f"--{name}" for name, value in others.items() if value not in (None, False)]
    if top is not None and clash:
        raise ConfigError(
            f"--top lists what was expected at each position; {', '.join(clash)} cannot apply"
        )


def write_top(
    loaded: Any, text: TextInput, count: int, config: ScoreConfig, as_json: bool, quiet: bool
) -> None:
    """For each position of the text (read whole, after --context), the `count` characters the
    model expected: a table on a terminal (up to TABLE_MAX_ROWS positions), else rows."""
    from .next_chars import expectations
    from .output_top import top_json, top_table, top_tsv, top_tsv_header
    from .vocab import describe_chars

    whole = "".join(text)
    if not whole:
        if not quiet:
            info("the input is empty: nothing to score")
        return
    shown = min(count, len(loaded.vocab))
    rows = expectations(loaded.model, loaded.vocab, whole, count, config.context, config.strict)
    if not as_json and sys.stdout.isatty() and len(whole) <= TABLE_MAX_ROWS:
        sys.stdout.write(render_for_terminal(top_table(list(rows), shown), sys.stdout))
    else:
        if not as_json:
            sys.stdout.write(top_tsv_header(shown))
        for row in rows:
            sys.stdout.write(top_json(row) if as_json else top_tsv(row))
    sys.stdout.flush()
    unknown = loaded.vocab.unknown_chars(whole)
    if unknown and not quiet:
        warn(
            f"{describe_chars(unknown)}: never seen by the model, not read (--strict makes them an error)"
        )
