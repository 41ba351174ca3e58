"""Wiener filter: ridge regression of velocity on a causal history of binned spike counts.

Features at sample t: the counts of the last ``history`` bins of ``bin_samples`` samples each,
oldest first, f(t) = [n_{t-L+1}, ..., n_t] (L C values; zero before the stream starts). With the
features standardised on the training rows (mean m, std s) and the labels centred,

    w(lambda) = (Z^T Z + lambda N I)^{-1} Z^T (y - y_mean),     Z = (F - m) / s,

solved for every lambda of the grid from one eigendecomposition of Z^T Z; lambda is the one with
the best R2 on the validation rows. The result is folded back into raw counts: y = F W^T + b.

``WienerFilter`` has a scikit-learn-like face (hyper-parameters in the constructor, ``fit``,
``predict``); :meth:`WienerFilter.to_module` gives the streaming ``nn.Module`` that the project's
harness evaluates (one Linear layer over the feature history, counted as MACs on counts).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from motordecode.data.features import WindowFeatures
from motordecode.decoders.classical.recipe import RIDGE_GRID
from motordecode.errors import ConfigError
from motordecode.metrics.r2 import r2_per_axis
from motordecode.decoders.classical.count_window import RecentWindow

DEFAULT_ALPHAS = tuple(float(a) for a in RIDGE_GRID.split(","))


def _rows(index, n: int) -> np.ndarray:
    return np.arange(n) if index is None else np.asarray(index, dtype=np.int64)


class WienerFilter:
    def __init__(self, history: int = 10, bin_samples: int = 1, alphas=DEFAULT_ALPHAS):
        if history < 1 or bin_samples < 1:
            raise ConfigError(f"history and bin_samples must be >= 1 (got {history}, {bin_samples}).")
        if len(alphas) == 0 or min(alphas) < 0:
            raise ConfigError("alphas must be a non-empty list of non-negative ridge strengths.")
        self.history, self.bin_samples, self.alphas = int(history), int(bin_samples), tuple(float(a) for a in alphas)

    def window(self) -> WindowFeatures:
        return WindowFeatures(self.history, self.bin_samples)

    def features(self, X: np.ndarray) -> np.ndarray:
        """(T, L C) causal count history of a sample stream X (T, C), float64."""
        return self.window().table(X).sums(np.arange(len(X))).reshape(len(X), -1).astype(np.float64)

    def fit(self, X: np.ndarray, y: np.ndarray, index=None, val_index=None) -> "WienerFilter":
        """Fit on the rows ``index`` of the stream X (T, C) with labels y (T, D); lambda is chosen
        by R2 on ``val_index`` (needed when the grid has several values)."""
        y = np.asarray(y, dtype=np.float64)
        if len(X) != len(y):
            raise ConfigError(f"X has {len(X)} samples but y has {len(y)}.")
        if len(self.alphas) > 1 and val_index is None:
            raise ConfigError("choosing the ridge strength needs val_index (or a single alpha).")
        if val_index is not None and len(val_index) == 0:
            raise ConfigError("the validation rows (val_index) are empty; the ridge strength is chosen on them. "
                              "Give validation rows, or leave val_index out with a single alpha.")
        F = self.features(X)
        train = _rows(index, len(X))
        mean, std = F[train].mean(0), F[train].std(0)
        std[std == 0] = 1.0  # silent features: weight 0 below
        Z = (F[train] - mean) / std
        y_mean = y[train].mean(0)
        eigval, eigvec = np.linalg.eigh(Z.T @ Z)
        projected = eigvec.T @ (Z.T @ (y[train] - y_mean))
        # validation as the streaming decoder sees it: its own stream from a zero history
        F_val = None if val_index is None else self.features(np.asarray(X)[val_index])
        best = (-np.inf, None, None)
        for alpha in self.alphas:
            with np.errstate(divide="ignore", invalid="ignore"):  # alpha = 0 on a singular system: not finite
                w = eigvec @ (projected / (np.maximum(eigval, 0.0) + alpha * len(train))[:, None])
                coef, intercept = (w / std[:, None]).T, y_mean - mean @ (w / std[:, None])
                score = 0.0 if F_val is None else float(r2_per_axis(F_val @ coef.T + intercept, y[val_index]).mean())
            if np.isfinite(score) and score > best[0]:
                best = (score, alpha, (coef, intercept))
        if best[1] is None:
            raise ConfigError("no ridge strength gave a finite validation R2 (constant labels or features?); "
                              "use positive alphas.")
        self.val_r2_, self.alpha_, (self.coef_, self.intercept_) = best
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise ConfigError("the Wiener filter is not fitted yet.")

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self.features(X) @ self.coef_.T + self.intercept_

    def to_module(self) -> "WienerDecoder":
        self._check_fitted()
        module = WienerDecoder(self.coef_.shape[1] // self.history, self.coef_.shape[0], self.history,
                               self.bin_samples)
        with torch.no_grad():
            module.linear.weight.copy_(torch.as_tensor(self.coef_, dtype=torch.float32))
            module.linear.bias.copy_(torch.as_tensor(self.intercept_, dtype=torch.float32))
        return module


class WienerDecoder(nn.Module):
    """Streaming Wiener filter: ``forward(x (T, C)) -> (T, D)``, carrying the last samples across
    calls (:class:`RecentWindow`, the state a real-time decoder keeps; ``reset()`` zeroes it)."""

    def __init__(self, n_channels: int, n_outputs: int, history: int, bin_samples: int):
        super().__init__()
        self.window = RecentWindow(n_channels, history, bin_samples)
        self.linear = nn.Linear(history * n_channels, n_outputs)

    def reset(self) -> None:
        self.window.reset()

    def stream_state(self) -> "WienerState":
        return WienerState(self.window.recent.clone())

    def load_stream_state(self, state: "WienerState") -> None:
        self.window.recent.copy_(state.recent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.window(x).reshape(len(x), -1).to(self.linear.weight.dtype))


class WienerState(NamedTuple):
    recent: torch.Tensor    # the last history x bin_samples - 1 samples (rows, C)
