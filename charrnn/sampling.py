"""Turning logits into the next character, and the generation loop."""

from __future__ import annotations

import torch

from .model import CharRNN
from .vocab import Vocab


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    greedy: bool = False,
) -> torch.Tensor:
    """Next ids (B,) from logits (B, V): temperature, then top-k, then top-p, then a draw."""
    if greedy:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        # Drop a token when the mass before it already reaches top_p; the most likely always stays.
        drop_sorted = (cumulative - sorted_logits.softmax(dim=-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.inference_mode()
def preview(model: CharRNN, vocab: Vocab, length: int, seed: int, temperature: float = 0.8) -> str:
    """A short sample for the training log, from its own generator so training RNG is untouched."""
    device = model.head.weight.device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    was_training = model.training
    model.eval()
    start = vocab.index.get("\n", 0)
    ids = torch.tensor([[start]], device=device)
    state = None
    out: list[int] = []
    for _ in range(length):
        logits, state = model(ids, state)
        next_id = sample_next(logits[:, -1].cpu(), temperature, generator=generator)
        out.append(int(next_id))
        ids = next_id.view(1, 1).to(device)
    model.train(was_training)
    return vocab.decode(out)
