"""Integer-only inference of the GRU decoders (AEGRU, vanilla GRU; windowed and stateful): the NumPy
reference that the exported C code matches bit for bit.

Formats and rounding: :mod:`motordecode.export.fixedpoint`. One step, on integers only:

    x   = F[min(count, COUNT_MAX)]                     input feature table, Q.f_x
    u   = sat16((W_u x + b_u) >> (f_wu + f_x - f_u))   AEGRU's input FC (vanilla GRU: u = x)
    gi  = W_ih u + b_ih,  gh = W_hh h + b_hh           int32 (bias added in 64 bits, saturated), rows r, z, n
    r   = sigmoid(gi_r' + gh_r'),  z = sigmoid(gi_z' + gh_z')      ' : rescaled to Q.10
    n   = tanh(gi_n' + (r gh_n') >> 14)
    h   = n + (z (h - n)) >> 14                        Q.14
    y   = W_y h + b_y                                  int32 at Q.(f_wy + 14)
    v   = y 2^-(f_wy + 14) sigma_y + mu_y              the velocity, one multiply-add per axis

Every right shift rounds half up; every narrowing saturates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motordecode.data.features import TRANSFORMS
from motordecode.errors import ConfigError
from motordecode.export.fixedpoint import (INT16, INT32, PRE_FRAC, STATE_FRAC, frac_bits_for, quantize_weight,
                                           rshift_round, saturate, table_sigmoid, table_tanh, to_q)

COUNT_MAX = 1023        # sub-window counts above this read the table's last entry
SAMPLE_MAX = 65535      # one sample's count per channel is held as uint16 (larger counts saturate)


@dataclass
class IntLinear:
    """y = W x + b on integers: W int8 Q.f_w, x Q.f_in, b int32 at Q.(f_w + f_in)."""

    weight: np.ndarray     # (out, in) int8
    bias: np.ndarray       # (out,) int64 values of int32 range
    frac_w: int
    frac_in: int

    @classmethod
    def from_float(cls, weight, bias, frac_in: int) -> "IntLinear":
        w, frac_w = quantize_weight(np.asarray(weight, dtype=np.float64))
        b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
        return cls(w, to_q(b, frac_w + frac_in, INT32), frac_w, frac_in)

    @property
    def frac_out(self) -> int:
        return self.frac_w + self.frac_in

    def products(self, x: np.ndarray) -> np.ndarray:
        """W x without the bias, int64 (exact: int32 range by the format bound)."""
        return np.asarray(x, dtype=np.int64) @ self.weight.astype(np.int64).T

    def with_bias(self, products: np.ndarray) -> np.ndarray:
        """products + b, saturated to int32 (the bias is added in 64 bits)."""
        return saturate(products + self.bias, INT32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.with_bias(self.products(x))


def rescale(acc: np.ndarray, frac_from: int, frac_to: int, limits=INT32) -> np.ndarray:
    return saturate(rshift_round(acc, frac_from - frac_to), limits)


@dataclass
class CountTable:
    """F[c] = transform(c) in Q.f_x for integer sub-window counts c = 0 .. COUNT_MAX."""

    values: np.ndarray     # (COUNT_MAX + 1,) int16
    frac: int

    @classmethod
    def build(cls, transform: str | None) -> "CountTable":
        f = TRANSFORMS[transform]
        counts = np.arange(COUNT_MAX + 1, dtype=np.float32)
        exact = counts if f is None else f(counts)
        frac = frac_bits_for(float(np.abs(exact).max()), 16, 14)
        return cls(to_q(exact, frac, INT16).astype(np.int16), frac)

    def __call__(self, sums: np.ndarray) -> np.ndarray:
        counts = np.asarray(sums)
        if counts.size and counts.min() < 0:
            raise ConfigError("spike counts must be >= 0.")
        return self.values[np.minimum(counts, COUNT_MAX).astype(np.int64)].astype(np.int64)


@dataclass
class IntGRUCell:
    """The GRU step on Q.14 state, PyTorch's layout (rows r, z, n)."""

    ih: IntLinear
    hh: IntLinear
    hidden: int

    def gates(self, gi: np.ndarray, gh: np.ndarray, h: np.ndarray) -> np.ndarray:
        """h_t from the accumulated gi = W_ih u + b_ih, gh = W_hh h + b_hh (int32) and h_{t-1} (Q.14)."""
        H = self.hidden
        gi = rescale(gi, self.ih.frac_out, PRE_FRAC)
        gh = rescale(gh, self.hh.frac_out, PRE_FRAC)
        r = table_sigmoid(saturate(gi[..., :H] + gh[..., :H], INT32))
        z = table_sigmoid(saturate(gi[..., H:2 * H] + gh[..., H:2 * H], INT32))
        n = table_tanh(saturate(gi[..., 2 * H:] + rshift_round(r * gh[..., 2 * H:], STATE_FRAC), INT32))
        return n + rshift_round(z * (h - n), STATE_FRAC)

    def __call__(self, u: np.ndarray, h: np.ndarray) -> np.ndarray:
        return self.gates(self.ih(u), self.hh(h), h)


@dataclass
class IntegerGRU:
    """A GRU decoder in integers: feature table, optional input FC, cell, readout and output scale."""

    table: CountTable
    fc_in: IntLinear | None
    frac_u: int
    cell: IntGRUCell
    fc_out: IntLinear
    y_scale: np.ndarray    # (D,) float64: velocity = y 2^-frac_out * y_scale + y_shift
    y_shift: np.ndarray

    def encode(self, x: np.ndarray) -> np.ndarray:
        """u (Q.f_u) of feature ints x (Q.f_x)."""
        if self.fc_in is None:
            return x
        return rescale(self.fc_in(x), self.fc_in.frac_out, self.frac_u, INT16)

    def readout(self, h: np.ndarray) -> np.ndarray:
        """y (int32 at Q.(f_wy + 14)) of the state."""
        return self.fc_out(h)

    def velocity(self, y: np.ndarray) -> np.ndarray:
        """The recording's units: y 2^-frac * scale + shift, in float64 (as the C code computes it)."""
        return y.astype(np.float64) * self.out_factor + self.y_shift

    @property
    def out_factor(self) -> np.ndarray:
        return 2.0 ** -self.fc_out.frac_out * self.y_scale


def from_model(model, train_features: np.ndarray, transform: str | None) -> IntegerGRU:
    """Quantise a trained :class:`~motordecode.decoders.gru.model.GRUDecoder`. ``train_features``
    (N, C) float features of the training split calibrate the input FC's output format (its largest
    |u|, doubled for headroom)."""
    import torch

    config = model.config
    if config.batchnorm or config.layernorm:
        raise ConfigError("the integer export covers GRU decoders without BatchNorm and LayerNorm; "
                          "this run uses them (train with batchnorm=False layernorm=False).")
    table = CountTable.build(transform)
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    fc_in, frac_u = None, table.frac
    if model.fc_in is not None:
        with torch.no_grad():
            u = model.fc_in(torch.as_tensor(train_features, dtype=torch.float32)).numpy()
        frac_u = input_format(u)
        fc_in = IntLinear.from_float(sd["fc_in.weight"], sd["fc_in.bias"], table.frac)
    cell, fc_out, scale, shift = cell_and_readout(sd, "gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0",
                                                  "gru.bias_hh_l0", frac_u, config.hidden, config.n_outputs)
    return IntegerGRU(table, fc_in, frac_u, cell, fc_out, scale, shift)


def input_format(u: np.ndarray) -> int:
    """f_u: the most fractional bits (at most 14) that hold twice the largest |u| in int16."""
    return frac_bits_for(2 * float(np.abs(u).max(initial=1.0)), 16, 14)


def cell_and_readout(sd: dict, w_ih: str, w_hh: str, b_ih: str, b_hh: str, frac_u: int, hidden: int, outputs: int):
    """(cell, readout, output scale, output shift) of a float state dict (float64 arrays)."""
    cell = IntGRUCell(IntLinear.from_float(sd[w_ih], sd[b_ih], frac_u),
                      IntLinear.from_float(sd[w_hh], sd[b_hh], STATE_FRAC), hidden)
    fc_out = IntLinear.from_float(sd["fc_out.weight"], sd["fc_out.bias"], STATE_FRAC)
    scale = np.asarray(sd.get("y_scale", np.ones(outputs)), dtype=np.float64)
    shift = np.asarray(sd.get("y_shift", np.zeros(outputs)), dtype=np.float64)
    return cell, fc_out, scale, shift


def run_windowed(net: IntegerGRU, sums: np.ndarray) -> np.ndarray:
    """y (T, D) int of every sample's window: ``sums`` (T, k, C) integer sub-window counts, each
    window run through k steps from h = 0 (all windows in one batch)."""
    x = net.encode(net.table(sums))
    h = np.zeros((len(sums), net.cell.hidden), dtype=np.int64)
    for step in range(sums.shape[1]):
        h = net.cell(x[:, step], h)
    return net.readout(h)


def run_stateful(net: IntegerGRU, sums: np.ndarray, phases: int) -> np.ndarray:
    """y (T, D) int: ``sums`` (T, C) newest sub-window counts of consecutive samples from the
    start of a stream; sample j advances phase j mod ``phases`` (all states start at zero)."""
    x = net.encode(net.table(sums))
    steps = len(x)
    h = np.zeros((phases, net.cell.hidden), dtype=np.int64)
    y = np.zeros((steps, net.fc_out.weight.shape[0]), dtype=np.int64)
    for start in range(0, steps, phases):
        n = min(phases, steps - start)
        h[:n] = net.cell(x[start:start + n], h[:n])
        y[start:start + n] = net.readout(h[:n])
    return y
