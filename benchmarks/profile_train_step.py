"""Where a training step's time goes: torch.profiler over charrnn's own step, by operator.

Builds the model and step the CPU defaults would build (or the options given), runs warm-up steps,
then profiles `--steps` steps of forward, cross-entropy, backward, clipping and AdamW, and prints
the operators that take most of the time (self CPU time, the share of the profiled total) and
the phases (forward, loss, backward, clip, optimizer) timed with the wall clock.

    python benchmarks/profile_train_step.py                        # the CPU defaults
    python benchmarks/profile_train_step.py --model lstm --hidden 384 --precision fp32
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's own start/stop chatter, off

import common  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from charrnn.config import build_configs  # noqa: E402
from charrnn.device import autocast, resolve_device, use_bf16  # noqa: E402
from charrnn.model import CharRNN  # noqa: E402
from charrnn.schedule import make_optimizer  # noqa: E402

VOCAB = 65  # tiny Shakespeare's


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", dest="cell", default=None, help="lstm, gru or rnn")
    parser.add_argument("--layers", dest="num_layers", type=int, default=None)
    parser.add_argument("--hidden", dest="hidden_size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seq-len", type=int, default=None)
    parser.add_argument("--precision", default="auto", help="auto, fp32 or bf16 [auto]")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20, help="profiled steps [20]")
    parser.add_argument("--top", type=int, default=15, help="operators shown [15]")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    model_options = {
        k: v for k in ("cell", "num_layers", "hidden_size") if (v := getattr(args, k)) is not None
    }
    train_options = {k: v for k in ("batch_size", "seq_len") if (v := getattr(args, k)) is not None}
    model_config, config = build_configs(
        device.type, model_options, {**train_options, "precision": args.precision},
        cpu_threads=torch.get_num_threads(),
    )  # fmt: skip
    model_config = type(model_config)(**{**model_config.__dict__, "vocab_size": VOCAB})
    bf16 = use_bf16(device, config.precision, model_config)
    model = CharRNN(model_config).to(device).train()
    optimizer = make_optimizer(model, config, device)
    generator = torch.Generator().manual_seed(0)
    shape = (config.batch_size, config.seq_len + 1)
    data = torch.randint(VOCAB, shape, generator=generator).to(device)
    inputs, targets = data[:, :-1], data[:, 1:]
    phases: dict[str, float] = defaultdict(float)

    def step(timed: bool) -> None:
        marks = [time.perf_counter()]

        def mark(name: str) -> None:
            common.synchronize(device)
            marks.append(time.perf_counter())
            if timed:
                phases[name] += marks[-1] - marks[-2]

        with autocast(device, bf16):
            logits, _ = model(inputs)
        mark("forward")
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        mark("loss")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        mark("backward")
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        mark("clip")
        optimizer.step()
        mark("optimizer")

    for _ in range(5):
        step(timed=False)
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(args.steps):
            step(timed=False)
    for _ in range(args.steps):
        step(timed=True)

    info = common.describe_device(device)
    total = sum(phases.values())
    chars = config.batch_size * config.seq_len * args.steps
    print(
        f"{model_config.shape}, batch {config.batch_size} x {config.seq_len}, "
        f"{'bf16' if bf16 else 'fp32'}, {torch.get_num_threads()} threads, {info['name']}: "
        f"{chars / total:,.0f} chars/s over {args.steps} steps\n"
    )
    common.print_table(
        ["phase", "ms per step", "share"],
        [[name, f"{1000 * s / args.steps:.1f}", f"{s / total:.0%}"] for name, s in phases.items()],
    )
    events = profiler.key_averages()
    profiled = sum(e.self_cpu_time_total for e in events)
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]
    common.print_table(
        ["operator", "calls per step", "self ms per step", "share"],
        [
            [
                e.key,
                f"{e.count / args.steps:g}",
                f"{e.self_cpu_time_total / 1000 / args.steps:.2f}",
                f"{e.self_cpu_time_total / profiled:.0%}",
            ]
            for e in rows
        ],
    )


if __name__ == "__main__":
    main()
