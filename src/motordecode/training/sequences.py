"""The RSNN data regime: overlapping training windows cut from continuous time, a split by time.

The benchmark's train and validation parts (the first 75% of a session) are joined and re-split by
time: the last ``val_fraction`` of them validates. Training windows of L samples start every S
samples (2 s every 0.4 s: offsets 0, 100, ..., 400 steps of 4 ms, so each sample is seen 5 times
per epoch); evaluation windows tile a part without overlap. The test part stays one continuous
sequence (see the pipeline).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from motordecode.data.splits import Split, contiguous_runs
from motordecode.errors import ConfigError


def time_split(split: Split, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) sample indices: train + validation joined, the last share held out."""
    joined = np.union1d(split.train, split.val)
    n_val = int(round(len(joined) * val_fraction))
    if n_val < 1 or n_val >= len(joined):
        raise ConfigError(f"val_fraction {val_fraction} leaves an empty train or validation part "
                          f"of {len(joined)} samples.")
    return joined[:-n_val], joined[-n_val:]


def window_starts(index: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Starts of the windows of ``length`` samples every ``stride`` samples inside contiguous runs."""
    starts = [np.arange(a, b - length + 1, stride) for a, b in contiguous_runs(index) if b - a >= length]
    return np.concatenate(starts).astype(np.int64) if starts else np.zeros(0, np.int64)


def index_mean(values: np.ndarray, index: np.ndarray) -> float:
    """Mean of ``values[index]`` over its contiguous runs, without gathering a copy."""
    runs = contiguous_runs(np.asarray(index))
    total = sum(float(values[a:b].sum(dtype=np.float64)) for a, b in runs)
    return total / max(1, sum(b - a for a, b in runs) * int(np.prod(values.shape[1:])))


class SequenceWindows:
    """Windows (x (B, L, C), y (B, L, D)) of one recording, as float32 tensors."""

    def __init__(self, spikes: np.ndarray, labels: np.ndarray, index: np.ndarray, length: int, stride: int):
        self.spikes = np.ascontiguousarray(spikes, dtype=np.float32)
        self.labels = np.ascontiguousarray(labels, dtype=np.float32)
        self.length = int(length)
        self.starts = window_starts(np.asarray(index), self.length, int(stride))

    def over(self, index: np.ndarray, stride: int) -> "SequenceWindows":
        """Windows of the same length over another part of the same arrays (no copy)."""
        other = copy.copy(self)
        other.starts = window_starts(np.asarray(index), self.length, int(stride))
        return other

    def __len__(self) -> int:
        return len(self.starts)

    def take(self, starts: np.ndarray, dropout: float = 0.0, rng: np.random.Generator | None = None):
        """The windows starting at ``starts``; with ``dropout`` > 0 the input is dropped out
        (x * m / (1 - p), m ~ Bernoulli(1 - p)), as the layer's input dropout would, but here, where
        the batches are cut on the spare core."""
        idx = starts[:, None] + np.arange(self.length)
        x = self.spikes[idx]
        if dropout > 0:
            x *= (rng.random(x.shape, dtype=np.float32) >= dropout) * np.float32(1.0 / (1.0 - dropout))
        return torch.from_numpy(x), torch.from_numpy(self.labels[idx])

    def batches(self, batch_size: int, rng: np.random.Generator | None = None, dropout: float = 0.0):
        """All windows once, shuffled when ``rng`` is given (input dropout needs it)."""
        order = self.starts if rng is None else self.starts[rng.permutation(len(self.starts))]
        for i in range(0, len(order), batch_size):
            yield self.take(order[i : i + batch_size], dropout, rng)


def mixed_batches(window_sets: list[SequenceWindows], batch_size: int, rng: np.random.Generator,
                  dropout: float = 0.0):
    """One epoch over several recordings (same channel count): each batch from one recording,
    batches of all recordings interleaved in random order."""
    plans = [(k, ws.starts[rng.permutation(len(ws))]) for k, ws in enumerate(window_sets)]
    chunks = [(k, order[i : i + batch_size]) for k, order in plans for i in range(0, len(order), batch_size)]
    for j in rng.permutation(len(chunks)):
        k, starts = chunks[j]
        yield window_sets[k].take(starts, dropout, rng)
