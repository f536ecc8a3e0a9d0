"""The training loop. It reports through an `on_event` callback and never prints."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from . import __version__
from .checkpoint import Checkpoint, save_checkpoint
from .config import ModelConfig, TrainConfig
from .data import Corpus, RandomWindows, StatefulWindows, check_split, split_ids, validation_streams
from .device import resolve_device, use_bf16
from .errors import CheckpointError, ConfigError, TrainingDiverged
from .model import CharRNN, State, detach_state
from .sampling import preview
from .vocab import Vocab


@dataclass(frozen=True)
class TrainStart:
    device: str
    precision: str
    num_parameters: int
    train_chars: int
    val_chars: int
    vocab_size: int
    start_step: int
    max_steps: int
    out_dir: Path


@dataclass(frozen=True)
class StepReport:
    step: int
    max_steps: int
    train_loss: float
    lr: float
    chars_per_second: float
    elapsed_s: float
    eta_s: float | None
    last_val_loss: float | None
    best_val_loss: float | None


@dataclass(frozen=True)
class EvalReport:
    step: int
    val_loss: float
    best_val_loss: float
    improved: bool
    sample: str
    metrics: dict[str, Any]


@dataclass(frozen=True)
class TrainResult:
    stop_reason: str  # "max_steps", "max_time", "patience" or "interrupted"
    step: int
    best_val_loss: float | None
    elapsed_s: float
    chars_per_second: float
    out_dir: Path
    best_path: Path | None
    last_path: Path


Event = TrainStart | StepReport | EvalReport


def learning_rate(config: TrainConfig, step: int, elapsed_s: float) -> float:
    """Linear warmup, then cosine decay to min_lr_ratio * lr at max_steps or max_time."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    if config.max_time:
        progress = max(progress, elapsed_s / config.max_time)
    progress = min(1.0, progress)
    floor = config.lr * config.min_lr_ratio
    return floor + 0.5 * (config.lr - floor) * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate(
    model: CharRNN, inputs: torch.Tensor, targets: torch.Tensor, chunk: int, bf16: bool
) -> float:
    """Mean loss (nats per character) over the whole validation streams, state carried."""
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=inputs.device, dtype=torch.float64)
    state: State | None = None
    for start in range(0, inputs.size(1), chunk):
        x, y = inputs[:, start : start + chunk], targets[:, start : start + chunk]
        with _autocast(inputs.device, bf16):
            logits, state = model(x, state)
        total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum")
    model.train(was_training)
    return float(total) / targets.numel()


def _autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    if bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _make_optimizer(model: CharRNN, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    # Decay matrices only; biases are not regularised.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99), fused=device.type == "cuda")


def _state_to_cpu(state: State | None) -> Any:
    if state is None:
        return None
    if isinstance(state, tuple):
        return [s.detach().cpu() for s in state]
    return [state.detach().cpu()]


def _state_from_saved(saved: Any, cell: str, device: torch.device) -> State | None:
    if not saved:
        return None
    tensors = [s.to(device) for s in saved]
    return tuple(tensors) if cell == "lstm" else tensors[0]  # type: ignore[return-value]


def _trim_metrics(path: Path, up_to_step: int) -> None:
    """On resume, drop evaluations logged after the checkpoint we resume from."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= up_to_step
    ]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def train(
    corpus: Corpus,
    model_config: ModelConfig | None,
    config: TrainConfig,
    out_dir: Path | str,
    *,
    resume: Checkpoint | None = None,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    overwrite: bool = False,
) -> TrainResult:
    """Train a CharRNN on `corpus`, writing best.pt, last.pt and metrics.jsonl into `out_dir`.

    model_config: the network's shape (its vocab_size is set from the corpus); ignored when
    resuming. should_stop: polled between steps; when it returns True, last.pt is saved and
    the run ends with stop_reason "interrupted".
    """
    emit = on_event or (lambda event: None)
    stop_requested = should_stop or (lambda: False)
    out_dir = Path(out_dir)
    best_path, last_path, metrics_path = (
        out_dir / "best.pt",
        out_dir / "last.pt",
        out_dir / "metrics.jsonl",
    )
    if resume is None and not overwrite and (best_path.exists() or last_path.exists()):
        raise ConfigError(
            f"{out_dir} already holds a run; continue it with --resume {last_path}, "
            "choose another --out, or pass --force to overwrite it"
        )

    device = resolve_device(config.device)
    bf16 = use_bf16(device, config.precision)
    training_state = resume.training_state if resume else None
    if resume is not None:
        if not training_state:
            raise CheckpointError(
                f"{resume.path} has no training state to resume from; resume from a run's last.pt"
            )
        if resume.info.get("corpus_sha256") not in (None, corpus.sha256):
            raise CheckpointError(
                f"the corpus differs from the one {resume.path} was trained on "
                f"({', '.join(resume.info.get('corpus', []))}); resume with the same text"
            )
        vocab = resume.vocab
        model_config = resume.model_config
    else:
        vocab = Vocab.from_text(corpus.text)
        model_config = replace(
            model_config or ModelConfig(vocab_size=len(vocab)), vocab_size=len(vocab)
        )

    torch.manual_seed(config.seed)
    ids = torch.tensor(vocab.encode(corpus.text), dtype=torch.long)
    train_ids, val_ids = split_ids(ids, config.val_fraction)
    check_split(train_ids, val_ids, config.seq_len)
    train_ids, val_ids = train_ids.to(device), val_ids.to(device)
    val_inputs, val_targets = validation_streams(val_ids, max_streams=64, seq_len=config.seq_len)
    eval_chunk = max(config.seq_len, 256)

    model = CharRNN(model_config).to(device)
    if resume is not None:
        model.load_state_dict(resume.model.state_dict())
    model.train()
    optimizer = _make_optimizer(model, config, device)
    step_fn = torch.compile(model) if config.compile else model

    data_generator = torch.Generator().manual_seed(config.seed)
    if config.windows == "stateful":
        windows: RandomWindows | StatefulWindows = StatefulWindows(
            train_ids, config.batch_size, config.seq_len
        )
    else:
        windows = RandomWindows(train_ids, config.batch_size, config.seq_len, data_generator)
    chars_per_step = config.batch_size * config.seq_len

    step, best_val_loss, evals_since_best, prior_elapsed = 0, None, 0, 0.0
    last_val_loss: float | None = None
    carried: State | None = None
    if training_state:
        optimizer.load_state_dict(training_state["optimizer"])
        torch.set_rng_state(training_state["rng_cpu"])
        if device.type == "cuda" and training_state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(training_state["rng_cuda"])
        data_generator.set_state(training_state["rng_data"])
        carried = _state_from_saved(training_state.get("carried_state"), model_config.cell, device)
        step = int(training_state["step"])
        best_val_loss = training_state.get("best_val_loss")
        last_val_loss = training_state.get("last_val_loss")
        evals_since_best = int(training_state.get("evals_since_best", 0))
        prior_elapsed = float(training_state.get("elapsed_s", 0.0))
        _trim_metrics(metrics_path, step)
    elif overwrite:
        # Nothing of the old run may survive to be mistaken for this one's (e.g. its best.pt
        # when this run is stopped before its first evaluation).
        for stale in (metrics_path, best_path, last_path):
            stale.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)

    emit(
        TrainStart(
            device=str(device),
            precision="bf16" if bf16 else "fp32",
            num_parameters=model.num_parameters(),
            train_chars=len(train_ids),
            val_chars=len(val_ids),
            vocab_size=len(vocab),
            start_step=step,
            max_steps=config.max_steps,
            out_dir=out_dir,
        )
    )

    def info(val_loss: float | None) -> dict[str, Any]:
        return {
            "step": step,
            "val_loss": val_loss,
            "best_val_loss": best_val_loss,
            "elapsed_s": elapsed(),
            "corpus": list(corpus.sources),
            "corpus_sha256": corpus.sha256,
            "corpus_chars": len(corpus.text),
            "device": str(device),
            "precision": "bf16" if bf16 else "fp32",
            "num_parameters": model.num_parameters(),
            "charrnn_version": __version__,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def save_last() -> None:
        state = {
            "optimizer": optimizer.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state() if device.type == "cuda" else None,
            "rng_data": data_generator.get_state(),
            "carried_state": _state_to_cpu(carried),
            "step": step,
            "best_val_loss": best_val_loss,
            "last_val_loss": last_val_loss,
            "evals_since_best": evals_since_best,
            "elapsed_s": elapsed(),
        }
        save_checkpoint(last_path, model, vocab, config, info(last_val_loss), training_state=state)

    run_start = time.perf_counter()
    session_start_step = step

    def elapsed() -> float:
        return prior_elapsed + time.perf_counter() - run_start

    # Reading the loss back forces a host-device sync, so on a GPU it is read every few steps.
    log_every = 1 if device.type == "cpu" else 25
    loss_sum = torch.zeros((), device=device)
    loss_count = 0
    last_eval_step = step if resume else -1
    stop_reason = "max_steps"
    last_train_loss = float("nan")

    def run_evaluation(lr: float) -> tuple[bool, dict[str, Any]]:
        """Evaluate, save best.pt if improved and last.pt always, log a metrics line."""
        nonlocal last_val_loss, best_val_loss, evals_since_best, last_eval_step
        val_loss = evaluate(model, val_inputs, val_targets, eval_chunk, bf16)
        if not math.isfinite(val_loss):
            # The weights are already broken: stop before they overwrite the last good last.pt.
            kept = last_path if last_path.exists() else "not yet written"
            raise TrainingDiverged(
                f"the validation loss became {val_loss} at step {step}; stopped. "
                f"The last good checkpoint is {kept}; try a lower --lr or --grad-clip"
            )
        last_val_loss = val_loss
        improved = best_val_loss is None or last_val_loss < best_val_loss
        if improved:
            best_val_loss, evals_since_best = last_val_loss, 0
            save_checkpoint(best_path, model, vocab, config, info(last_val_loss))
        else:
            evals_since_best += 1
        save_last()
        last_eval_step = step
        now = elapsed()
        metrics = {
            "step": step,
            "elapsed_s": round(now, 3),
            "train_loss": last_train_loss,
            "val_loss": last_val_loss,
            "best_val_loss": best_val_loss,
            "chars_per_s": round(
                (step - session_start_step) * chars_per_step / max(now - prior_elapsed, 1e-9), 1
            ),
            "lr": lr,
        }
        with metrics_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(metrics) + "\n")
        return improved, metrics

    while step < config.max_steps:
        if stop_requested():
            stop_reason = "interrupted"
            break
        if config.max_time is not None and elapsed() >= config.max_time:
            stop_reason = "max_time"
            break
        lr = learning_rate(config, step, elapsed())
        for group in optimizer.param_groups:
            group["lr"] = lr

        inputs, targets, reset = windows.batch(step)
        state = None if reset else carried
        with _autocast(device, bf16):
            logits, state = step_fn(inputs, state)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        carried = detach_state(state) if windows.stateful else None
        step += 1
        loss_sum += loss.detach()
        loss_count += 1

        evaluate_now = step % config.eval_every == 0 or step == config.max_steps
        if step % log_every == 0 or evaluate_now:
            last_train_loss = float(loss_sum) / loss_count
            loss_sum.zero_()
            loss_count = 0
            if not math.isfinite(last_train_loss):
                raise TrainingDiverged(
                    f"the training loss became {last_train_loss} at step {step}; stopped. "
                    f"The last good checkpoint is {last_path if last_path.exists() else 'not yet written'}; "
                    "try a lower --lr or --grad-clip"
                )
            now = elapsed()
            run_chars = (step - session_start_step) * chars_per_step
            speed = run_chars / max(now - prior_elapsed, 1e-9)
            eta = (config.max_steps - step) * chars_per_step / speed if speed > 0 else None
            if config.max_time is not None:
                eta = min(eta if eta is not None else math.inf, max(0.0, config.max_time - now))
            emit(
                StepReport(
                    step,
                    config.max_steps,
                    last_train_loss,
                    lr,
                    speed,
                    now,
                    eta,
                    last_val_loss,
                    best_val_loss,
                )
            )

        if evaluate_now:
            improved, metrics = run_evaluation(lr)
            sample = (
                preview(model, vocab, config.sample_chars, seed=config.seed + step)
                if config.sample_chars
                else ""
            )
            emit(EvalReport(step, last_val_loss, best_val_loss, improved, sample, metrics))
            if config.patience is not None and evals_since_best >= config.patience:
                stop_reason = "patience"
                break

    if stop_reason == "interrupted":
        save_last()
    elif last_eval_step != step:
        # Stopped by the clock between evaluations: evaluate once more so nothing is lost.
        improved, metrics = run_evaluation(learning_rate(config, step, elapsed()))
        emit(EvalReport(step, last_val_loss, best_val_loss, improved, "", metrics))

    total = elapsed()
    run_time = max(total - prior_elapsed, 1e-9)
    return TrainResult(
        stop_reason=stop_reason,
        step=step,
        best_val_loss=best_val_loss,
        elapsed_s=total,
        chars_per_second=(step - session_start_step) * chars_per_step / run_time,
        out_dir=out_dir,
        best_path=best_path if best_path.exists() else None,
        last_path=last_path,
    )
