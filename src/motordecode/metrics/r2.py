"""Coefficient of determination as NeuroBench defines it for this task.

Per axis d over the whole test split: ``R2_d = 1 - sum_t (y_td - yhat_td)^2 / (n * Var_pop(y_d))``;
the reported R2 is the mean over the axes (x and y velocity).
"""

from __future__ import annotations

import numpy as np

from motordecode.errors import MetricError


def r2_per_axis(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 2:
        raise MetricError(f"R2 needs predictions and labels of the same (T, D) shape, got {pred.shape} and {true.shape}.")
    if len(true) < 2:
        raise MetricError("R2 needs at least two samples.")
    sse = ((true - pred) ** 2).sum(axis=0)
    denom = len(true) * true.var(axis=0)
    if (denom == 0).any():
        raise MetricError(f"R2 is undefined: the labels of axis {int(np.argmax(denom == 0))} are constant.")
    return 1.0 - sse / denom


def r2_score(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean over axes of :func:`r2_per_axis`."""
    return float(r2_per_axis(pred, true).mean())
