"""Synaptic operations counted from recorded activity and weight masks.

Per step (one input sample in streaming: 4 ms on the benchmark sessions, one bin on binned data),
for a layer with weights W and input x:

- effective = number of products with a nonzero weight AND a nonzero input, ``sum_j [x_j != 0] nnz(W[:, j])``;
- dense = all products (``out x in`` for Linear); biases are not counted;
- a step counts as ACs when its input holds only {-1, 0, 1} (spikes), else as MACs.

Recurrent cells, as NeuroBench counts them on binarised values ``b(v) = [v != 0]``:

- GRUCell: the products of W_ih x and W_hh h, plus the H products ``r * (W_hn h + b_hn)``, plus
  ``(1 - z) * n`` and ``z * h``. ``n`` is nonzero when ``W_in x + b_in + r * (W_hn h + b_hn)`` is.
  NeuroBench 2.3.0 builds n from ``W_hn h`` and the single bias element ``b_ih[2]`` instead (its
  masking slip) and treats r, z as zero when their pre-activation is; ``neurobench_gru_slip=True``
  reproduces its count exactly. With nonzero biases both agree; they differ once biases are pruned. Dense = ``3H(I + H) + 3H``.
- LSTMCell: products of W_ih x and W_hh h, plus ``f * c + i * g``, plus ``o * tanh(c)``.
- Full nn.GRU / nn.LSTM layers are counted step by step with the hidden state they produced
  (NeuroBench reports 0 for them).
- Custom layers (the project's spiking layers) declare ``synaptic_inputs(module, inputs, output)``:
  the (weight, presynaptic rows) pairs of one call that are not already ``nn.Linear`` submodules
  called on their own (e.g. the recurrent weights applied to the previous step's spikes inside a
  time loop). Each pair is counted like a Linear layer: spikes in -> ACs, other values -> MACs; a
  pair (None, marks) counts one MAC per nonzero mark (elementwise products of real values, e.g. gates).

Each counter returns totals over the recorded calls; divide by the number of steps for per-step values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from motordecode.errors import MetricError
from motordecode.metrics.activity import LayerCalls


@dataclass
class OpCounts:
    effective_macs: float = 0.0
    effective_acs: float = 0.0
    dense: float = 0.0

    def __add__(self, other: "OpCounts") -> "OpCounts":
        return OpCounts(self.effective_macs + other.effective_macs, self.effective_acs + other.effective_acs,
                        self.dense + other.dense)

    def per_step(self, n_steps: int) -> "OpCounts":
        if n_steps <= 0:
            raise MetricError("operations per step need at least one step.")
        return OpCounts(self.effective_macs / n_steps, self.effective_acs / n_steps, self.dense / n_steps)

    def as_neurobench(self) -> dict:
        """The counts under the keys of NeuroBench's SynapticOperations result."""
        return {"Effective_MACs": self.effective_macs, "Effective_ACs": self.effective_acs, "Dense": self.dense}


def _b(t: torch.Tensor) -> torch.Tensor:
    """Binarise: 1.0 where nonzero."""
    return (t != 0).to(torch.float64)


def _spiking_rows(x: torch.Tensor) -> torch.Tensor:
    """Per row (first dim), whether all its values lie in {-1, 0, 1}."""
    flat = x.reshape(len(x), -1)
    return ((flat == 0) | (flat == 1) | (flat == -1)).all(dim=1)


def _split(effective: torch.Tensor, spiking: torch.Tensor, dense: float) -> OpCounts:
    eff = effective.to(torch.float64)
    return OpCounts(float(eff[~spiking].sum()), float(eff[spiking].sum()), dense)


def _rows(calls: LayerCalls, index: int = 0, feature_dims: int = 1) -> torch.Tensor:
    """Stack argument ``index`` of every call into (rows, *features)."""
    tensors = []
    for args in calls.inputs:
        x = args[index]
        tensors.append(x.reshape(-1, *x.shape[x.dim() - feature_dims:]))
    return torch.cat(tensors)


# -- stateless layers ----------------------------------------------------------------------------
def _matrix_ops(weight: torch.Tensor, x: torch.Tensor) -> OpCounts:
    """Products of ``weight`` (out, in) with each row of ``x`` (rows, in)."""
    nnz_per_input = _b(weight.detach()).sum(dim=0)
    effective = _b(x) @ nnz_per_input
    return _split(effective, _spiking_rows(x), float(len(x) * weight.numel()))


def linear_ops(calls: LayerCalls, neurobench_gru_slip: bool = False) -> OpCounts:
    return _matrix_ops(calls.module.weight, _rows(calls))


def declared_ops(calls: LayerCalls, neurobench_gru_slip: bool = False) -> OpCounts:
    """A custom layer's own connections, from its ``synaptic_inputs`` declaration."""
    total = OpCounts()
    for args, output in zip(calls.inputs, calls.outputs):
        for weight, rows in calls.module.synaptic_inputs(calls.module, args, output):
            total = total + (_elementwise_ops(rows) if weight is None else _matrix_ops(weight, rows))
    return total


def _elementwise_ops(rows: torch.Tensor) -> OpCounts:
    """One MAC per nonzero value of ``rows`` (rows, n): elementwise products of real values, such as
    a gate's (``rows`` marks which products happen; its values are not operands)."""
    return OpCounts(float(_b(rows).sum()), 0.0, float(rows.numel()))


def conv_ops(calls: LayerCalls, neurobench_gru_slip: bool = False) -> OpCounts:
    layer = calls.module
    dims = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}[type(layer)]
    x = _rows(calls, feature_dims=dims + 1)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    kwargs = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
    if layer.padding_mode != "zeros":
        raise MetricError(f"{type(layer).__name__} with padding_mode={layer.padding_mode!r} is not supported.")
    w = layer.weight.detach()
    effective = conv(_b(x), _b(w), None, **kwargs).reshape(len(x), -1).sum(dim=1)
    dense = conv(torch.ones_like(x[:1], dtype=torch.float64), torch.ones_like(w, dtype=torch.float64), None,
                 **kwargs).sum()
    return _split(effective, _spiking_rows(x), float(dense) * len(x))


# -- recurrent cells -----------------------------------------------------------------------------
def _gate_products(x, h, w_ih, w_hh):
    return _b(x) @ _b(w_ih).T, _b(h) @ _b(w_hh).T


def gru_step_counts(x, h, w_ih, w_hh, b_ih, b_hh, neurobench_gru_slip=False) -> torch.Tensor:
    """Effective operations of a GRU step for each row of x (B, I) and previous state h (B, H).

    A product counts when both operands are nonzero; a sum is nonzero when any of its terms is
    (structural zeros: pruned weights, zero inputs, zero state). The gates r = sigmoid(.) and
    z = sigmoid(.) are never zero, so ``r * (W_hn h + b_hn)`` counts where ``W_hn h + b_hn`` is
    nonzero, ``(1 - z) * n`` where n is, and ``z * h`` where h is.
    """
    hidden = w_hh.shape[1]
    out_ih, out_hh = _gate_products(x, h, w_ih, w_hh)
    bias_ih = _b(b_ih) if b_ih is not None else torch.zeros(3 * hidden, dtype=torch.float64)
    bias_hh = _b(b_hh) if b_hh is not None else torch.zeros(3 * hidden, dtype=torch.float64)
    products = out_ih.sum(dim=1) + out_hh.sum(dim=1)
    hh_n = (out_hh[:, 2 * hidden :] + bias_hh[2 * hidden :]) != 0
    if neurobench_gru_slip:
        return products + _neurobench_gru_gating(out_ih, out_hh, bias_ih, bias_hh, hh_n, h, hidden)
    r_term = hh_n
    n = (out_ih[:, 2 * hidden :] + bias_ih[2 * hidden :] + r_term) != 0
    return products + r_term.sum(dim=1) + n.sum(dim=1) + (h != 0).sum(dim=1)


def _neurobench_gru_gating(out_ih, out_hh, bias_ih, bias_hh, hh_n, h, hidden) -> torch.Tensor:
    """NeuroBench 2.3.0's count of the gating products, slips included: r and z are zero when their
    pre-activation has no nonzero term, ``1 - z`` is taken before z is binarised, and n is built from
    ``W_hn h`` and the single bias element ``b_ih[2]`` instead of ``W_in x`` and ``b_in``."""
    gates = out_ih + out_hh + bias_ih + bias_hh
    r, z = gates[:, :hidden] != 0, gates[:, hidden : 2 * hidden]
    r_term = (r & hh_n).to(torch.float64)
    n = (out_hh[:, 2 * hidden :] + bias_ih[2] + r_term) != 0
    return r_term.sum(dim=1) + (((1 - z) != 0) & n).sum(dim=1) + ((z != 0) & (h != 0)).sum(dim=1)


def lstm_step_counts(x, h, c, w_ih, w_hh, b_ih, b_hh) -> torch.Tensor:
    """Effective operations of an LSTM step for each row: gates, f*c + i*g, o*tanh(c)."""
    hidden = w_hh.shape[1]
    out_ih, out_hh = _gate_products(x, h, w_ih, w_hh)
    biases = (_b(b_ih) + _b(b_hh)) if b_ih is not None else 0.0
    gates = (out_ih + out_hh + biases) != 0
    i, f, g, o = (gates[:, k * hidden : (k + 1) * hidden].to(torch.float64) for k in range(4))
    c_new = f * _b(c) + i * g
    return out_ih.sum(dim=1) + out_hh.sum(dim=1) + c_new.sum(dim=1) + (o * _b(c_new)).sum(dim=1)


def _dense_of(step_counts, inputs: int, hidden: int, **weights) -> float:
    ones = lambda *shape: torch.ones(*shape, dtype=torch.float64)  # noqa: E731
    full = {k: (None if v is None else torch.ones_like(v)) for k, v in weights.items()}
    states = [ones(1, hidden)] * (2 if step_counts is lstm_step_counts else 1)
    return float(step_counts(ones(1, inputs), *states, **full)[0])


def _cell_weights(module, suffix=""):
    get = lambda name: getattr(module, name + suffix, None)  # noqa: E731
    return dict(w_ih=get("weight_ih").detach(), w_hh=get("weight_hh").detach(),
                b_ih=None if get("bias_ih") is None else get("bias_ih").detach(),
                b_hh=None if get("bias_hh") is None else get("bias_hh").detach())


def recurrent_cell_ops(calls: LayerCalls, neurobench_gru_slip: bool = False) -> OpCounts:
    cell = calls.module
    weights = _cell_weights(cell)
    xs, hs, cs = [], [], []
    for args in calls.inputs:
        x = args[0].reshape(-1, cell.input_size)
        state = args[1] if len(args) > 1 else None
        zeros = torch.zeros(len(x), cell.hidden_size)
        if isinstance(cell, nn.LSTMCell):
            h, c = state if state is not None else (zeros, zeros)
            cs.append(c.reshape(-1, cell.hidden_size))
        else:
            h = state if state is not None else zeros
        xs.append(x)
        hs.append(h.reshape(-1, cell.hidden_size))
    x, h = torch.cat(xs), torch.cat(hs)
    if isinstance(cell, nn.LSTMCell):
        effective = lstm_step_counts(x, h, torch.cat(cs), **weights)
        dense = _dense_of(lstm_step_counts, cell.input_size, cell.hidden_size, **weights)
    else:
        effective = gru_step_counts(x, h, **weights, neurobench_gru_slip=neurobench_gru_slip)
        dense = _dense_of(gru_step_counts, cell.input_size, cell.hidden_size, **weights)
    return _split(effective, _spiking_rows(x), dense * len(x))


def recurrent_layer_ops(calls: LayerCalls, neurobench_gru_slip: bool = False) -> OpCounts:
    """Full nn.GRU / nn.LSTM (one layer, one direction), counted step by step."""
    layer = calls.module
    name = type(layer).__name__
    if layer.num_layers != 1 or layer.bidirectional or getattr(layer, "proj_size", 0):
        raise MetricError(f"{name}(num_layers={layer.num_layers}, bidirectional={layer.bidirectional}): only "
                          "single-layer, unidirectional layers without projection are counted.")
    weights = _cell_weights(layer, "_l0")
    total = OpCounts()
    for args, output in zip(calls.inputs, calls.outputs):
        x = args[0]
        seq, state = output
        if isinstance(x, nn.utils.rnn.PackedSequence):
            raise MetricError(f"{name}: packed sequences are not counted; pass a padded tensor.")
        if x.dim() == 2:  # unbatched (T, I)
            x, seq = x[:, None], seq[:, None]
        elif layer.batch_first:
            x, seq = x.transpose(0, 1), seq.transpose(0, 1)
        steps, batch = x.shape[:2]
        given = args[1] if len(args) > 1 else None
        h0 = torch.zeros(1, batch, layer.hidden_size)
        c0 = torch.zeros(1, batch, layer.hidden_size)
        if given is not None:
            h0, c0 = (given if isinstance(layer, nn.LSTM) else (given, c0))
            h0, c0 = h0.reshape(1, batch, -1), c0.reshape(1, batch, -1)
        h_prev = torch.cat([h0, seq[:-1]])
        rows_x = x.reshape(-1, layer.input_size)
        rows_h = h_prev.reshape(-1, layer.hidden_size)
        if isinstance(layer, nn.LSTM):
            c_prev = _lstm_cell_states(x, h_prev, c0[0], **weights).reshape(-1, layer.hidden_size)
            effective = lstm_step_counts(rows_x, rows_h, c_prev, **weights)
            dense = _dense_of(lstm_step_counts, layer.input_size, layer.hidden_size, **weights)
        else:
            effective = gru_step_counts(rows_x, rows_h, **weights, neurobench_gru_slip=neurobench_gru_slip)
            dense = _dense_of(gru_step_counts, layer.input_size, layer.hidden_size, **weights)
        total = total + _split(effective, _spiking_rows(rows_x), dense * len(rows_x))
    return total


def _lstm_cell_states(x, h_prev, c0, w_ih, w_hh, b_ih, b_hh) -> torch.Tensor:
    """c_{t-1} for every step: gates from x_t and h_{t-1} at once, then c_t = f c_{t-1} + i g."""
    pre = x @ w_ih.T + h_prev @ w_hh.T
    if b_ih is not None:
        pre = pre + b_ih + b_hh
    i, f, g, _ = pre.chunk(4, dim=-1)
    i, f, g = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g)
    states, c = [], c0
    for t in range(len(x)):
        states.append(c)
        c = f[t] * c + i[t] * g[t]
    return torch.stack(states)


# every counter takes (calls, neurobench_gru_slip); only the recurrent ones use the flag
COUNTERS = {
    nn.Linear: linear_ops,
    nn.Conv1d: conv_ops, nn.Conv2d: conv_ops, nn.Conv3d: conv_ops,
    nn.GRUCell: recurrent_cell_ops, nn.LSTMCell: recurrent_cell_ops,
    nn.GRU: recurrent_layer_ops, nn.LSTM: recurrent_layer_ops,
}


def layer_ops(name: str, calls: LayerCalls, neurobench_gru_slip: bool = False) -> OpCounts:
    """Operations of one recorded layer; raises MetricError naming the layer when it cannot count."""
    counter = COUNTERS.get(type(calls.module))
    if counter is None and hasattr(calls.module, "synaptic_inputs"):
        counter = declared_ops
    if counter is None:
        raise MetricError(f"layer '{name}' ({type(calls.module).__name__}): no operation count is defined.")
    if not calls.inputs:
        return OpCounts()
    try:
        return counter(calls, neurobench_gru_slip=neurobench_gru_slip)
    except MetricError as exc:
        raise MetricError(f"layer '{name}': {exc}") from None
    except (RuntimeError, ValueError, IndexError, TypeError) as exc:
        raise MetricError(f"layer '{name}' ({type(calls.module).__name__}): cannot count operations ({exc}).") from None


def model_ops(layers: dict[str, LayerCalls], neurobench_gru_slip: bool = False) -> OpCounts:
    total = OpCounts()
    for name, calls in layers.items():
        total = total + layer_ops(name, calls, neurobench_gru_slip)
    return total
