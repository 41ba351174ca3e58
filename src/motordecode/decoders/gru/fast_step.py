"""The GRU decoders' fast step (:mod:`motordecode.decoders.fast`): both inference modes of
:mod:`~motordecode.decoders.gru.inference` on NumPy state, compiled kernels per sample.

The newest sub-window's features f (``log_softplus`` of its sums, the function training uses)
come from :class:`~motordecode.decoders.fast_window.SubWindowRing`, and its input projection
g = W_i u + b_i with u = BN(W_u f + b_u) (u = f for the vanilla GRU; BN in eval form, a u + c, with
a = gamma / sqrt(var + eps), c = beta - a mean). Then

    r = sigma(g_r + W_hr h + b_hr),  z = sigma(g_z + W_hz h + b_hz)
    n = tanh(g_n + r (W_hn h + b_hn)),  h' = (h - n) z + n
    y = sigma_y (W_y LN(h') + b_y) + mu_y

Stateful: phase p = count mod w advances one step on g. Windowed: k GRU steps from h = 0 on the
projections of the k sub-windows, y after the last. Sub-window m of sample t is the newest
sub-window of sample t - (k - 1 - m) w, so each projection is computed once, when its sub-window
is the newest, and kept in a ring of the last k w (the same numbers as computing all k anew).
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
def _project(f, use_fc, w_u_t, b_u, bn_a, bn_c, w_ih_t, u, g):
    """g = W_i u(f) (without b_i); u is a work array. The weights come transposed (inputs x
    outputs), so each product is a run of vectorisable row updates."""
    if use_fc:
        u[:] = 0.0
        for c in range(f.shape[0]):
            if f[c] != 0.0:
                for j in range(u.shape[0]):
                    u[j] += w_u_t[c, j] * f[c]
        for j in range(u.shape[0]):
            u[j] = (u[j] + b_u[j]) * bn_a[j] + bn_c[j]
    else:
        for c in range(f.shape[0]):
            u[c] = f[c]
    g[:] = 0.0
    for i in range(u.shape[0]):
        for j in range(g.shape[0]):
            g[j] += w_ih_t[i, j] * u[i]


@njit(cache=True, nogil=True, error_model="numpy")
def _recur(g, h, b_ih, w_hh_t, b_hh, gh):
    """h <- the GRU update from the input projection g (without b_i) and h, in place."""
    hidden = h.shape[0]
    gh[:] = 0.0
    for i in range(hidden):
        for j in range(3 * hidden):
            gh[j] += w_hh_t[i, j] * h[i]
    for j in range(hidden):
        r = _sigmoid(g[j] + b_ih[j] + gh[j] + b_hh[j])
        z = _sigmoid(g[hidden + j] + b_ih[hidden + j] + gh[hidden + j] + b_hh[hidden + j])
        n = np.float32(math.tanh(g[2 * hidden + j] + b_ih[2 * hidden + j]
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
def _windowed(projections, newest, n_sub, width, h, b_ih, w_hh_t, b_hh, gh,
              use_ln, ln_w, ln_b, ln_eps, w_y, b_y, scale, shift, work, y):
    """k GRU steps from h = 0 over the projections of the k sub-windows (ring rows newest -
    (k - 1 - m) w), then the readout of the last."""
    h[:] = 0.0
    span = projections.shape[0]
    for m in range(n_sub):
        _recur(projections[(newest - (n_sub - 1 - m) * width) % span], h, b_ih, w_hh_t, b_hh, gh)
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
        self.project = (model.fc_in is not None, w_u, b_u, bn_a.astype(np.float32), bn_c.astype(np.float32),
                        arr(gru.weight_ih_l0.t()))
        self.recur = (arr(gru.bias_ih_l0), arr(gru.weight_hh_l0.t()), arr(gru.bias_hh_l0))
        ln = model.ln
        scale = arr(model.y_scale) if model.y_scale is not None else np.ones(c.n_outputs, np.float32)
        shift = arr(model.y_shift) if model.y_shift is not None else np.zeros(c.n_outputs, np.float32)
        self.readout = (ln is not None, arr(ln.weight) if ln is not None else ones,
                        arr(ln.bias) if ln is not None else zeros, np.float32(ln.eps if ln is not None else 0.0),
                        arr(model.fc_out.weight), arr(model.fc_out.bias), scale, shift)
        n_in = hidden if model.fc_in is not None else c.n_channels
        self.u, self.gh, self.readout_work = np.zeros(n_in, np.float32), np.zeros(3 * hidden, np.float32), \
            np.zeros(hidden, np.float32)
        self.hidden, self.n_outputs = hidden, c.n_outputs


class _GRUFast(FastStep):
    """The newest sub-window of w samples (its features), the input projections of the last
    ``kept`` samples' newest sub-windows, and ``states`` GRU states."""

    def __init__(self, model, n_channels: int, features, kept: int, states: int):
        self.weights = GRUWeights(model)
        super().__init__(n_channels, self.weights.n_outputs)
        self.window = SubWindowRing(1, features.sub_width, n_channels, transform=features.transform)
        self.n_sub, self.width, self.history = features.n_sub, features.sub_width, features.span - 1
        self.projections = np.zeros((kept, 3 * self.weights.hidden), np.float32)
        self.h = np.zeros((states, self.weights.hidden), np.float32)
        self.reset()

    def reset(self) -> None:
        self.window.reset()
        self.h[:] = 0.0
        self.count = 0
        self.projections[:] = 0.0  # the projection of an all-zero sub-window: before the stream
        self._project(self.window.push(np.zeros(self.n_channels, np.float32)), self.projections[0])
        self.projections[:] = self.projections[0]
        self.window.reset()

    def _project(self, features: np.ndarray, out: np.ndarray) -> None:
        _project(features[0], *self.weights.project, self.weights.u, out)

    def _advance(self, x: np.ndarray) -> np.ndarray:
        """Push x; the projection of the newest sub-window, in its ring row."""
        row = self.projections[self.count % len(self.projections)]
        self._project(self.window.push(x), row)
        self.count += 1
        return row

    def warm(self, samples: np.ndarray) -> None:
        for x in samples:
            self._advance(x)


class WindowedGRUFast(_GRUFast):
    def __init__(self, model, n_channels: int, features):
        super().__init__(model, n_channels, features, kept=features.span, states=1)

    def step(self, x: np.ndarray) -> np.ndarray:
        self._advance(x)
        y = np.empty(self.n_outputs, np.float32)
        w = self.weights
        _windowed(self.projections, self.count - 1, self.n_sub, self.width, self.h[0], *w.recur, w.gh,
                  *w.readout, w.readout_work, y)
        return y


class StatefulGRUFast(_GRUFast):
    """Phase p = count mod w: one GRU state per phase."""

    def __init__(self, model, n_channels: int, features):
        super().__init__(model, n_channels, features, kept=1, states=features.sub_width)

    def warm(self, samples: np.ndarray) -> None:
        """The window only: the phase count starts with the stream, as the PyTorch decoder's."""
        self.window.warm(samples)

    def step(self, x: np.ndarray) -> np.ndarray:
        h = self.h[self.count % self.width]
        g = self._advance(x)
        y = np.empty(self.n_outputs, np.float32)
        w = self.weights
        _recur(g, h, *w.recur, w.gh)
        _readout(h, *w.readout, w.readout_work, y)
        return y
