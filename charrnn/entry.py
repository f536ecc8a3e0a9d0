"""The console script's entry point, kept tiny: Ctrl-C while the CLI is still being imported
exits quietly (130) instead of printing a KeyboardInterrupt traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as run_cli
    except KeyboardInterrupt:
        sys.exit(130)
    run_cli()
