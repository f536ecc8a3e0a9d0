#!/usr/bin/env bash
# Recipe for the shipped default model, checkpoints/shakespeare.pt.
# Trains with charrnn's own `charrnn train` on the shipped corpus, then exports best.pt in
# half precision without the optimizer state. Rerun it to reproduce the model card's figures.
# Usage: bash scripts/train_default_model.sh [extra charrnn train options, e.g. --device cuda]
# A run that dies is continued, not restarted: charrnn train --resume runs/shakespeare-default
set -euo pipefail
cd "$(dirname "$0")/.."
# GRU 2x512: the short-budget sweeps (benchmarks/README.md) favour the GRU on CPU, and
# 512 units still export to about 5 MB in float16. --max-steps 3200 fits the LR schedule; on this
# 2-core machine it takes about 95 minutes (4,900 chars/s), six passes over the training text.
charrnn train corpora/shakespeare.txt --out runs/shakespeare-default --force \
  --model gru --layers 2 --hidden 512 --embedding 64 --dropout 0.1 \
  --seq-len 128 --batch-size 64 --windows stateful --lr 4e-3 --warmup 200 \
  --weight-decay 0.01 --eval-every 400 --sample-chars 0 --max-steps 3200 --threads 2 \
  --seed 1337 "$@"
python scripts/export_model.py runs/shakespeare-default/best.pt checkpoints/shakespeare.pt
python scripts/model_card.py checkpoints/shakespeare.pt
