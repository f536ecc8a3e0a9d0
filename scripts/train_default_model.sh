#!/usr/bin/env bash
# Recipe for the shipped default model, checkpoints/shakespeare.pt (three stages of one run).
# Trains with charrnn's own `charrnn train` on the shipped corpus, then exports best.pt in
# half precision without the optimizer state. Rerun it to reproduce the model card's figures.
# Usage: bash scripts/train_default_model.sh [extra charrnn train options, e.g. --device cuda]
# A run that dies is continued, not restarted: rerun the script, and each stage picks up from
# runs/shakespeare-default/last.pt (--resume auto; a finished stage returns at once). Delete that
# folder to train from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
# GRU 2x512: the short-budget sweeps (benchmarks/README.md) favour the GRU on CPU, and
# 512 units still export to about 5 MB in float16. Stage one: 3,200 steps, one cosine from lr 4e-3;
# on this 2-core machine about 100 minutes (4,400 chars/s), six passes over the training text.
charrnn train corpora/shakespeare.txt --out runs/shakespeare-default --resume auto \
  --model gru --layers 2 --hidden 512 --embedding 64 --dropout 0.1 \
  --seq-len 128 --batch-size 64 --windows stateful --lr 4e-3 --warmup 200 \
  --weight-decay 0.01 --eval-every 400 --sample-chars 0 --max-steps 3200 --threads 2 \
  --seed 1337 "$@"
# Stage two, a warm restart: stage one's val loss was still falling as its schedule ran out
# (1.3571 -> 1.3525 over its last 400 steps), so the run is resumed, optimizer state and all, with a
# longer schedule at half the peak (it comes back in at about 1e-3 and decays to 1e-4 by step 6,000).
charrnn train --resume runs/shakespeare-default --max-steps 6000 --lr 2e-3 --threads 2 "$@"
# Stage three, a second warm restart, with a moving average of the weights (--ema): stage two
# still gained 0.001 in its last 400 steps at the floor. It comes back in at about 6e-4 and decays
# to 1e-4 by step 9,200; evaluations and best.pt use the average. About 85 minutes here. (The
# shipped run was resumed twice in this stage as it was being set up: --ema came on at step 6,156
# and --max-steps went from 9,600 to 9,200 at step 6,476. The average warms up over its first
# steps anyway, (1+n)/(10+n), and the learning rate moved by under 1e-4 at the change.)
charrnn train --resume runs/shakespeare-default --max-steps 9200 --lr 2e-3 --ema 0.999 \
  --threads 2 "$@"
python scripts/export_model.py runs/shakespeare-default/best.pt checkpoints/shakespeare.pt
python scripts/model_card.py checkpoints/shakespeare.pt --curve runs/shakespeare-default/metrics.jsonl \
  --sizes benchmarks/results/sweep-cpu-bf16-cpu-2core.json \
  --sizes benchmarks/results/sweep-cpu-bf16-gru-cpu-2core.json \
  --sizes benchmarks/results/sweep-cpu-bf16-gru-rest-cpu-2core.json
