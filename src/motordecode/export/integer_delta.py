"""Integer-only inference of the delta GRU (:mod:`motordecode.decoders.delta`), the NumPy reference
of its C code. The thresholds are compared on integers, and the accumulated products are exact
integer sums (no drift between M and W x^):

    Dx  = dx [|dx| > Theta_x'],  dx = x - x^,  x^ += Dx        x: feature table ints, Q.f_x
    M_u += W_u Dx;   u = sat16((M_u + b_u) >> (f_wu + f_x - f_u))
    Du  = du [|du| > Theta_u'],  Dh = dh [|dh| > Theta_h']      (Q.f_u and Q.14)
    M_i += W_ih Du;  M_h += W_hh Dh                             int32, rows r, z, n
    h   = GRU gates of (M_i + b_ih, M_h + b_hh, h)              as in integer_gru
    y   = W_y h + b_y

Theta' = round(Theta 2^f) in each value's format.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from motordecode.export.fixedpoint import INT16, STATE_FRAC, to_q
from motordecode.export.integer_gru import (CountTable, IntegerGRU, IntLinear, cell_and_readout, input_format,
                                           rescale)


@dataclass
class IntegerDelta(IntegerGRU):
    theta_x: int = 0
    theta_u: int = 0
    theta_h: int = 0


def from_delta_model(model, train_features: np.ndarray, transform: str | None) -> IntegerDelta:
    """Quantise a trained :class:`~motordecode.decoders.delta.model.DeltaGRUNet`; ``train_features``
    (N, C) calibrate the format of u."""
    table = CountTable.build(transform)
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    with torch.no_grad():
        u = torch.as_tensor(train_features, dtype=torch.float32) @ model.fc_in.weight.t() + model.fc_in.bias
    frac_u = input_format(u.numpy())
    cell, fc_out, scale, shift = cell_and_readout(sd, "cell.weight_ih", "cell.weight_hh", "cell.bias_ih",
                                                  "cell.bias_hh", frac_u, model.config.hidden, model.config.n_outputs)

    def threshold(name: str, frac: int) -> int:
        return int(to_q(sd[name], frac, INT16))

    return IntegerDelta(table, IntLinear.from_float(sd["fc_in.weight"], sd["fc_in.bias"], table.frac), frac_u, cell,
                        fc_out, scale, shift, threshold("fc_in.theta", table.frac), threshold("cell.theta_x", frac_u),
                        threshold("cell.theta_h", STATE_FRAC))


def _delta(value: np.ndarray, reference: np.ndarray, theta: int) -> np.ndarray:
    change = value - reference
    return np.where(np.abs(change) > theta, change, 0)


def run_delta(net: IntegerDelta, sums: np.ndarray) -> np.ndarray:
    """y (T, D) int of consecutive samples' newest sub-window counts ``sums`` (T, C), from the zero state."""
    x = net.table(sums)
    H = net.cell.hidden
    x_ref = np.zeros(x.shape[1], dtype=np.int64)
    m_u = np.zeros(H, dtype=np.int64)
    u_ref, h, h_ref = (np.zeros(H, dtype=np.int64) for _ in range(3))
    m_i, m_h = np.zeros(3 * H, dtype=np.int64), np.zeros(3 * H, dtype=np.int64)
    y = np.zeros((len(x), net.fc_out.weight.shape[0]), dtype=np.int64)
    for t in range(len(x)):
        dx = _delta(x[t], x_ref, net.theta_x)
        x_ref = x_ref + dx
        m_u = m_u + net.fc_in.products(dx)
        u = rescale(net.fc_in.with_bias(m_u), net.fc_in.frac_out, net.frac_u, INT16)
        du = _delta(u, u_ref, net.theta_u)
        dh = _delta(h, h_ref, net.theta_h)
        u_ref, h_ref = u_ref + du, h_ref + dh
        m_i = m_i + net.cell.ih.products(du)
        m_h = m_h + net.cell.hh.products(dh)
        h = net.cell.gates(net.cell.ih.with_bias(m_i), net.cell.hh.with_bias(m_h), h)
        y[t] = net.readout(h)
    return y

