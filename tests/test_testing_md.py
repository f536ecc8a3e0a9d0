"""TESTING.md is generated from the tests: it must be what the generator writes now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_testing_md_is_up_to_date():
    done = subprocess.run(
        [sys.executable, "scripts/testing_table.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
