"""The GRU decoders' fast step (:mod:`motordecode.decoders.fast`): both inference modes of
:mod:`~motordecode.decoders.gru.inference` on NumPy state, one compiled kernel per sample.

The k sub-window sums and their features (``log_softplus``, the function training uses) come
from :class:`~motordecode.decoders.fast_window.SubWindowRing`. Then, with u = BN(W_u f + b_u) (or u = f
for the vanilla GRU; BN in eval form, a u + c, with a = gamma / sqrt(var + eps), c = beta - a mean):

    r = sigma(W_ir u + b_ir + W_hr h + b_hr),  z = sigma(W_iz u + b_iz + W_hz h + b_hz)
    n = tanh(W_in u + b_in + r (W_hn h + b_hn)),  h' = (h - n) z + n
    y = sigma_y (W_y LN(h') + b_y) + mu_y

Windowed: k GRU steps from h = 0 on the k sub-windows, y after the last. Stateful: phase
p = count mod w advances one step on the newest sub-window.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

from motordecode.decoders.fast import FastStep
from motordecode.decoders.fast_window import SubWindowRing
from motordecode.errors import ConfigError


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _sigmoid(v):
    return np.float32(1.0) / (np.float32(1.0) + np.float32(math.exp(-v)))


@njit(cache=True, nogil=True, error_model="numpy")
def _gru_step(f, h, use_fc, w_u_t, b_u, bn_a, bn_c, w_ih_t, b_ih, w_hh_t, b_hh, u, gi, gh):
    """h <- GRU(u(f), h) in place; u, gi, gh are work arrays. The weights come transposed
    (inputs x outputs), so each product is a run of vectorisable row updates."""
    hidden = h.shape[0]
    if use_fc:
        u[:] = 0.0
        for c in range(f.shape[0]):
            if f[c] != 0.0:
                for j in range(hidden):
                    u[j] += w_u_t[c, j] * f[c]
        for j in range(hidden):
            u[j] = (u[j] + b_u[j]) * bn_a[j] + bn_c[j]
    else:
        for c in range(f.shape[0]):
            u[c] = f[c]
    gi[:] = 0.0
    gh[:] = 0.0
    for i in range(u.shape[0]):
        for j in range(3 * hidden):
            gi[j] += w_ih_t[i, j] * u[i]
    for i in range(hidden):
        for j in range(3 * hidden):
            gh[j] += w_hh_t[i, j] * h[i]
    for j in range(hidden):
        r = _sigmoid(gi[j] + b_ih[j] + gh[j] + b_hh[j])
        z = _sigmoid(gi[hidden + j] + b_ih[hidden + j] + gh[hidden + j] + b_hh[hidden + j])
        n = np.float32(math.tanh(gi[2 * hidden + j] + b_ih[2 * hidden + j]
                                 + r * (gh[2 * hidden + j] + b_hh[2 * hidden + j])))
        h[j] = (h[j] - n) * z + n


@njit(cache=True, nogil=True, error_model="numpy")
def _readout(h, use_ln, ln_w, ln_b, ln_eps, w_y, b_y, scale, shift, work, y):
    """y = scale (W_y LN(h) + b_y) + shift (LN skipped when ``use_ln`` is False)."""
    hidden = h.shape[0]
    if use_ln:
        mean = np.float32(0.0)
        for j in range(hidden):
            mean += h[j]
        mean /= hidden
        var = np.float32(0.0)
        for j in range(hidden):
            var += (h[j] - mean) * (h[j] - mean)
        inv = np.float32(1.0) / np.float32(math.sqrt(var / hidden + ln_eps))
        for j in range(hidden):
            work[j] = (h[j] - mean) * inv * ln_w[j] + ln_b[j]
    else:
        for j in range(hidden):
            work[j] = h[j]
    for d in range(y.shape[0]):
        acc = np.float32(0.0)
        for j in range(hidden):
            acc += w_y[d, j] * work[j]
        y[d] = (acc + b_y[d]) * scale[d] + shift[d]


@njit(cache=True, nogil=True, error_model="numpy")
def _windowed(features, h, use_fc, w_u, b_u, bn_a, bn_c, w_ih, b_ih, w_hh, b_hh, u, gi, gh,
              use_ln, ln_w, ln_b, ln_eps, w_y, b_y, scale, shift, work, y):
    """k GRU steps from h = 0 over features (k, C), then the readout of the last."""
    h[:] = 0.0
    for m in range(features.shape[0]):
        _gru_step(features[m], h, use_fc, w_u, b_u, bn_a, bn_c, w_ih, b_ih, w_hh, b_hh, u, gi, gh)
    _readout(h, use_ln, ln_w, ln_b, ln_eps, w_y, b_y, scale, shift, work, y)


class GRUWeights:
    """The network's parameters as float32 NumPy arrays in the kernels' argument order."""

    def __init__(self, model):
        if model.fc_out.weight.dtype != torch.float32:
            raise ConfigError(f"the GRU fast step computes in float32; this model is {model.fc_out.weight.dtype}.")
        arr = lambda t: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)  # noqa: E731
        c, hidden, gru = model.config, model.config.hidden, model.gru
        ones, zeros = np.ones(hidden, np.float32), np.zeros(hidden, np.float32)
        if model.fc_in is not None:
            w_u, b_u = arr(model.fc_in.weight.t()), arr(model.fc_in.bias)
        else:
            w_u, b_u = np.zeros((1, 1), np.float32), zeros
        bn_a, bn_c = ones, zeros
        if model.bn is not None:
            bn = model.bn
            bn_a = arr(bn.weight) / np.sqrt(arr(bn.running_var) + np.float32(bn.eps))
            bn_c = arr(bn.bias) - bn_a * arr(bn.running_mean)
        self.cell = (model.fc_in is not None, w_u, b_u, bn_a.astype(np.float32), bn_c.astype(np.float32),
                     arr(gru.weight_ih_l0.t()), arr(gru.bias_ih_l0), arr(gru.weight_hh_l0.t()), arr(gru.bias_hh_l0))
        ln = model.ln
        scale = arr(model.y_scale) if model.y_scale is not None else np.ones(c.n_outputs, np.float32)
        shift = arr(model.y_shift) if model.y_shift is not None else np.zeros(c.n_outputs, np.float32)
        self.readout = (ln is not None, arr(ln.weight) if ln is not None else ones,
                        arr(ln.bias) if ln is not None else zeros, np.float32(ln.eps if ln is not None else 0.0),
                        arr(model.fc_out.weight), arr(model.fc_out.bias), scale, shift)
        n_in = hidden if model.fc_in is not None else c.n_channels
        self.work = (np.zeros(n_in, np.float32), np.zeros(3 * hidden, np.float32), np.zeros(3 * hidden, np.float32))
        self.readout_work = np.zeros(hidden, np.float32)
        self.hidden, self.n_outputs = hidden, c.n_outputs


class _GRUFast(FastStep):
    """The carried window of k sub-windows of w samples (their features), and ``states`` GRU states."""

    def __init__(self, model, n_channels: int, features, states: int):
        self.weights = GRUWeights(model)
        super().__init__(n_channels, self.weights.n_outputs)
        self.window = SubWindowRing(features.n_sub, features.sub_width, n_channels, transform=features.transform)
        self.width, self.history = features.sub_width, self.window.history
        self.h = np.zeros((states, self.weights.hidden), np.float32)
        self.reset()

    def reset(self) -> None:
        self.window.reset()
        self.h[:] = 0.0
        self.count = 0

    def warm(self, samples: np.ndarray) -> None:
        self.window.warm(samples)


class WindowedGRUFast(_GRUFast):
    def __init__(self, model, n_channels: int, features):
        super().__init__(model, n_channels, features, states=1)

    def step(self, x: np.ndarray) -> np.ndarray:
        features = self.window.push(x)
        y = np.empty(self.n_outputs, np.float32)
        w = self.weights
        _windowed(features, self.h[0], *w.cell, *w.work, *w.readout, w.readout_work, y)
        return y


class StatefulGRUFast(_GRUFast):
    """Phase p = count mod w: one GRU state per phase."""

    def __init__(self, model, n_channels: int, features):
        super().__init__(model, n_channels, features, states=features.sub_width)

    def step(self, x: np.ndarray) -> np.ndarray:
        features = self.window.push(x)
        h = self.h[self.count % self.width]
        self.count += 1
        y = np.empty(self.n_outputs, np.float32)
        w = self.weights
        _gru_step(features[0], h, *w.cell, *w.work)
        _readout(h, *w.readout, w.readout_work, y)
        return y
