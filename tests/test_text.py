"""Words in user-facing messages."""

from __future__ import annotations

import pytest

from charrnn.text import plural


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 characters"), (1, "1 character"), (2, "2 characters"), (1234, "1,234 characters")],
)
def test_plural_agrees_with_the_count(count, expected):
    assert plural(count, "character") == expected


def test_plural_takes_an_irregular_plural():
    assert plural(1, "entry", "entries") == "1 entry"
    assert plural(3, "entry", "entries") == "3 entries"
