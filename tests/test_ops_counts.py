"""Operation counts: hand counts where NeuroBench is wrong, full recurrent layers, LSTM and Conv1d
against NeuroBench's per-layer counter, and errors that surface instead of becoming 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from neurobench.metrics.utils.layers import single_layer_MACs
from torch import nn

from motordecode.errors import MetricError
from motordecode.metrics.activity import ActivityRecorder
from motordecode.metrics.ops import model_ops
from motordecode.metrics.r2 import r2_score
from motordecode.metrics.sparsity import connection_sparsity
from neurobench_reference import run_neurobench


def _count(net, *inputs, slip=False):
    with torch.no_grad(), ActivityRecorder(net) as rec:
        net(*inputs)
    return model_ops(rec.layers, neurobench_gru_slip=slip)


def _cell(weight_ih, weight_hh, bias=0.0):
    cell = nn.GRUCell(weight_ih.shape[1], weight_hh.shape[1])
    with torch.no_grad():
        cell.weight_ih.copy_(weight_ih)
        cell.weight_hh.copy_(weight_hh)
        cell.bias_ih.fill_(bias)
        cell.bias_hh.fill_(bias)
    return cell


def test_gru_mask_slip_by_hand():
    """I=2, H=1, pruned biases; only the n-gate sees x_1, only the z-gate sees x_0. Input x=(0, 1), h=0.

    Products: W_ih x has one (W_in * x_1); W_hh h none; r * (W_hn h + b_hn) none (it is 0);
    (1 - z) * n one (n = tanh(W_in x_1) != 0 and 1 - z = 0.5); z * h none. True count: 2.
    NeuroBench builds n from W_hn h and b_ih[2] (both 0), misses (1 - z) * n and reports 1.
    """
    cell = _cell(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0], [0.0], [1.0]]))
    x, h = torch.tensor([[0.0, 1.0]]), torch.zeros(1, 1)
    with torch.no_grad():
        new_h = cell(x, h)
    assert new_h.abs().item() > 0  # the (1 - z) * n product really contributes
    ours = _count(cell, x, h)
    assert ours.effective_macs + ours.effective_acs == 2
    reference, _ = single_layer_MACs((x, h), cell)
    assert reference == 1
    assert _count(cell, x, h, slip=True).effective_acs == reference


def _true_gru_count(cell, x, h):
    """Brute force on the actual values: products whose two operands are both nonzero."""
    w_ih, w_hh, b_ih, b_hh = (p.detach().double() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh))
    x, h = x.double()[0], h.double()[0]
    H = cell.hidden_size
    count = int(((w_ih != 0) & (x != 0)).sum() + ((w_hh != 0) & (h != 0)).sum())
    gi, gh = w_ih @ x + b_ih, w_hh @ h + b_hh
    r = torch.sigmoid(gi[:H] + gh[:H])
    z = torch.sigmoid(gi[H : 2 * H] + gh[H : 2 * H])
    hn = gh[2 * H :]
    n = torch.tanh(gi[2 * H :] + r * hn)
    count += int(((r != 0) & (hn != 0)).sum() + ((1 - z != 0) & (n != 0)).sum() + ((z != 0) & (h != 0)).sum())
    return count


def test_gru_counts_equal_brute_force_on_random_pruned_cells():
    rng = np.random.default_rng(0)
    for trial in range(200):
        I, H = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        cell = nn.GRUCell(I, H)
        with torch.no_grad():
            for p in cell.parameters():
                p.mul_(torch.from_numpy(rng.random(p.shape) < 0.5).float())
        x = torch.from_numpy(rng.integers(0, 2, (1, I)) * rng.normal(size=(1, I))).float()
        h = torch.from_numpy(rng.integers(0, 2, (1, H)) * rng.normal(size=(1, H))).float()
        ops = _count(cell, x, h)
        assert ops.effective_macs + ops.effective_acs == _true_gru_count(cell, x, h), trial
        assert ops.dense == 3 * H * (I + H) + 3 * H


class SequenceGRU(nn.Module):
    def __init__(self, full: bool):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 8), nn.Linear(8, 2)
        self.rnn = nn.GRU(8, 8) if full else nn.GRUCell(8, 8)

    def forward(self, x):  # x (T, 1, 6)
        a = self.fc1(x.reshape(len(x), -1))
        if isinstance(self.rnn, nn.GRU):
            h, _ = self.rnn(a)
        else:
            h, states = torch.zeros(1, 8), []
            for row in a:
                h = self.rnn(row[None], h)
                states.append(h)
            h = torch.cat(states)
        return self.fc2(h)


def test_full_gru_layer_is_counted_step_by_step_where_neurobench_reports_zero():
    torch.manual_seed(1)
    cells, full = SequenceGRU(full=False), SequenceGRU(full=True)
    with torch.no_grad():
        full.fc1.load_state_dict(cells.fc1.state_dict())
        full.fc2.load_state_dict(cells.fc2.state_dict())
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(full.rnn, name + "_l0").copy_(getattr(cells.rnn, name))
            getattr(full.rnn, name + "_l0")[::3] = 0  # prune some rows
            getattr(cells.rnn, name)[::3] = 0
    x = (torch.rand(40, 1, 6) < 0.4).float() * torch.randint(1, 4, (40, 1, 6))
    with torch.no_grad():
        torch.testing.assert_close(full(x), cells(x))
    a, b = _count(full, x), _count(cells, x)
    assert a == b and a.effective_macs > 0
    reference = run_neurobench(full, x[:, 0], torch.randn(40, 2))["SynapticOperations"]
    # NeuroBench: the GRU's error is swallowed in the first step, its hook is never re-registered,
    # so only the two Linear layers (6*8 + 8*2 = 64 dense per step) are counted, over 39 "samples"
    assert reference["Dense"] * 39 == pytest.approx(64 * 40)
    assert a.dense / 40 == 64 + 3 * 8 * (8 + 8) + 3 * 8


def test_lstm_cell_and_conv1d_match_neurobench_layer_counts():
    torch.manual_seed(2)
    cell = nn.LSTMCell(5, 4)
    conv = nn.Conv1d(3, 4, kernel_size=3, padding=1)
    with torch.no_grad():
        cell.weight_ih[torch.rand_like(cell.weight_ih) < 0.5] = 0
        conv.weight[torch.rand_like(conv.weight) < 0.5] = 0
    x = (torch.rand(1, 5) < 0.5).float() * 2.5
    h, c = (torch.rand(1, 4) < 0.5).float() * 0.3, (torch.rand(1, 4) < 0.5).float()
    ours = _count(cell, x, (h, c))
    effective, _ = single_layer_MACs((x, (h, c)), cell)
    assert ours.effective_macs == effective
    # NeuroBench's all-ones copy does not reach the nested (h, c) state, so its "dense" count keeps
    # the state's zeros; with an all-ones state it is the true dense count
    dense_with_ones, _ = single_layer_MACs((x, (torch.ones(1, 4), torch.ones(1, 4))), cell, total=True)
    dense_as_reported, _ = single_layer_MACs((x, (h, c)), cell, total=True)
    assert ours.dense == dense_with_ones == 4 * 4 * (5 + 4) + 2 * 4 + 4
    assert dense_as_reported < ours.dense
    signal = (torch.rand(2, 3, 7) < 0.3).float()
    ours = _count(conv, signal)
    effective, spiking = single_layer_MACs(signal, conv)
    dense, _ = single_layer_MACs(signal, conv, total=True)
    assert spiking and (ours.effective_acs, ours.dense) == (effective, dense)


def test_full_lstm_layer_equals_its_cell_step_by_step():
    torch.manual_seed(3)
    layer, cell = nn.LSTM(4, 3), nn.LSTMCell(4, 3)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(layer, name + "_l0"))
    x = (torch.rand(25, 1, 4) < 0.5).float()
    layer_ops = _count(layer, x)
    total, state = None, (torch.zeros(1, 3), torch.zeros(1, 3))
    for t in range(len(x)):
        step = _count(cell, x[t], state)
        total = step if total is None else total + step
        with torch.no_grad():
            state = cell(x[t], state)
    assert layer_ops == total


@pytest.mark.parametrize("module,inputs,message", [
    (nn.RNNCell(3, 2), (torch.ones(1, 3),), "layer '' \\(RNNCell\\): no operation count is defined"),
    (nn.GRU(3, 2, num_layers=2), (torch.ones(4, 1, 3),), "only single-layer, unidirectional"),
])
def test_metric_errors_surface(module, inputs, message):
    with pytest.raises(MetricError, match=message):
        _count(module, *inputs)


def test_other_metric_errors():
    with pytest.raises(MetricError, match="no Linear, Conv or recurrent layer"):
        connection_sparsity(nn.Sequential(nn.ReLU()))
    with pytest.raises(MetricError, match="labels of axis 1 are constant"):
        r2_score(np.zeros((5, 2)), np.stack([np.arange(5.0), np.ones(5)], axis=1))
    with pytest.raises(MetricError, match="same \\(T, D\\) shape"):
        r2_score(np.zeros((5, 2)), np.zeros((4, 2)))
