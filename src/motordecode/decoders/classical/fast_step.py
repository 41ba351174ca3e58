"""The classical decoders' fast steps (:mod:`motordecode.decoders.fast`), their count windows from
:class:`~motordecode.decoders.fast_window.SubWindowRing`.

    Wiener:  y_t = W [n_{t-L+1}, ..., n_t] + b                      (float32, as the module)
    Kalman:  s_t = M_k s_{t-1} + K_k n_t + b_k,  k = min(t, last),  y_t = the velocity part of s_t
             (float64, as the module within a call; transient gains first; y in float32)

n_t: the counts of the last bin of w samples (Wiener: L such bins, oldest first).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from motordecode.decoders.base import BufferedDecoder
from motordecode.decoders.fast import FastStep
from motordecode.decoders.fast_window import SubWindowRing
from motordecode.errors import ConfigError


@njit(cache=True, nogil=True, error_model="numpy")
def _linear(features, weight_t, bias, y):
    """y = W f + b over the nonzero features (weight_t: (L C, D))."""
    for d in range(y.shape[0]):
        y[d] = 0.0
    for i in range(features.shape[0]):
        if features[i] != 0.0:
            for d in range(y.shape[0]):
                y[d] += weight_t[i, d] * features[i]
    for d in range(y.shape[0]):
        y[d] = y[d] + bias[d]


@njit(cache=True, nogil=True, error_model="numpy")
def _kalman(counts, s, new, transition, gain, offset):
    """new = M s + K n + b (float64), then s <- new."""
    for i in range(s.shape[0]):
        acc = 0.0
        for j in range(s.shape[0]):
            acc += transition[i, j] * s[j]
        drive = 0.0
        for c in range(counts.shape[0]):
            if counts[c] != 0.0:
                drive += gain[i, c] * counts[c]
        new[i] = acc + drive + offset[i]
    s[:] = new


class WienerFast(FastStep):
    def __init__(self, model):
        if model.linear.weight.dtype != torch.float32:
            raise ConfigError(f"the Wiener fast step computes in float32; this filter is {model.linear.weight.dtype}.")
        weight = model.linear.weight.detach().cpu().numpy()
        super().__init__(model.window.recent.shape[1], weight.shape[0])
        self.window = SubWindowRing(model.window.n_sub, model.window.width, self.n_channels)
        self.weight_t = np.ascontiguousarray(weight.T, dtype=np.float32)
        self.bias = model.linear.bias.detach().cpu().numpy().astype(np.float32)

    def reset(self) -> None:
        self.window.reset()

    def step(self, x: np.ndarray) -> np.ndarray:
        y = np.empty(self.n_outputs, np.float32)
        _linear(self.window.push(x).reshape(-1), self.weight_t, self.bias, y)
        return y


class KalmanFast(FastStep):
    def __init__(self, model):
        f64 = lambda t: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float64)  # noqa: E731
        super().__init__(model.window.recent.shape[1], model.n_outputs)
        self.window = SubWindowRing(1, model.window.width, self.n_channels, dtype=np.float64)
        self.gain, self.transition, self.offset = f64(model.gain), f64(model.transition), f64(model.offset)
        self.initial = f64(model.initial)
        self.s, self.new = self.initial.copy(), np.empty_like(self.initial)
        self.reset()

    def reset(self) -> None:
        self.window.reset()
        self.s[:] = self.initial
        self.steps = 0

    def step(self, x: np.ndarray) -> np.ndarray:
        k = min(self.steps, len(self.gain) - 1)
        _kalman(self.window.push(x)[0], self.s, self.new, self.transition[k], self.gain[k], self.offset[k])
        self.steps += 1
        return self.s[-self.n_outputs:].astype(np.float32)


class ClassicalDecoder(BufferedDecoder):
    """The Wiener or Kalman module's streaming face, with its fast step."""

    def fast_step(self):
        from motordecode.decoders.classical.kalman import KalmanDecoder
        from motordecode.decoders.classical.wiener import WienerDecoder

        if isinstance(self.model, KalmanDecoder):
            return KalmanFast(self.model)
        if isinstance(self.model, WienerDecoder):
            return WienerFast(self.model)
        raise ConfigError(f"no fast step for a classical model of type {type(self.model).__name__}.")
