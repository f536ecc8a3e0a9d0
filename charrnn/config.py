"""Configurations as frozen dataclasses. Each default is defined here once; the CLI reads it.

They are validated on creation and saved inside every checkpoint (as plain dicts).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .text import plural

CELLS = ("lstm", "gru", "rnn")
WINDOWS = ("random", "stateful")
PRECISIONS = ("auto", "fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda", "mps")  # and "cuda:N"
DEVICE_HELP = "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps."


# Stacks deeper than this do not train as RNNs (and PyTorch takes minutes to build 100,000).
MAX_LAYERS = 64
# A preview longer than this would stall every evaluation; `charrnn sample` makes any length.
MAX_PREVIEW_CHARS = 10_000
# torch.manual_seed takes 64 bits; previews and samples add small offsets to a seed.
MAX_SEED = 2**62


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the network: embedding -> stacked recurrent core -> dropout -> linear."""

    vocab_size: int
    cell: str = "lstm"
    num_layers: int = 3
    hidden_size: int = 512
    embedding_size: int = 64
    dropout: float = 0.2

    def __post_init__(self) -> None:
        _require(self.vocab_size >= 1, f"vocab_size must be at least 1, got {self.vocab_size}")
        _require(
            self.cell in CELLS,
            f"{flag('cell')} must be one of {', '.join(CELLS)}, got {self.cell!r}",
        )
        _require(
            1 <= self.num_layers <= MAX_LAYERS,
            f"{flag('num_layers')} must be between 1 and {MAX_LAYERS}, got {self.num_layers}",
        )
        _require(
            self.hidden_size >= 1,
            f"{flag('hidden_size')} must be at least 1, got {self.hidden_size}",
        )
        _require(
            self.embedding_size >= 1,
            f"{flag('embedding_size')} must be at least 1, got {self.embedding_size}",
        )
        _require(0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1), got {self.dropout}")

    @property
    def shape(self) -> str:
        """Short: 'LSTM 2x384'."""
        return f"{self.cell.upper()} {self.num_layers}x{self.hidden_size}"

    def describe(self) -> str:
        """Long: 'LSTM, 2 layers x 384 hidden, embedding 64, dropout 0.0'."""
        return (
            f"{self.cell.upper()}, {plural(self.num_layers, 'layer')} x {self.hidden_size} hidden, "
            f"embedding {self.embedding_size}, dropout {self.dropout}"
        )


@dataclass(frozen=True)
class TrainConfig:
    """How to train: data windows, optimiser, schedule, stopping and evaluation."""

    seq_len: int = 128
    batch_size: int = 128
    windows: str = "stateful"
    lr: float = 3e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    # Evaluate and keep as best.pt an exponential moving average of the weights, with this decay
    # per step (averaging.py); 0: off, the weights as the optimizer left them.
    ema_decay: float = 0.0
    max_steps: int = 100_000
    max_time: float | None = None
    patience: int | None = None
    eval_every: int = 250
    # Also save last.pt after a step when this many seconds have passed since the last save
    # (evaluations save it too), so a crash or SIGTERM loses at most that much. 0: every step.
    save_every_s: float = 120.0
    val_fraction: float = 0.1
    sample_chars: int = 200
    seed: int = 1337
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        for name in ("lr", "weight_decay", "grad_clip", "ema_decay", "max_time", "save_every_s"):
            value = getattr(self, name)
            _require(
                value is None or math.isfinite(value),
                f"{flag(name)} must be a finite number, got {value}",
            )
        _at_least(self, 1, "seq_len", "batch_size", "max_steps", "eval_every")
        _at_least(self, 0, "warmup_steps", "weight_decay", "save_every_s", "sample_chars")
        _require(self.windows in WINDOWS, f"{flag('windows')} must be one of {', '.join(WINDOWS)}")
        _require(self.lr > 0, f"{flag('lr')} must be positive, got {self.lr}")
        _require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio must be in [0, 1]")
        _require(self.grad_clip > 0, f"{flag('grad_clip')} must be positive, got {self.grad_clip}")
        _require(
            0.0 <= self.ema_decay < 1.0,
            f"{flag('ema_decay')} must be in [0, 1) (0: off), got {self.ema_decay}",
        )
        _require(
            self.max_time is None or self.max_time > 0,
            f"{flag('max_time')} must be positive, got {self.max_time}",
        )
        _require(
            self.patience is None or self.patience >= 1,
            f"{flag('patience')} must be at least 1, got {self.patience}",
        )
        _require(
            0.0 < self.val_fraction < 1.0,
            f"{flag('val_fraction')} must be in (0, 1), got {self.val_fraction}",
        )
        _require(
            self.sample_chars <= MAX_PREVIEW_CHARS,
            f"{flag('sample_chars')} must be at most {MAX_PREVIEW_CHARS:,} (it is a preview; "
            "charrnn sample makes any length)",
        )
        _require(
            0 <= self.seed <= MAX_SEED,
            f"{flag('seed')} must be between 0 and 2**62, got {self.seed}",
        )
        _check_device(self.device)
        _require(
            self.precision in PRECISIONS,
            f"{flag('precision')} must be one of {', '.join(PRECISIONS)}",
        )


def _at_least(config: Any, low: int, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        word = "at least" if low else ">="
        _require(value >= low, f"{flag(name)} must be {word} {low}, got {value}")


def _check_device(device: str) -> None:
    _require(
        device in DEVICES or device.startswith("cuda:"),
        f"{flag('device')} must be one of {', '.join(DEVICES)} (or cuda:N), got {device!r}",
    )


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Build a config from a saved dict, ignoring keys this version does not know."""
    known = {field.name for field in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in values.items() if key in known})


# `--precision auto` trains in bf16 on a CPU with bf16 matrix units when the layers are at least
# this wide, by cell: below it the per-call cost of converting to bf16 outweighs the faster
# products. Measured (bench_train_throughput, 2-core Zen 4, batch 64 x 64): LSTM 2x128 1.28x
# faster in bf16 (oneDNN's fused LSTM); GRU 2x128 0.97x (its bf16 path is per step, with
# copies), GRU 2x256 1.32x; the vanilla RNN is held to the GRU's width until measured.
CPU_BF16_MIN_HIDDEN = {"lstm": 128, "gru": 256, "rnn": 256}

UNKNOWN_CHAR_POLICIES = ("error", "skip")
# Above this many fp32 weight bytes per step, fp16 weights step faster on CPU (the step is bound
# by reading them): measured 1.4x for the shipped 2x384 LSTM (7.6 MB), 1.5x for a 2x512 LSTM
# (13 MB), 2.9x for 3x512 (21 MB), but 0.35-0.5x for 2x128 (0.8 MB, where fbgemm's per-call cost
# dominates). Val loss moved by < 1e-5 nats. `--precision auto` on CPU follows it.
AUTO_FP16_BYTES = 4 * 2**20
# From this many samples at once, a step is bound by arithmetic more than by reading weights, and
# bf16 products beat fp16 ones on a CPU with bf16 matrix units. `--precision auto` follows it.
AUTO_BF16_MIN_BATCH = 16
SAMPLE_PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")


@dataclass(frozen=True)
class SampleConfig:
    """How to generate: length, randomness controls, prime, seed, batch, stop text, device.

    The stop text is looked for in the generated text only and is dropped from the result.
    """

    length: int = 500
    temperature: float = 0.8
    greedy: bool = False
    top_k: int | None = None
    top_p: float | None = None
    prime: str = ""
    seed: int | None = None  # None: a fresh random seed, reported with the sample
    num_samples: int = 1
    stop: str | None = None
    unknown: str = "error"  # characters of the prime the model never saw: error or skip
    device: str = "auto"
    precision: str = "auto"  # weights for CPU steps: auto (fp16 for big models), fp32, fp16, int8

    def __post_init__(self) -> None:
        _require(self.length >= 0, f"--length must be >= 0, got {self.length}")
        _require(
            math.isfinite(self.temperature) and self.temperature > 0,
            f"--temperature must be a positive number, got {self.temperature} "
            "(for the most likely character every time, use --greedy)",
        )
        _require(
            self.top_k is None or self.top_k >= 1, f"--top-k must be at least 1, got {self.top_k}"
        )
        _require(
            self.top_p is None or 0.0 < self.top_p <= 1.0,
            f"--top-p must be in (0, 1], got {self.top_p}",
        )
        _require(self.num_samples >= 1, f"--num-samples must be at least 1, got {self.num_samples}")
        _require(
            self.seed is None or 0 <= self.seed <= 2**63 - self.num_samples,
            f"--seed must be between 0 and 2**63 - num_samples, got {self.seed}",
        )
        _require(self.stop is None or self.stop != "", "--stop must not be empty")
        _require(
            self.unknown in UNKNOWN_CHAR_POLICIES,
            f"--unknown must be one of {', '.join(UNKNOWN_CHAR_POLICIES)}, got {self.unknown!r}",
        )
        _require(
            self.device in DEVICES or self.device.startswith("cuda:"),
            f"--device must be one of {', '.join(DEVICES)} (or cuda:N), got {self.device!r}",
        )
        _require(
            self.precision in SAMPLE_PRECISIONS,
            f"--precision must be one of {', '.join(SAMPLE_PRECISIONS)}, got {self.precision!r}",
        )


CPU_BATCH_SIZE = 64  # measured best for 2x128 to 2x512 LSTMs on a few CPU cores
GPU_BATCH_SIZE = 4096  # a GPU needs thousands of rows per step to be kept busy


@dataclass(frozen=True)
class ScoreConfig:
    """How to score. The defaults are exact; streams > 1 trades exactness for speed (whole mode)."""

    context: str = "\n"  # read before each line (or the text); its last character predicts the 1st
    batch_size: int | None = None  # lines per padded batch; None: CPU_ or GPU_BATCH_SIZE
    chunk_len: int = 512  # time steps per forward call: memory is bounded for any length
    strict: bool = False  # unknown characters raise VocabError instead of being skipped
    precision: str = "fp32"  # fp32; bf16 autocast on CUDA ('auto': bf16 on CUDA only)
    streams: int = 1  # whole mode: cut the text into this many segments scored side by side
    warmup: int = 256  # streams > 1: characters each segment reads, unscored, before its start

    def __post_init__(self) -> None:
        checks = [
            (bool(self.context), "--context must hold at least one character"),
            (self.batch_size is None or self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.chunk_len >= 1, "chunk_len must be at least 1"),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
            (self.streams >= 1, "--streams must be at least 1"),
            (self.warmup >= 0, "warmup must be >= 0"),
        ]
        for passed, message in checks:
            if not passed:
                raise ConfigError(message)

    def batch_size_on(self, device: Any) -> int:
        """The batch size on a torch.device (anything with a .type)."""
        if self.batch_size is not None:
            return self.batch_size
        return CPU_BATCH_SIZE if device.type == "cpu" else GPU_BATCH_SIZE


@dataclass(frozen=True)
class ServeConfig:
    """Where `charrnn serve` listens, and the caps that keep one request from holding it."""

    host: str = "127.0.0.1"  # loopback: only this machine can connect
    port: int = 8000  # 0: any free port (the one taken is reported)
    max_length: int = 10_000  # characters per sample: about 1 s of the shipped model on one thread
    max_samples: int = 16  # samples per request (one batch)
    max_request_bytes: int = 200_000  # a request body: about 10 s of scoring on one CPU thread

    def __post_init__(self) -> None:
        _require(bool(self.host), "--host must not be empty")
        _require(0 <= self.port <= 65535, f"--port must be between 0 and 65535, got {self.port}")
        _at_least(self, 1, "max_length", "max_samples", "max_request_bytes")


# Defaults that depend on the device. The dataclass defaults above suit a GPU; on a CPU,
# throughput decides what a short run can learn. Measured on tiny Shakespeare, 180 s, batch 64,
# 64-character windows unless said. On one thread (one core of the 2-core dev machine, the other
# busy): GRU 2x128 1.545, LSTM 2x128 1.666, LSTM 2x192 1.702, LSTM 2x128 with 128-character
# windows 1.800. On two free cores, where a wider layer costs less time, medians of 3 runs:
# GRU 2x128 1.5285, GRU 2x256 1.5157; one run each: GRU 2x192 1.518, GRU 2x320 1.531,
# LSTM 2x128 1.593. An option the user sets always wins.
DEVICE_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        "model": {"cell": "gru", "num_layers": 2, "hidden_size": 128, "dropout": 0.0},
        "train": {"seq_len": 64, "batch_size": 64, "lr": 5e-3},
    },
}
# What changes on a CPU when torch uses two threads or more.
CPU_MULTITHREAD_MODEL: dict[str, Any] = {"hidden_size": 256}


def device_defaults(device_type: str, cpu_threads: int = 1) -> dict[str, dict[str, Any]]:
    """The defaults for a device type ('cpu', 'cuda', 'mps'): {'model': {...}, 'train': {...}}."""
    defaults = DEVICE_DEFAULTS.get(device_type, {})
    if device_type == "cpu" and cpu_threads >= 2:
        return {**defaults, "model": {**defaults["model"], **CPU_MULTITHREAD_MODEL}}
    return defaults


def build_configs(
    device_type: str,
    model_options: dict[str, Any],
    train_options: dict[str, Any],
    cpu_threads: int = 1,
) -> tuple[ModelConfig, TrainConfig]:
    """Configs for a new run: the user's options, else the device's defaults, else the dataclass's.

    cpu_threads: the threads torch will use (torch.get_num_threads()), which pick the CPU size.
    model_options may omit vocab_size (it is set from the corpus when training starts).
    """
    defaults = device_defaults(device_type, cpu_threads)
    model_values = {"vocab_size": 1, **defaults.get("model", {}), **model_options}
    train_values = {**defaults.get("train", {}), **train_options}
    return ModelConfig(**model_values), TrainConfig(**train_values)


# Where --init-from is given and the option is not, a fine-tuning run takes these instead of the
# device's defaults. Measured fine-tuning the shipped model (LSTM 2x384) on 179 KB of licence
# texts (benchmarks/bench_finetune.py's `known` variant), 90 s on one CPU thread, ~130 steps of
# 64x64 characters, one run each. Peak lr: 1e-3 1.476, 3e-3 1.321, 5e-3 1.288 and 1.266 (two
# seeds), 1e-2 1.284, so the CPU default 5e-3 stays: a lower peak re-learns a new text too
# slowly in a short run (and new characters: 5.85 nats each after 90 s at 1e-3, 2.46 at 5e-3).
# Warmup: 100 steps 1.431, 20 steps 1.347 at step 60, so a short one; all three end within
# 0.005 by step 130. Also within noise (0.02 between seeds): windows 128 x batch 32 (the
# shipped model's recipe) 1.271 and 1.323; dropout 0 1.274 against the source's 0.1.
FINETUNE_DEFAULTS: dict[str, Any] = {"warmup_steps": 20}
# What the source fixes: the network's shape (its vocabulary can only grow).
SHAPE_FIELDS = ("cell", "num_layers", "hidden_size", "embedding_size")


# What a resumed run must keep: changing these would make it a different run, not a continuation.
FIXED_ON_RESUME = ("seq_len", "batch_size", "windows", "val_fraction", "seed")

# The CLI flag of each config field, where it is not "--" + the field name with dashes. Library
# messages name options through `flag`, so a renamed flag is renamed here alone.
FLAG_NAMES = {
    "cell": "--model",
    "num_layers": "--layers",
    "hidden_size": "--hidden",
    "embedding_size": "--embedding",
    "warmup_steps": "--warmup",
    "save_every_s": "--save-every",
    "ema_decay": "--ema",
}


def flag(field_name: str) -> str:
    """The command-line flag that sets a config field."""
    return FLAG_NAMES.get(field_name, "--" + field_name.replace("_", "-"))


def resume_config(
    saved: TrainConfig | None,
    saved_model: ModelConfig,
    model_options: dict[str, Any],
    train_options: dict[str, Any],
) -> TrainConfig:
    """The config for a resumed run: the saved one with the options that may change on resume
    (time and step limits, learning rate, evaluation, device...). An option that would change the
    model's shape or the data is an error naming the old and new value; the same value as the
    checkpoint's is accepted, so the original command plus --resume works."""
    saved = saved or TrainConfig()
    changes = [
        f"{flag(name)} {getattr(saved_model, name)!r} -> {value!r}"
        for name, value in model_options.items()
        if value != getattr(saved_model, name)
    ]
    changes += [
        f"{flag(name)} {getattr(saved, name)!r} -> {train_options[name]!r}"
        for name in FIXED_ON_RESUME
        if name in train_options and train_options[name] != getattr(saved, name)
    ]
    if changes:
        raise ConfigError(
            "the model's shape and the data options cannot change on --resume: "
            + ", ".join(changes)
            + " (start a new run with another --out to change them)"
        )
    return dataclasses.replace(saved, **train_options)
