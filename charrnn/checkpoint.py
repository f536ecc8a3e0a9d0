"""One self-contained checkpoint file: weights, vocabulary, configs, and (for resuming) the
training state. Saved atomically; loaded with weights_only=True so nothing arbitrary is unpickled.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import resources
from .checkpoint_schema import FORMAT_NAME, FORMAT_VERSION, check_contents, check_header
from .config import ModelConfig, TrainConfig, to_dict
from .device import resolve_device
from .errors import CheckpointError
from .model import CharRNN
from .runs import runs_hint
from .vocab import Vocab

# Test-only: seconds to pause inside every checkpoint write, so the kill -9 tests can land a
# kill while a checkpoint is half written. Unset (0) in any real use.
_TEST_SLOW_WRITE_S = float(os.environ.get("CHARRNN_TEST_SLOW_WRITE_S", "0") or 0)


@dataclass
class Checkpoint:
    model: CharRNN
    vocab: Vocab
    model_config: ModelConfig
    train_config: TrainConfig | None = None
    info: dict[str, Any] = field(default_factory=dict)  # step, best_val_loss, corpus, ...
    training_state: dict[str, Any] | None = None  # optimizer, RNG, carried state; last.pt only
    path: Path | None = None


def save_checkpoint(
    path: Path | str,
    model: CharRNN,
    vocab: Vocab,
    train_config: TrainConfig | None = None,
    info: dict[str, Any] | None = None,
    training_state: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write the checkpoint to a temporary file in the same directory, then rename it into
    place, so a crash never leaves a half-written file. `half` stores weights as float16."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {
        name: (
            t.detach().to("cpu", torch.float16)
            if half and t.is_floating_point()
            else t.detach().cpu()
        )
        for name, t in model.state_dict().items()
    }
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model_config": to_dict(model.config),
        "train_config": to_dict(train_config) if train_config else None,
        "vocab": vocab.to_string(),
        "model": weights,
        "info": dict(info or {}),
        "training": training_state,
    }
    try:
        descriptor, tmp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
    except OSError as problem:
        raise CheckpointError(f"cannot write {path}: {problem.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            if _TEST_SLOW_WRITE_S:
                time.sleep(_TEST_SLOW_WRITE_S)  # lets fault tests kill -9 in mid-write
            os.fsync(handle.fileno())
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        os.replace(tmp_name, path)
    except (OSError, RuntimeError) as problem:
        # torch reports a failed write (a full disk) as RuntimeError from its zip writer.
        Path(tmp_name).unlink(missing_ok=True)
        kept = f"; the previous {path.name} is kept" if path.exists() else ""
        raise CheckpointError(
            f"cannot write {path}: {_write_failure(problem, path.parent)}{kept}"
        ) from None
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _write_failure(problem: Exception, directory: Path) -> str:
    """Why a write failed, in words: torch's zip writer says only 'unexpected pos'."""
    if isinstance(problem, OSError) and problem.strerror:
        return problem.strerror
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        free = None
    if free is not None and free < 64 * 2**20:
        return f"no space left on device ({free / 2**20:.1f} MB free)"
    return str(problem).splitlines()[0] if str(problem) else type(problem).__name__


def resolve_checkpoint_path(
    path: Path | str, file_name: str = "best.pt", on_note: Callable[[str], None] | None = None
) -> Path:
    """A checkpoint file, or a run directory meaning its `file_name`.

    A run directory with no best.pt yet (a run before its first evaluation) means its last.pt;
    on_note, if given, is told so in a sentence for people.
    """
    path = Path(path)
    if path.is_dir():
        candidate, last = path / file_name, path / "last.pt"
        if candidate.is_file():
            return candidate
        if file_name == "best.pt" and last.is_file():
            if on_note is not None:
                step = _saved_step(last)
                at = "" if step is None else f" (step {step})"
                on_note(f"no best.pt yet in {path}: using last.pt{at}")
            return last
        also = " or last.pt" if file_name == "best.pt" else ""
        raise CheckpointError(f"run directory {path} has no {file_name}{also}")
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}{runs_hint(path)}")
    return path


def _saved_step(path: Path) -> int | None:
    """The step a checkpoint was saved at, read without loading its weights into memory."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(payload["info"]["step"])
    except Exception:  # an unreadable file is reported properly when it is loaded
        return None


def read_payload(path: Path) -> dict[str, Any]:
    """The raw checkpoint dict, refusing anything that would need arbitrary unpickling."""
    # We always write torch's zip format. Anything else (random bytes, text, a truncated file)
    # would reach torch's legacy pickle reader, which reports it as "unsafe" or fails with a
    # bare KeyError; say plainly what it is instead.
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not a readable checkpoint (not a PyTorch checkpoint file, or truncated)"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"{path} is not a safe charrnn checkpoint: it needs arbitrary unpickling, "
            "which charrnn refuses"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint ({reason})") from None
    check_header(payload, path)
    return payload


def load_checkpoint(path: Path | str, device: torch.device | str = "cpu") -> Checkpoint:
    """Load a checkpoint file (or a run directory's best.pt) onto `device`, in float32.

    Its structure is checked first (checkpoint_schema): a damaged file is a CheckpointError.
    """
    path = resolve_checkpoint_path(path)
    contents = check_contents(read_payload(path), path)
    # Building the model draws random initial weights; keep the caller's RNG untouched.
    with torch.random.fork_rng(devices=[]):
        model = CharRNN(contents.model_config)
    model.load_state_dict(contents.weights)  # copies float16 weights into float32 params
    model.to(device).eval()
    return Checkpoint(
        model=model,
        vocab=contents.vocab,
        model_config=contents.model_config,
        train_config=contents.train_config,
        info=contents.info,
        training_state=contents.training_state,
        path=path,
    )


def load_model(
    source: Checkpoint | Path | str | None = None,
    device: torch.device | str = "auto",
    on_note: Callable[[str], None] | None = None,
) -> Checkpoint:
    """The one way a model is found and put on a device, for sampling, scoring and the API.

    source: a loaded Checkpoint (moved to the device), a checkpoint file, a run directory (its
    best.pt, or last.pt before the first evaluation; on_note hears which) or None for the
    shipped model. device: 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device.
    """
    target = device if isinstance(device, torch.device) else resolve_device(device)
    if isinstance(source, Checkpoint):
        source.model.to(target).eval()
        return source
    if source is None:
        path = resources.default_checkpoint_path()
    else:
        path = resolve_checkpoint_path(source, on_note=on_note)
    return load_checkpoint(path, target)
