#!/usr/bin/env bash
# One command for every GPU claim, on a machine with CUDA (e.g. the team's lent H100):
#   bash benchmarks/gpu_check.sh [path/to/tinyshakespeare.txt]
# Runs the whole test suite (the CUDA tests run instead of skipping), then every benchmark on
# the GPU; results land in benchmarks/results/*-<gpu>.json. Takes about 25 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${1:-../shared/data/tinyshakespeare.txt}"
[ -f "$corpus" ] || corpus=shared/data/tinyshakespeare.txt
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU here')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python -m pip install -q -e '.[test]'
python -m pytest -q -rs
# torchrun with NCCL, one process per GPU (world size 1 on one GPU; the tests ran it too), a
# minute on the real corpus: the summary line's chars/s is the figure for the README.
gpus=$(python -c "import torch; print(torch.cuda.device_count())")
python -m torch.distributed.run --standalone --nproc-per-node "$gpus" -m charrnn train "$corpus" \
  --out /tmp/charrnn-gpu-torchrun --force --max-time 60 --device cuda
python benchmarks/bench_train_throughput.py --device cuda
python benchmarks/bench_sample.py --device cuda
python benchmarks/bench_score.py --device cuda
python benchmarks/bench_train_quality.py --device cuda --corpus "$corpus" --max-time 60 --runs 3
python benchmarks/bench_train_quality.py --device cuda --corpus "$corpus" --max-time 300 --runs 3
