"""The carried input window of the fast steps (:mod:`motordecode.decoders.fast`): a ring of the last
k w samples and, at every sample, its k sub-window sums, oldest first,

    f_m = sum of the w samples  x_{t - (k - m) w + 1} .. x_{t - (k - 1 - m) w},   m = 0 .. k - 1,

zero before the stream starts: the windows of :class:`~motordecode.data.features.WindowFeatures`
with contiguous sub-windows, summed in time order (exact for counts). With a transform (the GRUs'
``log_softplus``), the features are its values; for counts (sums that are integers below
``TABLE_SIZE``) they are read from a table of the same function's values, computed once."""

from __future__ import annotations

import numpy as np
from numba import njit

TABLE_SIZE = 4096  # sums of counts 0 .. 4095 per sub-window have tabled features


@njit(cache=True, nogil=True, error_model="numpy")
def _push(ring, pos, x, n_sub, width, sums):
    """Write x at ring[pos] (the newest row) and the k sub-window sums into sums (k, C)."""
    span, channels = ring.shape
    for c in range(channels):
        ring[pos, c] = x[c]
    for m in range(n_sub):
        for c in range(channels):
            sums[m, c] = 0.0
        for i in range(width):  # in time order: the oldest sample of sub-window m first
            row = (pos + 1 + m * width + i) % span
            for c in range(channels):
                sums[m, c] += ring[row, c]


@njit(cache=True, nogil=True, error_model="numpy")
def _tabled(sums, table, out):
    """out = table[sums] where every sum is an integer in [0, len(table)); False (out unfinished) otherwise."""
    for m in range(sums.shape[0]):
        for c in range(sums.shape[1]):
            s = sums[m, c]
            if not (s >= 0.0 and s < table.shape[0]) or s != np.floor(s):
                return False
            out[m, c] = table[int(s)]
    return True


class SubWindowRing:
    """``push(x) -> (k, C)`` sums, or their features with ``transform`` (one array, overwritten by
    the next push); ``warm(samples)`` fills the ring without summing; ``history`` = k w - 1 samples
    before a stream are read."""

    def __init__(self, n_sub: int, width: int, n_channels: int, dtype=np.float32, transform=None):
        self.n_sub, self.width = int(n_sub), int(width)
        self.ring = np.zeros((self.n_sub * self.width, n_channels), dtype)
        self.sums = np.zeros((self.n_sub, n_channels), dtype)
        self.transform = transform
        if transform is not None:
            self.table = transform(np.arange(TABLE_SIZE, dtype=np.float32)).astype(dtype)
            self.features = np.zeros_like(self.sums)
        self.history = len(self.ring) - 1
        self.reset()

    def reset(self) -> None:
        self.ring[:] = 0.0
        self.pos = len(self.ring) - 1

    def push(self, x: np.ndarray) -> np.ndarray:
        self.pos = (self.pos + 1) % len(self.ring)
        _push(self.ring, self.pos, x, self.n_sub, self.width, self.sums)
        if self.transform is None:
            return self.sums
        if _tabled(self.sums, self.table, self.features):
            return self.features
        return self.transform(self.sums)

    def warm(self, samples: np.ndarray) -> None:
        for x in samples:
            self.pos = (self.pos + 1) % len(self.ring)
            self.ring[self.pos] = x
