"""Write checkpoints/README.md, the shipped model's card, from the checkpoint itself.

Usage: python scripts/model_card.py [checkpoints/shakespeare.pt]
Every figure comes from the checkpoint's own record; the sample is generated here, unedited.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from charrnn import load_checkpoint, sample_text

REPO = Path(__file__).resolve().parents[1]
SAMPLE_SEED = 1


def card(path: Path) -> str:
    loaded = load_checkpoint(path)
    info, model, train = loaded.info, loaded.model_config, loaded.train_config
    best = info["best_val_loss"]
    sample = sample_text(loaded, length=600, temperature=0.8, seed=SAMPLE_SEED, device="cpu")
    options = " ".join(
        f"--{name.replace('_', '-')} {value}"
        for name, value in (
            ("model", model.cell),
            ("layers", model.num_layers),
            ("hidden", model.hidden_size),
            ("embedding", model.embedding_size),
            ("dropout", model.dropout),
            ("seq-len", train.seq_len),
            ("batch-size", train.batch_size),
            ("windows", train.windows),
            ("lr", train.lr),
            ("warmup", train.warmup_steps),
            ("weight-decay", train.weight_decay),
            ("max-time", train.max_time),
            ("seed", train.seed),
        )
    )
    return f"""# The shipped model: `shakespeare.pt`

`charrnn sample` and `charrnn score` use this model when no `--checkpoint` is given.

| | |
| --- | --- |
| corpus | `corpora/shakespeare.txt`, {info["corpus_chars"]:,} characters, sha256 `{info["corpus_sha256"]}` |
| split | the last {train.val_fraction:.0%} of the corpus (the end of the works, The Winter's Tale) validates |
| model | {model.describe()} |
| parameters | {loaded.model.num_parameters():,} |
| vocabulary | {len(loaded.vocab)} characters |
| training | {info["step"]:,} steps of {train.batch_size} x {train.seq_len} characters ({train.windows} windows), {info["elapsed_s"] / 60:.0f} minutes on {info["device"]} ({info["precision"]}) |
| best val loss | **{best:.4f} nats ({best / math.log(2):.4f} bits) per character**, at step {info["step"]:,} |
| file | {path.stat().st_size / 1e6:.1f} MB: weights stored in float16 (converted to float32 on load), no optimizer state |

## Recipe
```bash
bash scripts/train_default_model.sh     # charrnn train corpora/shakespeare.txt {options}
python scripts/model_card.py            # rewrites this card from the checkpoint
```
The script trains with `charrnn train` and exports `best.pt` with `scripts/export_model.py`.
It uses one CPU thread (`OMP_NUM_THREADS=1`), because this model was trained on a 2-core machine
shared with other work; on an idle machine or a GPU, set `OMP_NUM_THREADS` or pass `--device cuda`
(extra options are passed to `charrnn train`). With a fixed time budget, the figures depend on the
machine's speed: the loss above is what {info["elapsed_s"] / 60:.0f} minutes on this machine reached.

## An unedited sample
`charrnn sample --seed {SAMPLE_SEED} -n 600 --temperature 0.8`:

```
{sample.rstrip()}
```
"""


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else REPO / "checkpoints" / "shakespeare.pt"
    target = path.parent / "README.md"
    target.write_text(card(path), encoding="utf-8")
    print(f"wrote {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
