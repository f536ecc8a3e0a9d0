"""The CharRNN network: embedding -> stacked recurrent core -> dropout -> linear over the vocabulary."""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig

# The recurrent state, always a tuple: (h, c) for an LSTM, (h,) for a GRU or vanilla RNN; each
# tensor is (layers, B, hidden). One shape for every cell, so no helper branches on the type.
State = tuple[torch.Tensor, ...]

_CORES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
_GATES = {"lstm": 4, "gru": 3, "rnn": 1}  # PyTorch stacks each layer's gate matrices in one


class CharRNN(nn.Module):
    """A character-level recurrent language model.

    forward(ids (B, T), state) always returns (logits (B, T, V), new state).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_size)
        # Vanilla RNN is s_t = tanh(U x_t + W s_{t-1}); all three use PyTorch's fused kernels.
        self.core = _CORES[config.cell](
            input_size=config.embedding_size,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        x = self.dropout(self.embedding(ids))  # (B, T, E)
        lstm = self.config.cell == "lstm"
        core_state = None if state is None else (state if lstm else state[0])
        out, core_state = self.core(x, core_state)  # (B, T, H)
        logits = self.head(self.dropout(out))  # (B, T, V)
        return logits, (tuple(core_state) if lstm else (core_state,))

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> State:
        device = device or self.head.weight.device
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)
        count = 2 if self.config.cell == "lstm" else 1
        return tuple(torch.zeros(shape, device=device) for _ in range(count))

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def parameter_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Each parameter's name and shape, in `CharRNN(config).parameters()` order, without building
    the model: a damaged checkpoint's config may ask for more memory than there is."""
    vocab, hidden = config.vocab_size, config.hidden_size
    gated = _GATES[config.cell] * hidden
    shapes: dict[str, tuple[int, ...]] = {"embedding.weight": (vocab, config.embedding_size)}
    for layer in range(config.num_layers):
        inputs = config.embedding_size if layer == 0 else hidden
        shapes[f"core.weight_ih_l{layer}"] = (gated, inputs)
        shapes[f"core.weight_hh_l{layer}"] = (gated, hidden)
        shapes[f"core.bias_ih_l{layer}"] = (gated,)
        shapes[f"core.bias_hh_l{layer}"] = (gated,)
    shapes["head.weight"] = (vocab, hidden)
    shapes["head.bias"] = (vocab,)
    return shapes


def decays(shape: torch.Size | tuple[int, ...]) -> bool:
    """Whether weight decay applies to a parameter of this shape: matrices yes, biases no."""
    return len(shape) >= 2


def detach_state(state: State | None) -> State | None:
    """Cut the graph at a window boundary (truncated BPTT) but keep the values."""
    return None if state is None else tuple(s.detach() for s in state)


def select_state(state: State, index: torch.Tensor | slice) -> State:
    """The state of a subset of the batch (dimension 1)."""
    return tuple(s[:, index] for s in state)


def state_to_cpu(state: State | None) -> list[torch.Tensor] | None:
    """The state as a list of CPU tensors, as a checkpoint stores it."""
    return None if state is None else [s.detach().cpu() for s in state]


def state_from_saved(saved: list[torch.Tensor] | None, device: torch.device) -> State | None:
    """The inverse of state_to_cpu, in float32 (a bf16 run's state converts back exactly)."""
    if not saved:
        return None
    return tuple(s.to(device, torch.float32) for s in saved)
