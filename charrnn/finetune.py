"""Starting a new run from another model's weights: `charrnn train TEXT --init-from SOURCE`.

The source is a checkpoint file, a run directory or a shipped model by short name. Its shape is
kept; its vocabulary grows by the characters of the new text it never saw, and keeps every
character it knew, so the fine-tuned model still reads all the source could. Rows are mapped by
character, not by position (the vocabulary stays sorted, so a new character moves the ids of
those after it). A new character enters with the mean of the old embedding rows and an output
row that cannot fire yet: weight 0 and a bias NEW_CHAR_BIAS_GAP nats below the lowest old bias,
so at step 0 every old character's probability is the source's to about 1e-9.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import resources
from .checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint_path
from .config import flag
from .errors import CheckpointError
from .text import plural
from .vocab import Vocab, describe_chars

# How far below the source's lowest output bias a new character's bias starts (nats). The
# shipped model's log-normaliser never falls below 3 on its corpus or on licence texts while its
# biases lie within 0.16 of 0, so a new character starts below e^-23 of the total. Adam lifts
# its logit by about --lr x (1 + |h|) per step: fine-tuning the shipped model at the CPU default
# lr, 50 new characters went from 25 nats each to 2.5 in 120 steps (bench_finetune.py).
NEW_CHAR_BIAS_GAP = 20.0


@dataclass(frozen=True)
class Source:
    """A loaded --init-from SOURCE, and the name lineage records it under."""

    checkpoint: Checkpoint
    name: str  # the shipped model's short name, or the checkpoint file's path


@dataclass(frozen=True)
class InitialWeights:
    """Where a fine-tuning run starts: its vocabulary, the weights for it, and their origin."""

    vocab: Vocab
    weights: dict[str, torch.Tensor]  # a CharRNN state_dict with len(vocab) rows
    lineage: dict[str, Any]  # info["init_from"]: source, corpus_sha256, step
    new_chars: list[str]  # characters the source never saw, added to its vocabulary


def _is_short_name(text: str) -> bool:
    return bool(text) and "/" not in text and "\\" not in text and "." not in text


def find_source(
    source: Path | str, on_note: Callable[[str], None] | None = None
) -> tuple[Path, str]:
    """The checkpoint file a SOURCE names, and the name lineage records: a file, a run directory
    (its best.pt, else last.pt) or a shipped model's short name. A path that exists wins."""
    text = str(source)
    path = Path(source)
    if path.exists():
        found = resolve_checkpoint_path(path, on_note=on_note)
        return found, str(found)
    if _is_short_name(text):
        return resources.shipped_model_path(text), text
    raise CheckpointError(
        f"{flag('init_from')} {text}: no such checkpoint file or run directory "
        f"(shipped models by name: {resources.shipped_model_names()})"
    )


def load_source(source: Path | str, on_note: Callable[[str], None] | None = None) -> Source:
    """Load a SOURCE on the CPU; CheckpointError (one line) for anything unusable."""
    path, name = find_source(source, on_note)
    return Source(load_checkpoint(path), name)


def grown_vocab(source: Vocab, text: Vocab) -> Vocab:
    """The source's characters and the text's, sorted: nothing the source knew is dropped."""
    return Vocab([*source.chars, *text.chars])


def transfer_weights(
    weights: dict[str, torch.Tensor], source_vocab: Vocab, vocab: Vocab
) -> dict[str, torch.Tensor]:
    """`weights` (a CharRNN state_dict over source_vocab) for `vocab`, a superset of it.

    The recurrent core is copied; the embedding and output rows move to their character's new
    id; new characters get the mean embedding and an output row that cannot fire yet.
    """
    missing = [char for char in source_vocab.chars if char not in vocab]
    if missing:
        raise ValueError(f"vocab lacks source characters {describe_chars(missing)}")
    rows = torch.tensor([vocab.index[char] for char in source_vocab.chars], dtype=torch.long)
    grown = {name: tensor.detach().clone().float() for name, tensor in weights.items()}

    embedding = grown["embedding.weight"]  # (V_old, E)
    new_embedding = embedding.mean(0, keepdim=True).repeat(len(vocab), 1)  # (V, E)
    new_embedding[rows] = embedding
    head_weight, head_bias = grown["head.weight"], grown["head.bias"]  # (V_old, H), (V_old,)
    new_head_weight = head_weight.new_zeros(len(vocab), head_weight.size(1))  # (V, H)
    new_head_weight[rows] = head_weight
    new_head_bias = head_bias.new_full((len(vocab),), float(head_bias.min()) - NEW_CHAR_BIAS_GAP)
    new_head_bias[rows] = head_bias

    grown.update(
        {
            "embedding.weight": new_embedding,
            "head.weight": new_head_weight,
            "head.bias": new_head_bias,
        }
    )
    return grown


def initial_weights(source: Source, text_vocab: Vocab) -> InitialWeights:
    """The start of a run on a text with vocabulary `text_vocab` from `source`'s weights."""
    old = source.checkpoint.vocab
    vocab = grown_vocab(old, text_vocab)
    weights = transfer_weights(source.checkpoint.model.state_dict(), old, vocab)
    info = source.checkpoint.info
    lineage = {
        "source": source.name,
        "corpus_sha256": info.get("corpus_sha256"),
        "step": info.get("step"),
    }
    return InitialWeights(vocab, weights, lineage, old.unknown_chars(text_vocab.to_string()))


def describe_start(source: Source, initial: InitialWeights, defaults: dict[str, Any]) -> str:
    """A sentence for people: what the run starts from, what it adds, which defaults it takes."""
    config, old = source.checkpoint.model_config, source.checkpoint.vocab
    step = source.checkpoint.info.get("step")
    at = "" if step is None else f", step {step}"
    added = (
        f"; added {plural(len(initial.new_chars), 'character')} it never saw: "
        f"{describe_chars(initial.new_chars)}"
        if initial.new_chars
        else ""
    )
    shown = ", ".join(f"{flag(name)} {value:g}" for name, value in defaults.items())
    taken = f"; fine-tuning defaults: {shown}" if shown else ""
    return f"fine-tuning {source.name} ({config.shape}, vocabulary {len(old)}{at}){added}{taken}"
