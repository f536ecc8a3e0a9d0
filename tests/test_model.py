"""The CharRNN network: shapes, state, and the recurrent cells."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from charrnn.config import ModelConfig
from charrnn.errors import ConfigError
from charrnn.model import CharRNN, detach_state, parameter_shapes, select_state

CELLS = ["lstm", "gru", "rnn"]


def tiny_model(cell: str, num_layers: int = 2, dropout: float = 0.0, seed: int = 0) -> CharRNN:
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=11,
        cell=cell,
        num_layers=num_layers,
        hidden_size=16,
        embedding_size=8,
        dropout=dropout,
    )
    return CharRNN(config).eval()


def state_tensors(state) -> list[torch.Tensor]:
    assert isinstance(state, tuple)  # every cell: (h, c) or (h,)
    return list(state)


@pytest.mark.parametrize("cell", CELLS)
def test_forward_returns_logits_per_position_and_a_state(cell):
    model = tiny_model(cell, num_layers=3)
    ids = torch.randint(0, 11, (4, 7))

    logits, state = model(ids)

    assert logits.shape == (4, 7, 11)  # (B, T, V)
    tensors = state_tensors(state)
    assert len(tensors) == (2 if cell == "lstm" else 1)  # LSTM carries (h, c)
    for tensor in tensors:
        assert tensor.shape == (3, 4, 16)  # (layers, B, hidden)
    initial = state_tensors(model.initial_state(4))
    assert [t.shape for t in initial] == [t.shape for t in tensors]
    assert all(not t.any() for t in initial)


@pytest.mark.parametrize("cell", CELLS)
def test_one_pass_over_a_sequence_equals_one_character_at_a_time(cell):
    model = tiny_model(cell)
    ids = torch.randint(0, 11, (3, 9))

    with torch.no_grad():
        whole, whole_state = model(ids)
        state = None
        steps = []
        for t in range(ids.size(1)):
            logits, state = model(ids[:, t : t + 1], state)
            steps.append(logits)

    torch.testing.assert_close(torch.cat(steps, dim=1), whole, rtol=1e-5, atol=1e-6)
    for a, b in zip(state_tensors(state), state_tensors(whole_state), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_the_carried_state_changes_the_prediction(cell):
    model = tiny_model(cell)
    ids = torch.randint(0, 11, (2, 5))

    with torch.no_grad():
        _, state = model(ids)
        fresh, _ = model(ids[:, :1])
        carried, _ = model(ids[:, :1], state)

    assert not torch.allclose(fresh, carried)


def test_vanilla_rnn_is_tanh_of_input_plus_recurrent_term():
    model = tiny_model("rnn", num_layers=1)
    core = model.core
    assert isinstance(core, nn.RNN) and core.nonlinearity == "tanh"
    ids = torch.randint(0, 11, (2, 6))

    with torch.no_grad():
        logits, final = model(ids)
        x = model.embedding(ids)
        s = torch.zeros(2, 16)
        outputs = []
        for t in range(ids.size(1)):
            # s_t = tanh(U x_t + W s_{t-1})
            s = torch.tanh(
                x[:, t] @ core.weight_ih_l0.T
                + core.bias_ih_l0
                + s @ core.weight_hh_l0.T
                + core.bias_hh_l0
            )
            outputs.append(s)
        expected = model.head(torch.stack(outputs, dim=1))

    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-6)
    (h,) = final  # a vanilla RNN's state is (h,), h being (layers, B, hidden)
    torch.testing.assert_close(h[0], s, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("cell", "module"), [("lstm", nn.LSTM), ("gru", nn.GRU), ("rnn", nn.RNN)])
def test_each_cell_uses_pytorchs_fused_module(cell, module):
    model = tiny_model(cell, num_layers=2, dropout=0.3)

    assert type(model.core) is module
    assert model.core.num_layers == 2
    assert model.core.hidden_size == 16
    assert model.core.dropout == pytest.approx(0.3)  # between layers
    assert model.dropout.p == pytest.approx(0.3)


def test_single_layer_has_no_inter_layer_dropout():
    model = tiny_model("lstm", num_layers=1, dropout=0.5)

    assert model.core.dropout == 0.0
    assert model.dropout.p == 0.5  # embeddings and outputs still get it


def test_dropout_is_active_in_training_and_off_in_eval():
    model = tiny_model("gru", dropout=0.5)
    ids = torch.randint(0, 11, (2, 8))

    with torch.no_grad():
        eval_a, _ = model.eval()(ids)
        eval_b, _ = model(ids)
        train_a, _ = model.train()(ids)
        train_b, _ = model(ids)

    assert torch.equal(eval_a, eval_b)
    assert not torch.equal(train_a, train_b)


def test_parameter_count_matches_the_modules():
    model = tiny_model("lstm", num_layers=2)
    embedding = 11 * 8
    layer1 = 4 * (16 * 8 + 16 * 16 + 2 * 16)
    layer2 = 4 * (16 * 16 + 16 * 16 + 2 * 16)
    head = 16 * 11 + 11

    assert model.num_parameters() == embedding + layer1 + layer2 + head


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 3])
def test_parameter_shapes_are_the_built_models_without_building_it(cell, num_layers):
    model = tiny_model(cell, num_layers=num_layers)
    built = [(name, tuple(p.shape)) for name, p in model.named_parameters()]
    assert list(parameter_shapes(model.config).items()) == built
    assert list(model.state_dict()) == [name for name, _ in built]  # no buffers besides


@pytest.mark.parametrize("cell", CELLS)
def test_detach_and_select_state_keep_values_and_pick_batch_rows(cell):
    model = tiny_model(cell)
    model.train()
    _, state = model(torch.randint(0, 11, (4, 3)))

    detached = detach_state(state)
    picked = select_state(state, torch.tensor([2, 0]))

    for original, cut, rows in zip(
        state_tensors(state), state_tensors(detached), state_tensors(picked), strict=True
    ):
        assert original.requires_grad and not cut.requires_grad
        assert torch.equal(original.detach(), cut)
        assert torch.equal(rows, original[:, [2, 0]])
    assert detach_state(None) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cell": "lstmx"}, "--model must be one of lstm, gru, rnn"),
        ({"num_layers": 0}, "--layers must be between 1 and 64"),
        ({"hidden_size": -1}, "--hidden must be at least 1"),
        ({"embedding_size": 0}, "--embedding must be at least 1"),
        ({"dropout": 1.0}, r"--dropout must be in \[0, 1\)"),
        ({"dropout": -0.1}, r"--dropout must be in \[0, 1\)"),
    ],
)
def test_nonsense_model_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(vocab_size=5, **options)
