"""What `charrnn score --top N` writes on stdout: for each position of the text, the character,
its probability and rank, and the N characters the model expected, as a table (a terminal),
tab-separated rows (piped) or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from .output import CONTROL_PICTURES, tsv_cell

if TYPE_CHECKING:  # only for annotations: importing it would import torch
    from .next_chars import Expectation

# A character on its own must be seen: a space, a newline, a tab as visible marks.
_SHOWN = CONTROL_PICTURES | {ord(" "): 0x2423, ord("\n"): 0x21B5}


def shown_char(char: str) -> str:
    return char.translate(_SHOWN)


def top_json(row: Expectation) -> str:
    record = {
        "position": row.position,
        "char": row.char,
        "prob": row.prob,
        "rank": row.rank,
        "top": [{"char": char, "prob": prob} for char, prob in row.top],
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def top_tsv_header(count: int) -> str:
    pairs = [f"next{i}\tp{i}" for i in range(1, count + 1)]
    return "\t".join(("position", "char", "prob", "rank", *pairs)) + "\n"


def top_tsv(row: Expectation) -> str:
    cells = [
        str(row.position),
        tsv_cell(row.char),
        "-" if row.prob is None else f"{row.prob:.6f}",
        "-" if row.rank is None else str(row.rank),
    ]
    for char, prob in row.top:
        cells += [tsv_cell(char), f"{prob:.6f}"]
    return "\t".join(cells) + "\n"


def top_table(rows: Sequence[Expectation], count: int) -> Table:
    """One row per position; in the expected characters, the one that came is highlighted."""
    table = Table(header_style="bold", expand=False)
    right = {"justify": "right", "no_wrap": True}
    table.add_column("#", **right)
    table.add_column("char", no_wrap=True)
    table.add_column("p", **right)
    table.add_column("rank", **right)
    table.add_column(f"expected (top {count})", no_wrap=True, overflow="ellipsis")
    for row in rows:
        expected = Text()
        for index, (char, prob) in enumerate(row.top):
            style = "bold green" if char == row.char else ""
            expected.append(("  " if index else "") + f"{shown_char(char)} {prob:.3f}", style=style)
        unknown = row.prob is None
        table.add_row(
            str(row.position),
            Text(shown_char(row.char), style="bold magenta" if unknown else ""),
            "unknown" if unknown else f"{row.prob:.3f}",
            "-" if row.rank is None else str(row.rank),
            expected,
        )
    return table
