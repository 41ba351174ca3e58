"""Kalman filter decoder (Wu et al. 2006): a position-velocity state observed through spike counts.

State s_t = [p_t, v_t] (2D values: position = running sum of the velocity labels, velocity),
observation n_t = the counts of the bin of ``bin_samples`` samples ending at t (C values):

    s_t = A s_{t-1} + w_t,   w ~ N(0, W)
    n_t = H s_t + c + q_t,   q ~ N(0, Q)

A, W, H, c and Q are least-squares fits on the training rows (Q gets ``ridge`` times its mean
variance added to the diagonal, so that it is invertible with silent channels). Filtering, with
P the state covariance:

    s_pred = A s_{t-1},  P_pred = A P A^T + W
    K_t = P_pred H^T (H P_pred H^T + Q)^{-1}
    s_t = s_pred + K_t (n_t - c - H s_pred),  P = (I - K_t H) P_pred

The gains depend on t only, not on the data, and converge (steady state). ``steady_state=True``
uses the limit K for every step: s_t = M s_{t-1} + K n_t + b with M = (I - K H) A, b = -K c.
Otherwise the transient gains K_1..K_S (until they change by less than ``tol``) are kept and used
for the first S steps after a reset. The decoded output is the velocity part of s_t.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from motordecode.data.features import WindowFeatures
from motordecode.errors import ConfigError
from motordecode.decoders.classical.count_window import RecentWindow, window_sums


def _lstsq(inputs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients (out, in), residuals) of targets ~ inputs @ coefficients.T."""
    coef = np.linalg.lstsq(inputs, targets, rcond=None)[0].T
    return coef, targets - inputs @ coef.T


class KalmanFilter:
    def __init__(self, bin_samples: int = 1, steady_state: bool = True, ridge: float = 1e-3, tol: float = 1e-8,
                 max_steps: int = 10000):
        if bin_samples < 1 or ridge < 0 or tol <= 0 or max_steps < 1:
            raise ConfigError("bin_samples >= 1, ridge >= 0, tol > 0 and max_steps >= 1 are required.")
        self.bin_samples, self.steady_state = int(bin_samples), bool(steady_state)
        self.ridge, self.tol, self.max_steps = float(ridge), float(tol), int(max_steps)

    def counts(self, X: np.ndarray) -> np.ndarray:
        """(T, C) counts of the bin ending at each sample (zero before the stream starts), float64."""
        return WindowFeatures(1, self.bin_samples).table(X).sums(np.arange(len(X)))[:, 0].astype(np.float64)

    def fit(self, X: np.ndarray, y: np.ndarray, index=None) -> "KalmanFilter":
        """Fit on the rows ``index`` (consecutive rows give the transitions) of the stream X (T, C)
        with velocity labels y (T, D)."""
        y = np.asarray(y, dtype=np.float64)
        if len(X) != len(y):
            raise ConfigError(f"X has {len(X)} samples but y has {len(y)}.")
        rows = np.arange(len(X)) if index is None else np.asarray(index, dtype=np.int64)
        if len(rows) < 3:
            raise ConfigError("a Kalman filter needs at least 3 training samples.")
        state = np.concatenate([np.cumsum(y, axis=0), y], axis=1)
        n = self.counts(X)
        pairs = rows[1:][np.diff(rows) == 1]  # rows whose predecessor is a training row too
        if len(pairs) <= 2 * y.shape[1]:
            raise ConfigError(f"the Kalman transition needs more than {2 * y.shape[1]} pairs of consecutive "
                              f"training samples; the training rows hold {len(pairs)}.")
        self.A_, transition_residual = _lstsq(state[pairs - 1], state[pairs])
        self.W_ = np.cov(transition_residual, rowvar=False)
        design = np.concatenate([state[rows], np.ones((len(rows), 1))], axis=1)
        coef, observation_residual = _lstsq(design, n[rows])
        self.H_, self.c_ = coef[:, :-1], coef[:, -1]
        Q = np.cov(observation_residual, rowvar=False)
        self.Q_ = Q + self.ridge * max(float(np.mean(np.diag(Q))), 1e-12) * np.eye(len(Q))
        self.s0_ = state[rows].mean(0)
        self.P0_ = np.cov(state[rows], rowvar=False)
        self.n_outputs_ = y.shape[1]
        self.gains_ = self._gains()
        return self

    def _gains(self) -> np.ndarray:
        """K_1, K_2, ... until converged (S, 2D, C); the last one is the steady-state gain."""
        A, W, H, Q, P = self.A_, self.W_, self.H_, self.Q_, self.P0_
        gains = []
        for _ in range(self.max_steps):
            P_pred = A @ P @ A.T + W
            K = np.linalg.solve(H @ P_pred @ H.T + Q, H @ P_pred).T
            P = (np.eye(len(P)) - K @ H) @ P_pred
            converged = bool(gains) and np.abs(K - gains[-1]).max() <= self.tol * max(np.abs(K).max(), 1e-30)
            gains.append(K)
            if converged:
                break
        else:
            raise ConfigError(f"the Kalman gain did not converge within {self.max_steps} steps.")
        return np.stack(gains)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Velocities (T, D) of the stream X (T, C), from the initial state (as after ``reset()``)."""
        with torch.no_grad():
            module = self.to_module(torch.float64)
            return module(torch.as_tensor(np.asarray(X), dtype=torch.float64)).numpy()

    def to_module(self, dtype: torch.dtype = torch.float32) -> "KalmanDecoder":
        """The streaming decoder, reset to the initial state."""
        if not hasattr(self, "A_"):
            raise ConfigError("the Kalman filter is not fitted yet.")
        gains = self.gains_[-1:] if self.steady_state else self.gains_
        module = KalmanDecoder(self.H_.shape[0], self.A_.shape[0], self.n_outputs_,
                               self.bin_samples, transient_steps=len(gains) - 1).to(dtype)
        K = torch.as_tensor(gains)
        I = torch.eye(self.A_.shape[0], dtype=torch.float64)
        A, H, c = (torch.as_tensor(v) for v in (self.A_, self.H_, self.c_))
        with torch.no_grad():
            module.gain.copy_(K.to(module.gain.dtype))
            module.transition.copy_(((I - K @ H) @ A).to(module.transition.dtype))
            module.offset.copy_((-(K @ c)).to(module.offset.dtype))
            module.initial.copy_(torch.as_tensor(self.s0_).to(module.initial.dtype))
        module.reset()
        return module


class KalmanDecoder(nn.Module):
    """Streaming Kalman filter: ``forward(x (T, C)) -> velocities (T, D)``.

    Per step: s_t = M_t s_{t-1} + K_t n_t + b_t, with (M_t, K_t, b_t) the transient values for the
    first steps after ``reset()`` and the steady-state ones afterwards (all stored as buffers).
    State between calls: the recent samples (for the count bin), s and the step counter.
    Operations are declared through ``synaptic_inputs``: K n_t (counts -> MACs) and M s_{t-1}."""

    def __init__(self, n_channels: int, n_states: int, n_outputs: int, bin_samples: int, transient_steps: int = 0):
        super().__init__()
        self.n_outputs = int(n_outputs)
        stages = transient_steps + 1
        self.register_buffer("gain", torch.zeros(stages, n_states, n_channels))
        self.register_buffer("transition", torch.zeros(stages, n_states, n_states))
        self.register_buffer("offset", torch.zeros(stages, n_states))
        self.register_buffer("initial", torch.zeros(n_states))
        self.window = RecentWindow(n_channels, 1, bin_samples)
        self.register_buffer("state", torch.zeros(n_states))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    def reset(self) -> None:
        self.window.reset()
        self.state.copy_(self.initial)
        self.steps.zero_()

    def stream_state(self) -> "KalmanState":
        return KalmanState(self.window.recent.clone(), self.state.clone(), int(self.steps))

    def load_stream_state(self, state: "KalmanState") -> None:
        self.window.recent.copy_(state.recent)
        self.state.copy_(state.s)
        self.steps.fill_(state.steps)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A saved filter may keep more transient gains than a fresh module: take its shapes."""
        for name in ("gain", "transition", "offset"):
            saved = state_dict.get(prefix + name)
            if saved is not None and saved.shape != getattr(self, name).shape:
                setattr(self, name, torch.empty_like(saved, dtype=getattr(self, name).dtype))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def connection_weights(self) -> list[tuple[str, torch.Tensor]]:
        """The steady-state matrices, for connection sparsity."""
        return [("gain", self.gain[-1]), ("transition", self.transition[-1])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            raise ConfigError("the Kalman decoder runs on the CPU; move the model and its input there.")
        counts = self.window(x)[:, 0].numpy()
        gain, transition, offset = (t.double().numpy() for t in (self.gain, self.transition, self.offset))
        s = self.state.double().numpy().copy()
        out = np.empty((len(x), len(s)))
        start, last = int(self.steps), len(gain) - 1
        for t in range(len(x)):
            k = min(start + t, last)
            s = transition[k] @ s + gain[k] @ counts[t] + offset[k]
            out[t] = s
        self.state.copy_(torch.as_tensor(s))
        self.steps += len(x)
        return torch.as_tensor(out[:, -self.n_outputs:], dtype=self.gain.dtype)

    @staticmethod
    def synaptic_inputs(module: "KalmanDecoder", inputs: tuple, output) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(K, counts n_t) and (M, s_{t-1}) of every step of one call, with the steady-state matrices
        (the counts of the first bins of a call are taken without the samples carried in)."""
        x = inputs[0].to(torch.float64)
        counts = window_sums(x, 0, 1, module.window.width)[:, 0].float()
        states = torch.ones(len(x), module.state.shape[0])  # the state is dense
        return [(module.gain[-1], counts), (module.transition[-1], states)]


class KalmanState(NamedTuple):
    recent: torch.Tensor    # the last bin_samples - 1 samples (rows, C)
    s: torch.Tensor         # the filter state s_t (position and velocity)
    steps: int              # steps since the start (transient gains first)
