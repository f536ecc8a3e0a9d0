"""Planning a training run: every decision between the user's options and the training loop.

`plan_run` decides new run, fine-tuning run (--init-from) or resume, the corpus (the shipped one
when none is given, as a short demo), the run directory, the device, the CPU threads and every device-dependent default, so the
CLI, the Python API and the benchmarks get the same run from the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from . import resources
from .batches import validation_note
from .checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint_path
from .config import (
    FINETUNE_DEFAULTS,
    SHAPE_FIELDS,
    ModelConfig,
    TrainConfig,
    build_configs,
    device_defaults,
    flag,
    resume_config,
)
from .data import STDIN_SOURCE, corpus_label, stored_corpus_paths, train_length
from .device import resolve_device
from .distributed import Group, from_environment
from .errors import ConfigError
from .finetune import InitialWeights, describe_start, initial_weights, load_source
from .threads import ThreadChoice, choose_threads
from .token_cache import TokenCorpus, open_corpus

# With no corpus the run is a demo on the shipped text: short unless the user sets a limit.
DEMO_MAX_TIME_S = 120.0
# --resume auto: continue the run in --out if it holds a last.pt, else start it (torchrun
# restarts a failed group with the same command, which must then resume).
RESUME_AUTO = "auto"


@dataclass
class RunPlan:
    corpus: TokenCorpus
    model_config: ModelConfig  # vocab_size is the corpus's (new run) or the checkpoint's
    train_config: TrainConfig
    out_dir: Path
    resume: Checkpoint | None = None
    threads: ThreadChoice | None = None  # None: not a CPU run
    notes: list[str] = field(default_factory=list)  # decisions the user should hear about
    init_from: InitialWeights | None = None  # a fine-tuning run's starting weights
    group: Group | None = None  # this process's place in a torchrun job

    @property
    def resume_command(self) -> list[str]:
        """The command that continues this run from its last.pt."""
        sources = ["-" if source == STDIN_SOURCE else source for source in self.corpus.sources]
        return ["charrnn", "train", *sources, "--resume", str(self.out_dir / "last.pt")]


def plan_run(
    corpus: list[Path | str] | None = None,
    model_options: dict[str, Any] | None = None,
    train_options: dict[str, Any] | None = None,
    out: Path | str | None = None,
    resume: Path | str | None = None,
    threads: int | None = None,
    init_from: Path | str | None = None,
) -> RunPlan:
    """The run that `charrnn train` would make from these options.

    model_options / train_options: ModelConfig / TrainConfig fields the user set (others take the
    device's defaults). resume: a last.pt or run directory to continue. threads: --threads.
    init_from: a checkpoint, run directory or shipped model's name to start a new run from.
    resume "auto": resume from the run directory's last.pt if it has one, else start the run.
    Under torchrun (RANK and WORLD_SIZE set) the plan carries this process's group.
    """
    model_options, train_options = dict(model_options or {}), dict(train_options or {})
    # Every option is checked before any file is touched, so a usage error is reported as one.
    ModelConfig(vocab_size=1, **model_options)
    TrainConfig(**train_options)
    group = from_environment()
    resume, init_from = _auto_resume(resume, corpus, out, init_from)
    _check_init_from(init_from, corpus, resume)
    notes: list[str] = []
    checkpoint = source = None
    if resume is not None:
        checkpoint, model_config, config, sources, out_dir = _resumed(
            resume, corpus, out, model_options, train_options
        )
    else:
        if init_from is not None:
            source = load_source(init_from, on_note=notes.append)
        sources = corpus or _demo_corpus(train_options, notes)
        out_dir = Path(out) if out else None
        model_config, config = None, None

    device = resolve_device(config.device if config else train_options.get("device", "auto"))
    choice = _choose_threads(device, threads)
    if source is not None:  # the shape is checked before the corpus is read
        model_config, config = _finetune_configs(
            device.type, source.checkpoint.model_config, model_options, train_options, source.name
        )

    text = open_corpus(sources)
    initial = None
    if source is not None:
        initial = initial_weights(source, text.vocab)
        model_config = replace(model_config, vocab_size=len(initial.vocab))
        config, defaults = _evaluate_each_pass(config, len(text), train_options)
        notes.append(describe_start(source, initial, defaults))
    elif checkpoint is None:
        cpu_threads = choice.count if choice else 1
        model_config, config = build_configs(
            device.type, model_options, train_options, cpu_threads=cpu_threads
        )
        model_config = replace(model_config, vocab_size=len(text.vocab))
    out_dir = out_dir or Path("runs") / text.name
    notes += validation_note(len(text), config.val_fraction)
    return RunPlan(text, model_config, config, out_dir, checkpoint, choice, notes, initial, group)


def _resumed(
    resume: Path | str,
    corpus: list[Path | str] | None,
    out: Path | str | None,
    model_options: dict[str, Any],
    train_options: dict[str, Any],
) -> tuple[Checkpoint, ModelConfig, TrainConfig, list[Path | str], Path]:
    """A resumed run's checkpoint, configs (the options it may change applied), corpus (the
    checkpoint's own unless given) and run directory (the checkpoint's unless given)."""
    checkpoint = load_checkpoint(resolve_checkpoint_path(resume, "last.pt"))
    config = resume_config(
        checkpoint.train_config, checkpoint.model_config, model_options, train_options
    )
    sources = corpus or stored_corpus_paths(checkpoint.info.get("corpus", []), checkpoint.path)
    out_dir = Path(out) if out else checkpoint.path.parent
    return checkpoint, checkpoint.model_config, config, sources, out_dir


def _auto_resume(
    resume: Path | str | None,
    corpus: list[Path | str] | None,
    out: Path | str | None,
    init_from: Path | str | None,
) -> tuple[Path | str | None, Path | str | None]:
    """(resume, init_from) as given, or for --resume auto: the run directory's last.pt if there
    is one (a restarted fine-tuning run continues: last.pt keeps its lineage), else a new run."""
    if resume is None or str(resume) != RESUME_AUTO:
        return resume, init_from
    first = corpus[0] if corpus else resources.default_corpus_path()
    last = (Path(out) if out is not None else Path("runs") / corpus_label(first)) / "last.pt"
    return (last, None) if last.is_file() else (None, init_from)


def _finetune_configs(
    device_type: str,
    source: ModelConfig,
    model_options: dict[str, Any],
    train_options: dict[str, Any],
    source_name: str,
) -> tuple[ModelConfig, TrainConfig]:
    """Configs for a run that starts from `source`'s weights (--init-from source_name).

    The shape is the source's: a shape option with another value is an error naming the old and
    new value (the same value is accepted). Dropout is the source's unless given; the training
    options are the user's, else FINETUNE_DEFAULTS, else the device's, else the dataclass's.
    The model config keeps the source's vocab_size (set from the grown vocabulary later).
    """
    changes = [
        f"{flag(name)} {getattr(source, name)!r} -> {value!r}"
        for name, value in model_options.items()
        if name in SHAPE_FIELDS and value != getattr(source, name)
    ]
    if changes:
        raise ConfigError(
            f"the model's shape comes from {flag('init_from')} {source_name} ({source.shape}, "
            f"embedding {source.embedding_size}) and cannot change: "
            + ", ".join(changes)
            + " (leave the shape options out to fine-tune it)"
        )
    device_train = device_defaults(device_type).get("train", {})
    train_values = {**device_train, **FINETUNE_DEFAULTS, **train_options}
    model_config = replace(source, dropout=model_options.get("dropout", source.dropout))
    return model_config, TrainConfig(**train_values)


def _evaluate_each_pass(
    config: TrainConfig, total_chars: int, train_options: dict[str, Any]
) -> tuple[TrainConfig, dict[str, Any]]:
    """A fine-tuning run's config evaluating at least once per pass over its training text unless
    --eval-every was given, and the fine-tuning defaults it took. A small text is learnt, then
    overfitted, within a few passes: with the usual 250 steps between evaluations a 60-second
    run on a page of text evaluated once, at its end, long after its best point."""
    defaults = _taken(FINETUNE_DEFAULTS, train_options)
    train_chars = train_length(total_chars, config.val_fraction)
    per_pass = max(1, train_chars // (config.batch_size * config.seq_len))
    if "eval_every" not in train_options and per_pass < config.eval_every:
        defaults["eval_every"] = per_pass
        config = replace(config, eval_every=per_pass)
    return config, defaults


def _taken(defaults: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """The defaults the user's options left in force."""
    return {name: value for name, value in defaults.items() if name not in options}


def _check_init_from(
    init_from: Path | str | None, corpus: list[Path | str] | None, resume: Path | str | None
) -> None:
    if init_from is None:
        return
    if resume is not None:
        raise ConfigError(
            f"{flag('init_from')} starts a new run from another model's weights and --resume "
            "continues a run: give one (a fine-tuning run is continued with --resume alone)"
        )
    if not corpus:
        raise ConfigError(f"{flag('init_from')} needs a CORPUS to fine-tune on")


def _demo_corpus(train_options: dict[str, Any], notes: list[str]) -> list[Path | str]:
    """No corpus: the shipped text, as a short demo unless the user set a limit."""
    if "max_time" not in train_options and "max_steps" not in train_options:
        train_options["max_time"] = DEMO_MAX_TIME_S
    notes.append(
        f"no corpus given: a {_limit(train_options)} demo run on the shipped Shakespeare "
        "text. Give a CORPUS (a file, a directory or - for stdin) to train on your own "
        "text, and --max-time SECONDS to train longer"
    )
    return [resources.default_corpus_path()]


def _choose_threads(device: torch.device, threads: int | None) -> ThreadChoice | None:
    if device.type == "cpu":
        choice = choose_threads(threads, torch.get_num_threads())
        torch.set_num_threads(choice.count)
        return choice
    if threads is not None:
        torch.set_num_threads(threads)
    return None


def _limit(train_options: dict[str, Any]) -> str:
    if "max_time" in train_options:
        seconds = train_options["max_time"]
        return f"{seconds / 60:g}-minute" if seconds >= 60 else f"{seconds:g}-second"
    return f"{train_options['max_steps']:,}-step"
