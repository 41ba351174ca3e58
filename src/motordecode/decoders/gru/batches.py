"""Training batches of windows: raw sub-window counts, optional Poisson jitter, the feature transform.

A training example ending at sample j is L sub-windows (the last ending at j) and the L velocity labels
at the sub-window ends ``j - (L - 1 - m) s``. Examples whose first label would fall before the
session start are left out. Augmentation (AEGRU): each count n is replaced, with probability p, by a
draw from Poisson(n). Counts are integers, so the transform is a table lookup of the exact values
``features.log_softplus`` gives.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from motordecode.data.features import WindowFeatures, log_softplus
from motordecode.data.splits import contiguous_runs


def poisson_jitter(counts: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Each element replaced by Poisson(element) with probability p."""
    if p <= 0:
        return counts
    replace = rng.random(counts.shape) < p
    replace &= counts > 0  # Poisson(0) is always 0: draw only where it can change something
    out = counts.copy()
    out[replace] = rng.poisson(counts[replace])
    return out


class TransformTable:
    """log_softplus of non-negative integer counts by lookup (exact), else computed."""

    def __init__(self, size: int = 256):
        self.values = log_softplus(np.arange(size, dtype=np.float32))

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        if np.issubdtype(counts.dtype, np.integer) and counts.size and 0 <= counts.min() and counts.max() < len(self.values):
            return self.values[counts]
        return log_softplus(counts)


class WindowBatches:
    """Shuffled mini-batches (features, counts, labels) of the windows ending at ``ends``."""

    def __init__(self, spikes: np.ndarray, velocity: np.ndarray, ends: np.ndarray, sub_width: int,
                 n_steps: int, transform: str | None = "log_softplus"):
        self.raw = WindowFeatures(n_steps, sub_width).table(spikes)
        self.velocity = np.asarray(velocity, dtype=np.float32)
        self.offsets = -(n_steps - 1 - np.arange(n_steps)) * sub_width
        self.transform = TransformTable() if transform == "log_softplus" else None
        self.ends = self._usable(ends)

    def _usable(self, ends: np.ndarray) -> np.ndarray:
        """The ends whose first label lies in the same contiguous run of ``ends`` (from the session
        start for an unbroken split; never across a gap a recording marks invalid)."""
        ends = np.asarray(ends, dtype=np.int64)
        run_start = np.zeros_like(ends)
        for start, stop in contiguous_runs(ends):
            run_start[np.searchsorted(ends, start):np.searchsorted(ends, stop)] = start
        return ends[ends + self.offsets[0] >= np.where(run_start == ends.min(initial=0), 0, run_start)]

    def with_ends(self, ends: np.ndarray) -> "WindowBatches":
        """The same recording (running sums shared, not recomputed) with other window ends."""
        other = copy.copy(self)
        other.ends = self._usable(ends)
        return other

    def __len__(self) -> int:
        return len(self.ends)

    def batch(self, ends: np.ndarray, jitter_p: float = 0.0, rng: np.random.Generator | None = None):
        counts = self.raw.sums(ends)
        if jitter_p > 0:
            counts = poisson_jitter(counts, jitter_p, rng)
        x = counts if self.transform is None else self.transform(counts)
        labels = self.velocity[ends[:, None] + self.offsets]
        return (torch.from_numpy(np.asarray(x, dtype=np.float32)), torch.from_numpy(counts.astype(np.float32)),
                torch.from_numpy(labels))

    def epoch(self, batch_size: int, rng: np.random.Generator, jitter_p: float = 0.0):
        """Yield the batches of one epoch in a random order."""
        order = rng.permutation(len(self.ends))
        for start in range(0, len(order), batch_size):
            yield self.batch(self.ends[order[start : start + batch_size]], jitter_p, rng)
