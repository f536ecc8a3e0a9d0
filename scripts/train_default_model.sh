#!/usr/bin/env bash
# Recipe for the shipped default model, checkpoints/shakespeare.pt.
# Trains with charrnn's own `charrnn train` on the shipped corpus, then exports best.pt in
# half precision without the optimizer state. Rerun it to reproduce the model card's figures.
# Usage: bash scripts/train_default_model.sh [extra charrnn train options, e.g. --device cuda]
set -euo pipefail
# One thread: on a 2-core machine shared with other work, two threads per process thrash
# (measured: 8x slower). On an idle machine or a GPU, override with OMP_NUM_THREADS.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
cd "$(dirname "$0")/.."
charrnn train corpora/shakespeare.txt --out runs/shakespeare-default --force \
  --model lstm --layers 2 --hidden 384 --embedding 64 --dropout 0.1 \
  --seq-len 128 --batch-size 32 --windows stateful --lr 3e-3 --warmup 200 \
  --weight-decay 0.01 --eval-every 1000 --max-time 3600 --seed 1337 "$@"
python scripts/export_model.py runs/shakespeare-default/best.pt checkpoints/shakespeare.pt
python scripts/model_card.py checkpoints/shakespeare.pt
