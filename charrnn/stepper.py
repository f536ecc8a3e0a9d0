"""Running a trained CharRNN one character at a time, fast.

`model.forward` on one character spends far more on nn.LSTM's per-call set-up than on the
arithmetic. `Stepper` instead does the cell's arithmetic by hand on the model's own weights, with
every buffer allocated once, so a step is a short, fixed list of in-place ATen calls (17 for a
2-layer LSTM) and nothing is created per character:

- layer 1's input projection is precomputed for every character: a (V, gates) table holding
  embedding @ W_ih^T + biases, so reading a character is a row gather;
- deeper layers read [h_below, h_own] as one contiguous slice of a single state buffer, so their
  two matrix products are one `addmm` against the concatenated weights (not for GRU, whose n gate
  needs the two apart);
- LSTM gates are reordered to (i, f, o, g) so one sigmoid covers three of them;
- each layer is a closure over its buffers: at ~1.5 us per op, look-ups around the ops count.

It computes the same function as `model.forward` in eval mode (tests check the logits match).
On CPU the matrix products may use reduced-precision weights (`precision`): fp16 or int8 through
PyTorch's fbgemm kernels, which read 2x or 4x fewer bytes per character than fp32, or bf16
through oneDNN on a CPU with bf16 matrix units, for batches of samples.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

from .model import CharRNN, State

# out <- x @ W^T (+ bias), or out += x @ W^T
Product = Callable[[torch.Tensor, torch.Tensor], None]


def step_weight_bytes(model: CharRNN) -> int:
    """Bytes of fp32 weights a step reads: all matrices but layer 1's W_ih (a table row)."""
    matrices = [
        p
        for name, p in model.core.named_parameters()
        if name.startswith("weight") and name != "weight_ih_l0"
    ]
    return 4 * (sum(p.numel() for p in matrices) + model.head.weight.numel())


def make_product(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    precision: str = "fp32",
    accumulate: bool = False,
) -> Product:
    """A matrix product against `weight` (N, K) in the given precision, writing into `out`."""
    if precision == "fp32":
        weight_t = weight.contiguous().t()
        if accumulate:
            return lambda x, out: out.addmm_(x, weight_t)
        if bias is None:
            return lambda x, out: torch.mm(x, weight_t, out=out)
        return lambda x, out: torch.addmm(bias, x, weight_t, out=out)
    if precision == "bf16":  # oneDNN's bf16 products; the bias is added in fp32
        weight_bf16 = weight.to(torch.bfloat16).t()
        bias_fp32 = None if bias is None else bias.float()

        def product_bf16(x: torch.Tensor, out: torch.Tensor) -> None:
            result = torch.mm(x.to(torch.bfloat16), weight_bf16)
            if accumulate:
                out.add_(result)
            elif bias_fp32 is None:
                out.copy_(result)
            else:
                torch.add(bias_fp32, result, out=out)

        return product_bf16
    if precision == "fp16":
        packed = torch.ops.quantized.linear_prepack_fp16(weight.contiguous(), bias)
        run = torch.ops.quantized.linear_dynamic_fp16
        fresh = lambda x: run(x.contiguous(), packed)  # noqa: E731
    else:  # int8, one scale per output row; activations quantized on the fly (7-bit on x86)
        scales = weight.abs().amax(1).clamp_min(1e-12).double() / 127
        zero_points = torch.zeros(weight.size(0), dtype=torch.long)
        with warnings.catch_warnings():  # qint8 tensors are deprecated but still what fbgemm takes
            warnings.simplefilter("ignore", UserWarning)
            quantized = torch.quantize_per_channel(
                weight.contiguous(), scales, zero_points, 0, torch.qint8
            )
        packed = torch.ops.quantized.linear_prepack(quantized, bias)
        run = torch.ops.quantized.linear_dynamic
        fresh = lambda x: run(x.contiguous(), packed, True)  # noqa: E731
    if accumulate:
        return lambda x, out: out.add_(fresh(x))
    return lambda x, out: out.copy_(fresh(x))


class Stepper:
    """A batch of `batch_size` streams stepped together. step(ids (B,), logits_out (B, V))."""

    @torch.no_grad()
    def __init__(self, model: CharRNN, batch_size: int, precision: str = "fp32"):
        config = model.config
        self.cell, self.precision = config.cell, precision
        self.num_layers, self.hidden_size = config.num_layers, config.hidden_size
        self.batch_size = batch_size
        self.device = device = model.head.weight.device
        if precision != "fp32" and device.type != "cpu":
            raise ValueError(f"{precision} weights are for CPU only, not {device.type}")
        self.width = {"lstm": 4, "gru": 3, "rnn": 1}[self.cell] * self.hidden_size
        self._prepare_weights(model)
        self._allocate_buffers()
        self._views()
        build = {"lstm": self._lstm_layer, "gru": self._gru_layer, "rnn": self._rnn_layer}[
            self.cell
        ]
        self._layers = [build(layer) for layer in range(self.num_layers)]
        self._head = self.products["head"]

    def _prepare_weights(self, model: CharRNN) -> None:
        """The input table and every matrix product, in the step's gate order and precision."""
        core, hidden, device = model.core, self.hidden_size, self.device

        def weight(name: str, layer: int) -> torch.Tensor:
            return getattr(core, f"{name}_l{layer}").detach().float()

        if self.cell == "lstm":  # PyTorch's (i, f, g, o) -> (i, f, o, g)
            order = torch.cat(
                [
                    torch.arange(0, 2 * hidden),
                    torch.arange(3 * hidden, 4 * hidden),
                    torch.arange(2 * hidden, 3 * hidden),
                ]
            ).to(device)
        else:
            order = torch.arange(self.width, device=device)

        def input_side_bias(layer: int) -> torch.Tensor:
            # A GRU's b_hn sits inside r * (W_hn h + b_hn): only b_hr and b_hz may join the input
            # side; b_hn stays with the recurrent product.
            recurrent = weight("bias_hh", layer).clone()
            if self.cell == "gru":
                recurrent[2 * hidden :] = 0
            return (weight("bias_ih", layer) + recurrent)[order]

        embedding = model.embedding.weight.detach().float()  # (V, E)
        self.table = (
            embedding @ weight("weight_ih", 0)[order].t() + input_side_bias(0)
        ).contiguous()  # (V, width)
        # The matrices whose bytes are read once per character, in the kernels' (N, K) layout.
        self.weights: dict[str, torch.Tensor] = {}
        self.products: dict[str, Product] = {}

        def add_product(
            name: str, matrix: torch.Tensor, bias: torch.Tensor | None, accumulate: bool = False
        ) -> None:
            self.weights[name] = matrix
            self.products[name] = make_product(matrix, bias, self.precision, accumulate)

        for layer in range(self.num_layers):
            recurrent = weight("weight_hh", layer)[order]
            if self.cell == "gru":
                hidden_bias = torch.cat(
                    [torch.zeros(2 * hidden, device=device), weight("bias_hh", layer)[2 * hidden :]]
                )
                add_product(f"hidden{layer}", recurrent, hidden_bias)
                if layer > 0:
                    add_product(f"input{layer}", weight("weight_ih", layer), input_side_bias(layer))
            elif layer == 0:
                add_product("hidden0", recurrent, None, accumulate=True)
            else:
                merged = torch.cat([weight("weight_ih", layer)[order], recurrent], 1)
                add_product(f"input{layer}", merged, input_side_bias(layer))
        add_product("head", model.head.weight.detach().float(), model.head.bias.detach().float())

    def _allocate_buffers(self) -> None:
        """Every buffer a step writes, made once: a step creates no tensor."""
        batch, layers, hidden = self.batch_size, self.num_layers, self.hidden_size

        def buffer(*shape: int) -> torch.Tensor:
            return torch.zeros(*shape, device=self.device)

        # One row per stream holding [h_1, ..., h_L]: layer l reads [h_{l-1}, h_l] as one slice.
        self.hidden_state = buffer(batch, layers * hidden)
        self.cell_state = buffer(batch, layers * hidden) if self.cell == "lstm" else None
        self.gates = [buffer(batch, self.width) for _ in range(layers)]
        # Scratch space for the gate arithmetic: an LSTM needs tanh(c), a GRU its hidden-side
        # pre-activations and h - n; a vanilla RNN needs none.
        scratch_width = {"lstm": hidden, "gru": self.width, "rnn": 0}[self.cell]
        self.scratch = [buffer(batch, scratch_width) for _ in range(layers)]
        self.gru_scratch = [
            buffer(batch, hidden if self.cell == "gru" else 0) for _ in range(layers)
        ]

    def bytes_per_step(self) -> int:
        """Weight bytes read per step: every matrix once, plus one table row per stream."""
        per_element = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}[self.precision]
        matrices = sum(matrix.numel() for matrix in self.weights.values()) * per_element
        return matrices + self.table.size(1) * 4 * self.batch_size

    def _views(self) -> None:
        """Slices of the buffers, made once: creating a view costs as much as a small op."""
        hidden = self.hidden_size

        def columns(t: torch.Tensor, start: int, stop: int) -> torch.Tensor:
            return t[:, start * hidden : stop * hidden]

        layers = range(self.num_layers)
        self.h = [columns(self.hidden_state, i, i + 1) for i in layers]
        self.layer_input = [None] + [columns(self.hidden_state, i - 1, i + 1) for i in layers[1:]]
        if self.cell == "lstm":
            self.c = [columns(self.cell_state, i, i + 1) for i in layers]
            # (sigmoid part, i, f, o, g) of each layer's gates
            self.lstm_gates = [
                (
                    columns(g, 0, 3),
                    columns(g, 0, 1),
                    columns(g, 1, 2),
                    columns(g, 2, 3),
                    columns(g, 3, 4),
                )
                for g in self.gates
            ]
        if self.cell == "gru":
            # input side (rz, r, z, n) and hidden side (rz, n) of each layer
            self.gru_input = [
                (columns(g, 0, 2), columns(g, 0, 1), columns(g, 1, 2), columns(g, 2, 3))
                for g in self.gates
            ]
            self.gru_hidden = [(columns(g, 0, 2), columns(g, 2, 3)) for g in self.scratch]

    # -- state in the model's own format: (layers, B, hidden), a pair for LSTM ---------------

    @torch.no_grad()
    def load_state(self, state: State) -> None:
        """Copy a state from `model.forward` (batch 1 is broadcast to every stream)."""
        buffers = [self.hidden_state] + ([self.cell_state] if self.cell_state is not None else [])
        for part, target in zip(state, buffers, strict=True):
            per_stream = target.view(self.batch_size, self.num_layers, self.hidden_size)
            per_stream.copy_(part.transpose(0, 1).expand_as(per_stream))

    def state(self) -> State:
        """A copy of the current state, shaped like `model.forward`'s."""

        def to_model(buffer: torch.Tensor) -> torch.Tensor:
            per_stream = buffer.view(self.batch_size, self.num_layers, self.hidden_size)
            return per_stream.transpose(0, 1).contiguous()

        if self.cell_state is not None:
            return (to_model(self.hidden_state), to_model(self.cell_state))
        return (to_model(self.hidden_state),)

    # -- one step ----------------------------------------------------------------------------

    def step(self, ids: torch.Tensor, logits_out: torch.Tensor) -> None:
        """Read one character per stream (ids: (B,) int64) and write next logits (B, V)."""
        for layer in self._layers:
            layer(ids)
        self._head(self.h[-1], logits_out)

    def _projection(self, layer: int) -> Callable[[torch.Tensor], None]:
        """Writes the layer's input-side pre-activations into its gates buffer."""
        gates = self.gates[layer]
        if layer == 0:
            table = self.table
            if self.cell == "gru":  # its recurrent product goes to the hidden side

                def gather(ids: torch.Tensor) -> None:
                    torch.index_select(table, 0, ids, out=gates)

                return gather
            h, add_recurrent = self.h[0], self.products["hidden0"]

            def first(ids: torch.Tensor) -> None:
                torch.index_select(table, 0, ids, out=gates)
                add_recurrent(h, gates)

            return first
        below = self.h[layer - 1] if self.cell == "gru" else self.layer_input[layer]
        product = self.products[f"input{layer}"]

        def deeper(ids: torch.Tensor) -> None:
            product(below, gates)

        return deeper

    def _lstm_layer(self, layer: int) -> Callable[[torch.Tensor], None]:
        project, h, c = self._projection(layer), self.h[layer], self.c[layer]
        tanh_c = self.scratch[layer]
        sigmoid_part, i, f, o, g = self.lstm_gates[layer]

        def run(ids: torch.Tensor) -> None:
            project(ids)
            sigmoid_part.sigmoid_()
            g.tanh_()
            c.mul_(f).addcmul_(i, g)
            torch.tanh(c, out=tanh_c)
            torch.mul(o, tanh_c, out=h)

        return run

    def _gru_layer(self, layer: int) -> Callable[[torch.Tensor], None]:
        project, h, difference = self._projection(layer), self.h[layer], self.gru_scratch[layer]
        hidden_product, hidden_gates = self.products[f"hidden{layer}"], self.scratch[layer]
        rz, r, z, n = self.gru_input[layer]
        hidden_rz, hidden_n = self.gru_hidden[layer]

        def run(ids: torch.Tensor) -> None:
            project(ids)
            hidden_product(h, hidden_gates)
            rz.add_(hidden_rz).sigmoid_()
            n.addcmul_(r, hidden_n).tanh_()
            torch.sub(h, n, out=difference)
            torch.addcmul(n, z, difference, out=h)  # h' = (1 - z) n + z h

        return run

    def _rnn_layer(self, layer: int) -> Callable[[torch.Tensor], None]:
        # s_t = tanh(U x_t + W s_{t-1}): the model's RNN is always tanh (config.CELLS).
        project, pre, h = self._projection(layer), self.gates[layer], self.h[layer]

        def run(ids: torch.Tensor) -> None:
            project(ids)
            torch.tanh(pre, out=h)

        return run
