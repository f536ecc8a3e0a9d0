"""Export a checkpoint for shipping: weights in float16, no optimizer or RNG state.

Usage: python scripts/export_model.py runs/NAME/best.pt checkpoints/shakespeare.pt
"""

from __future__ import annotations

import sys
from pathlib import Path

from charrnn.checkpoint import load_checkpoint, save_checkpoint


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    checkpoint = load_checkpoint(source)
    save_checkpoint(
        target,
        checkpoint.model,
        checkpoint.vocab,
        checkpoint.train_config,
        checkpoint.info,
        half=True,
    )
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB) from {source}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
