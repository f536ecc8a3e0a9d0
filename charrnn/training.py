"""The training loop. It reports through an `on_event` callback and never prints."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .averaging import weight_average
from .checkpoint import Checkpoint, save_checkpoint
from .config import ModelConfig, TrainConfig
from .data import Corpus
from .device import autocast, resolve_device, use_bf16
from .distributed import Group, device_for
from .events import EvalReport, Event, TrainResult
from .finetune import InitialWeights
from .memory import check_training_fits
from .model import CharRNN, State, detach_state
from .ranks import RankState
from .run_dir import RunDirectory
from .run_progress import RunProgress
from .run_state import RunState
from .sampling import preview
from .schedule import learning_rate, make_optimizer, schedule_progress
from .token_cache import TokenCorpus, text_corpus_tokens
from .train_data import load_training_data, run_vocab
from .validation import diverged_above, diverged_error, evaluate, loss_sum


def _log_every(device: torch.device) -> int:
    """Steps between reports: reading the loss back forces a host-device sync, so on a GPU
    it is read every few steps only."""
    return 1 if device.type == "cpu" else 25


class _Run(RunProgress, RunState):
    """One training run: the model, its optimizer and data, and what it has done so far.

    What `last.pt` holds to continue exactly, and its saving and restoring, is `RunState`
    (run_state.py); the clock and the reports are `RunProgress` (run_progress.py).
    """

    def __init__(
        self,
        corpus: TokenCorpus,
        model_config: ModelConfig | None,
        config: TrainConfig,
        run_dir: RunDirectory,
        resume: Checkpoint | None,
        init_from: InitialWeights | None = None,
        ranks: RankState | None = None,
    ) -> None:
        self.corpus, self.config, self.run_dir = corpus, config, run_dir
        self.out_dir, self.best_path, self.last_path = run_dir.path, run_dir.best, run_dir.last
        # The ranks of a torchrun job (none: a single process): what they decide together.
        self.ranks = ranks or RankState(None, resolve_device(config.device))
        self.device = device = self.ranks.device
        group = self.ranks.group
        self.vocab, model_config = run_vocab(corpus, model_config, resume, init_from)
        self.bf16 = use_bf16(device, config.precision, model_config)
        # Where a fine-tuning run's weights came from, kept in every checkpoint of the run.
        self.lineage = init_from.lineage if init_from else None
        if resume is not None:
            self.lineage = resume.info.get("init_from")
        # A loss this far above guessing uniformly (ln V nats) is not learning: it is divergence.
        self.diverged_above = diverged_above(len(self.vocab))

        torch.manual_seed(config.seed)
        self._load_data(group)
        self._build_model(model_config, resume, init_from)

        self.step = 0
        self.best_val_loss: float | None = None
        self.last_val_loss: float | None = None
        self.last_train_loss = float("nan")
        self.evals_since_best = 0
        self.prior_elapsed = 0.0  # seconds trained before this session (resumed runs)
        self.start_progress = 0.0  # where the schedule stood when this session began
        self.carried: State | None = None  # hidden state carried between stateful windows
        # Under torchrun: agreed at every sync step, like the decision to stop.
        self.save_agreed = False
        self.sync_every = 1 if group is None else _log_every(device)
        if resume is not None:
            self._check_carried_state(resume.training_state.get("carried_state"), resume.path)
            self._restore(resume.training_state)
            if "schedule_progress" not in resume.training_state:
                # Saved by an older charrnn, whose time limit counted the whole run's time.
                saved_config = resume.train_config or config
                self.start_progress = schedule_progress(saved_config, self.step, self.prior_elapsed)
        self.last_eval_step = self.step if resume else -1
        self.stop_reason: str | None = None  # set as the run ends
        self.session_start_step = self.step
        self.session_start = self.last_saved = time.perf_counter()

    def _load_data(self, group: Group | None) -> None:
        """Windows over the training text and the validation streams (train_data.py)."""
        self.data = load_training_data(self.corpus, self.vocab, self.config, self.device, group)
        self.windows = self.data.windows
        self.data_generator = self.data.generator
        self.train_chars, self.val_chars = self.data.train_chars, self.data.val_chars
        self.chars_per_step = self.data.chars_per_step

    def _build_model(
        self,
        model_config: ModelConfig,
        resume: Checkpoint | None,
        init_from: InitialWeights | None,
    ) -> None:
        rows = self.windows.rows.stop - self.windows.rows.start  # this process's share
        check_training_fits(model_config, rows, self.config.seq_len, self.device)
        self.model = CharRNN(model_config).to(self.device)
        if resume is not None:
            self.model.load_state_dict(resume.model.state_dict())
        elif init_from is not None:
            self.model.load_state_dict(init_from.weights)
        self.model.train()
        self.optimizer = make_optimizer(self.model, self.config, self.device)
        self.average = weight_average(self.model, self.config.ema_decay)
        self.step_fn = torch.compile(self.model) if self.config.compile else self.model

    def distribute(self, saved: dict[str, Any] | None) -> None:
        """Under torchrun, once every rank has started: check that all start at the same step,
        wrap the model in DDP (which copies rank 0's weights to all) and give each rank its own
        dropout stream. Collectives: every rank calls it."""
        collective = self.ranks.collective
        if collective is None:
            return
        self.ranks.check_same_step(self.step, self.last_path)
        wrapped = collective.wrap(self.model)
        self.step_fn = torch.compile(wrapped) if self.config.compile else wrapped
        self.ranks.seed_own_stream(self.config.seed, self.step, saved)

    def healthy(self, loss: float) -> bool:
        """False when a loss says the weights have diverged (NaN, inf or far above ln V)."""
        return math.isfinite(loss) and loss <= self.diverged_above

    def clock_says_save(self) -> bool:
        return time.perf_counter() - self.last_saved >= self.config.save_every_s

    def save_due(self) -> bool:
        """--save-every's clock; under torchrun, what the ranks agreed at the last sync."""
        return self.save_agreed if self.ranks.collective else self.clock_says_save()

    def stop_now(self, stop_requested: Callable[[], bool]) -> str | None:
        """Why the run must stop before the next step ("interrupted", "max_time"), or None.
        Under torchrun the ranks agree (and agree whether to save), so all stop at one step."""
        if self.ranks.collective is None:
            if stop_requested():
                return "interrupted"
            return "max_time" if self.out_of_time() else None
        asked, late, save = self.ranks.agree(
            [stop_requested(), self.out_of_time(), self.clock_says_save()]
        )
        self.save_agreed = save
        return "interrupted" if asked else "max_time" if late else None

    # --- measuring ---------------------------------------------------------------------------

    @property
    def precision(self) -> str:
        return "bf16" if self.bf16 else "fp32"

    def schedule_progress(self) -> float:
        return schedule_progress(
            self.config, self.step, self.session_elapsed(), self.start_progress
        )

    def learning_rate(self) -> float:
        return learning_rate(self.config, self.step, self.session_elapsed(), self.start_progress)

    # --- training ----------------------------------------------------------------------------

    def set_learning_rate(self) -> float:
        lr = self.learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_step(self) -> torch.Tensor:
        """One optimizer step on the next batch; the loss stays on the device (no sync)."""
        inputs, targets, reset = self.windows.batch(self.step)
        state = None if reset else self.carried
        with autocast(self.device, self.bf16):
            logits, state = self.step_fn(inputs, state)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        if self.average is not None:
            self.average.update(self.model)
        self.carried = detach_state(state) if self.windows.stateful else None
        self.step += 1
        return loss.detach()

    def record_train_loss(self, loss_sum: torch.Tensor, count: int) -> None:
        """The mean training loss since the last report (over every rank), checked."""
        mean_loss = self.ranks.mean(float(loss_sum), count)
        if not self.healthy(mean_loss):
            raise diverged_error("training", mean_loss, self.step, self.last_path)
        self.last_train_loss = mean_loss

    @property
    def evaluated_model(self) -> CharRNN:
        """The weights evaluations score and best.pt keeps: their average under --ema."""
        return self.average.model if self.average is not None else self.model

    def evaluate(self, lr: float) -> EvalReport:
        """Evaluate, save best.pt if improved and last.pt always, log a metrics line."""
        streams = (self.data.val_inputs, self.data.val_targets)
        chunk = max(self.config.seq_len, 256)
        model = self.evaluated_model
        if self.ranks.collective is None:
            val_loss = evaluate(model, *streams, chunk, self.bf16)
        else:  # each rank validates some of the streams
            val_loss = self.ranks.mean(*loss_sum(model, *streams, chunk, self.bf16))
        if not self.healthy(val_loss):
            # The weights are already broken: stop before they reach best.pt or overwrite the
            # last good last.pt.
            raise diverged_error("validation", val_loss, self.step, self.last_path)
        self.last_val_loss = val_loss
        improved = self.best_val_loss is None or val_loss < self.best_val_loss
        if improved:
            self.best_val_loss, self.evals_since_best = val_loss, 0
            if self.ranks.main:
                save_checkpoint(
                    self.best_path, model, self.vocab, self.config, self._info(val_loss)
                )
        else:
            self.evals_since_best += 1
        self.last_eval_step = self.step
        metrics = {
            "step": self.step,
            "elapsed_s": round(self.elapsed(), 3),
            "train_loss": self.last_train_loss,
            "val_loss": val_loss,
            "best_val_loss": self.best_val_loss,
            "chars_per_s": round(self.chars_per_second(), 1),
            "lr": lr,
        }
        # The metrics line goes before last.pt: a kill between the two then resumes from an
        # earlier last.pt, which drops this line and logs it again. The other order lost it.
        if self.ranks.main:
            self.run_dir.log_metrics(metrics)
        self.save_last()
        assert self.best_val_loss is not None
        return EvalReport(
            self.step, val_loss, self.best_val_loss, improved, self.preview(), metrics
        )

    def preview(self) -> str:
        if not self.config.sample_chars or not self.ranks.main:
            return ""
        return preview(
            self.evaluated_model,
            self.vocab,
            self.config.sample_chars,
            seed=self.config.seed + self.step,
        )


def train(
    corpus: Corpus | TokenCorpus,
    model_config: ModelConfig | None,
    config: TrainConfig,
    out_dir: Path | str,
    *,
    resume: Checkpoint | None = None,
    init_from: InitialWeights | None = None,
    on_event: Callable[[Event], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    overwrite: bool = False,
    group: Group | None = None,
) -> TrainResult:
    """Train a CharRNN on `corpus`, writing best.pt, last.pt and metrics.jsonl into `out_dir`.

    corpus: a text read whole (read_corpus) or encoded (token_cache.open_corpus). model_config:
    the network's shape (its vocab_size is set from the corpus); ignored when resuming.
    init_from: a new run's starting weights and grown vocabulary (finetune.py; model_config
    must then be the source's shape). should_stop: polled between steps; when it returns True,
    last.pt is saved and the run ends with stop_reason "interrupted". group: this process's
    place in a torchrun job (distributed.from_environment()); only rank 0 writes and reports.
    """
    tokens = corpus if isinstance(corpus, TokenCorpus) else text_corpus_tokens(corpus)
    ranks = RankState(group, device_for(resolve_device(config.device), group))
    emit = on_event if on_event is not None and ranks.main else (lambda event: None)
    run_dir = RunDirectory(out_dir)
    resume_from = resume.path if resume else None

    def start() -> _Run:
        if ranks.main:
            run_dir.check(resume_from, overwrite)  # refused before the corpus is read
        # Checks the data; writes nothing.
        run = _Run(tokens, model_config, config, run_dir, resume, init_from, ranks)
        if ranks.main:
            run_dir.claim(resume_from, overwrite)
            if resume is not None:
                run_dir.continue_metrics(resume.path, run.step)
        return run

    with ranks.joined(), run_dir:
        run = ranks.started(start)
        run.distribute(resume.training_state if resume else None)
        result = _train_loop(run, emit, should_stop or (lambda: False))
        run.step_fn = run.model  # DDP's hold on the process group goes before the group does
        return result


def _train_loop(
    run: _Run, emit: Callable[[Event], None], stop_requested: Callable[[], bool]
) -> TrainResult:
    config = run.config
    emit(run.start_event())
    run.session_start = run.last_saved = time.perf_counter()

    log_every = _log_every(run.device)
    loss_sum = torch.zeros((), device=run.device)
    loss_count = 0
    stop_reason = "max_steps"
    while run.step < config.max_steps:
        if run.step % run.sync_every == 0:
            stopping = run.stop_now(stop_requested)
            if stopping is not None:
                stop_reason = stopping
                break
        lr = run.set_learning_rate()
        loss_sum += run.train_step()
        loss_count += 1

        evaluate_now = run.step % config.eval_every == 0 or run.step == config.max_steps
        save_now = not evaluate_now and run.save_due()  # evaluations save last.pt anyway
        if run.step % log_every == 0 or evaluate_now or save_now:
            # Read first: a non-finite loss must stop the run before it reaches last.pt.
            run.record_train_loss(loss_sum, loss_count)
            loss_sum.zero_()
            loss_count = 0
            if save_now:
                run.save_last()
            emit(run.step_report(lr))
        if evaluate_now:
            emit(run.evaluate(lr))
            if config.patience is not None and run.evals_since_best >= config.patience:
                stop_reason = "patience"
                break

    if loss_count:
        # Steps not yet reported (a GPU reads the loss every few steps): the last report must
        # show where the run really ended.
        run.record_train_loss(loss_sum, loss_count)
        emit(run.step_report(lr))
    run.stop_reason = stop_reason
    if stop_reason == "interrupted":
        run.save_last()
    elif run.last_eval_step != run.step:
        # Stopped by the clock between evaluations: evaluate once more so nothing is lost.
        emit(run.evaluate(run.learning_rate()))
    elif run.step > run.session_start_step:
        run.save_last()  # the same state as the evaluation's save, now with why it ended
    result = run.result(stop_reason)
    emit(result)
    return result
