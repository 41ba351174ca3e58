"""Reach segmentation and train / validation / test splits.

Reaches (NeuroBench 2.3.0): a reach ends where ``target_pos`` changes, at each index ``i`` with
``|target[i + 1] - target[i]|_1 != 0``; the bounds are ``[0, i_1), [i_1, i_2), ..., [i_K, T)``.

Split by reach order with ``train_ratio`` rho over R reaches: the first ``floor(rho R)`` reaches
train, the next ``floor((R - floor(rho R)) / 2)`` validate, the rest test; the samples of a reach
are ``range(start, end, stride)``. The task uses rho = 0.5 (50 / 25 / 25); NeuroBench's default is 0.8.
Sources without reach markers are split contiguously in time, 50 / 25 / 25.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from motordecode.errors import ConfigError

TASK_TRAIN_RATIO = 0.5


@dataclass(frozen=True)
class Split:
    """Sample indices (sorted, int64) of the three parts."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def reach_bounds(target_pos: np.ndarray) -> np.ndarray:
    """(R, 2) ``[start, end)`` of each reach from a (T, 2) target position."""
    target = np.asarray(target_pos, dtype=np.float64)
    # NeuroBench's rule, NaN included: a step whose summed |difference| is not exactly 0 (the last
    # sample is compared with itself, which counts only when it is NaN or infinite)
    with np.errstate(invalid="ignore"):
        steps = np.diff(target, axis=0, append=target[-1:])
    changes = np.nonzero(np.abs(steps).sum(axis=1))[0]
    starts = np.concatenate([[0], changes])
    ends = np.concatenate([changes, [len(target)]])
    return np.stack([starts, ends], axis=1).astype(np.int64)


def _indices(bounds: np.ndarray, stride: int) -> np.ndarray:
    if len(bounds) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(s, e, stride, dtype=np.int64) for s, e in bounds])


def _check(train_ratio: float, stride: int) -> None:
    if not 0.0 <= train_ratio <= 1.0:
        raise ConfigError(f"train_ratio must be in [0, 1], got {train_ratio}.")
    if stride < 1:
        raise ConfigError(f"stride must be >= 1 sample, got {stride}.")


def split_by_reaches(bounds: np.ndarray, train_ratio: float = TASK_TRAIN_RATIO, stride: int = 1) -> Split:
    """NeuroBench's split by reach order (see the module docstring)."""
    _check(train_ratio, stride)
    n = len(bounds)
    n_train = math.floor(train_ratio * n)
    n_val = math.floor((n - n_train) / 2)
    return Split(
        train=_indices(bounds[:n_train], stride),
        val=_indices(bounds[n_train : n_train + n_val], stride),
        test=_indices(bounds[n_train + n_val :], stride),
    )


def split_contiguous(n_samples: int, train_ratio: float = TASK_TRAIN_RATIO, stride: int = 1) -> Split:
    """Contiguous split in time: train ratio rho, then the rest halved into validation and test."""
    _check(train_ratio, stride)
    n_train = math.floor(train_ratio * n_samples)
    n_val = math.floor((n_samples - n_train) / 2)
    cuts = [0, n_train, n_train + n_val, n_samples]
    parts = [np.arange(a, b, stride, dtype=np.int64) for a, b in zip(cuts[:-1], cuts[1:])]
    return Split(*parts)


def default_split(recording, train_ratio: float = TASK_TRAIN_RATIO, stride: int = 1) -> Split:
    """Split by reaches when the recording has reach markers, else contiguously in time; samples
    the recording marks invalid (``Recording.valid``: unobserved, unlabelled) are left out."""
    if recording.reach_bounds is not None:
        split = split_by_reaches(recording.reach_bounds, train_ratio, stride)
    else:
        split = split_contiguous(recording.n_samples, train_ratio, stride)
    if recording.valid is None:
        return split
    return Split(*(part[recording.valid[part]] for part in (split.train, split.val, split.test)))


def contiguous_runs(index: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of consecutive sample indices in sorted ``index``."""
    index = np.asarray(index)
    if len(index) == 0:
        return []
    breaks = np.flatnonzero(np.diff(index) != 1)
    starts = np.concatenate([[index[0]], index[breaks + 1]])
    stops = np.concatenate([index[breaks] + 1, [index[-1] + 1]])
    return list(zip(starts.tolist(), stops.tolist()))
