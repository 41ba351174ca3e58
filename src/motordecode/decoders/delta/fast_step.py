"""The delta GRU's fast step (:mod:`motordecode.decoders.fast`): :mod:`~motordecode.decoders.delta.model`
on NumPy state in one compiled kernel per sample, the newest sub-window's features in.

    Dx = (f - x^) [|f - x^| > Theta_x],  x^ <- x^ + Dx,  u = W_u x^ + b_u
    Du = (u - u^) [|.| > Theta_u],  u^ <- u^ + Du;   Dh = (h - h^) [|.| > Theta_h],  h^ <- h^ + Dh
    M_rz += W_i,rz Du + W_h,rz Dh;  M_nx += W_in Du;  M_nh += W_hn Dh
    r, z = sigma(M_rz + b_rz);  n = tanh(M_nx + b_in + r (M_nh + b_hn));  h = (1 - z) n + z h
    y = sigma_y (W_y h + b_y) + mu_y

Only the nonzero deltas cost products (the weights come transposed, one row per delta).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

from motordecode.decoders.fast import FastStep
from motordecode.decoders.fast_window import SubWindowRing
from motordecode.decoders.gru.fast_step import _sigmoid
from motordecode.errors import ConfigError


@njit(cache=True, nogil=True, error_model="numpy")
def _delta_step(f, x_ref, u_ref, h, h_ref, m, theta_x, theta_u, theta_h, w_u_t, b_u, w_ih_t, w_hh_t,
                b_rz, b_in, b_hn, w_y, b_y, scale, shift, u, gi, gh, y):
    hidden = h.shape[0]
    for c in range(f.shape[0]):
        dx = f[c] - x_ref[c]
        if abs(dx) > theta_x:
            x_ref[c] = x_ref[c] + dx
    u[:] = 0.0
    for c in range(x_ref.shape[0]):
        if x_ref[c] != 0.0:
            for j in range(hidden):
                u[j] += w_u_t[c, j] * x_ref[c]
    gi[:] = 0.0
    gh[:] = 0.0
    for i in range(hidden):
        du = u[i] + b_u[i] - u_ref[i]
        if abs(du) > theta_u:
            u_ref[i] = u_ref[i] + du
            for j in range(3 * hidden):
                gi[j] += w_ih_t[i, j] * du
    for i in range(hidden):
        dh = h[i] - h_ref[i]
        if abs(dh) > theta_h:
            h_ref[i] = h_ref[i] + dh
            for j in range(3 * hidden):
                gh[j] += w_hh_t[i, j] * dh
    for j in range(2 * hidden):
        m[j] = m[j] + (gi[j] + gh[j])
    for j in range(hidden):
        m[2 * hidden + j] = m[2 * hidden + j] + gi[2 * hidden + j]
        m[3 * hidden + j] = m[3 * hidden + j] + gh[2 * hidden + j]
    for j in range(hidden):
        r = _sigmoid(m[j] + b_rz[j])
        z = _sigmoid(m[hidden + j] + b_rz[hidden + j])
        n = np.float32(math.tanh(m[2 * hidden + j] + b_in[j] + r * (m[3 * hidden + j] + b_hn[j])))
        h[j] = (np.float32(1.0) - z) * n + z * h[j]
    for d in range(y.shape[0]):
        acc = np.float32(0.0)
        for j in range(hidden):
            acc += w_y[d, j] * h[j]
        y[d] = (acc + b_y[d]) * scale[d] + shift[d]


class DeltaGRUFast(FastStep):
    def __init__(self, model, n_channels: int, features):
        if model.fc_out.weight.dtype != torch.float32:
            raise ConfigError(f"the delta GRU fast step computes in float32; this model is {model.fc_out.weight.dtype}.")
        arr = lambda t: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)  # noqa: E731
        c, cell, hidden = model.config, model.cell, model.config.hidden
        super().__init__(n_channels, c.n_outputs)
        self.window = SubWindowRing(1, features.sub_width, n_channels, transform=features.transform)
        self.history = self.window.history
        b_ih, b_hh = arr(cell.bias_ih), arr(cell.bias_hh)
        self.params = (np.float32(model.fc_in.theta), np.float32(cell.theta_x), np.float32(cell.theta_h),
                       arr(model.fc_in.weight.t()), arr(model.fc_in.bias), arr(cell.weight_ih.t()),
                       arr(cell.weight_hh.t()), b_ih[:2 * hidden] + b_hh[:2 * hidden], b_ih[2 * hidden:],
                       b_hh[2 * hidden:], arr(model.fc_out.weight), arr(model.fc_out.bias), arr(model.y_scale),
                       arr(model.y_shift))
        self.state = tuple(np.zeros(n, np.float32) for n in (n_channels, hidden, hidden, hidden, 4 * hidden))
        self.work = (np.zeros(hidden, np.float32), np.zeros(3 * hidden, np.float32), np.zeros(3 * hidden, np.float32))

    def reset(self) -> None:
        self.window.reset()
        for array in self.state:
            array[:] = 0.0

    def warm(self, samples: np.ndarray) -> None:
        self.window.warm(samples)

    def step(self, x: np.ndarray) -> np.ndarray:
        features = self.window.push(x)
        y = np.empty(self.n_outputs, np.float32)
        _delta_step(features[0], *self.state, *self.params, *self.work, y)
        return y
