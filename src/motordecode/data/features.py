"""Window features: the one implementation behind training batches and the streaming decoder.

For a sample stream ``x_i`` (T, C), the feature at time ``j`` is k sub-window sums, oldest first:

    f_m(j) = sum_{i = q_m - w + 1}^{q_m} x_i,    q_m = j - (k - 1 - m) * s,    m = 0 .. k-1

with sub-window width ``w`` and spacing ``s``. The AEGRU input (Fig. 2 of the paper) is N samples
summed in k sub-windows: ``w = s = N / k`` on 4 ms samples (N = 100, k = 5). NeuroBench's
``num_steps`` windows are ``w = 1, s = ratio`` on box-summed samples (newest-first there,
chronological here). Optionally ``log(softplus(f))`` is applied.

Both paths use cumulative sums ``S_p = sum_{i<p} x_i``: ``f_m(j) = S_{j+1+o_m} - S_{j+1+o_m-w}``
with ``o_m = -(k-1-m) s``. Before the session start ``S_p = 0`` (no wrap-around, the default), or,
with ``wrap=True``, ``S_p = S_{T+p} - S_T`` which pulls samples from the end of the session exactly
like NeuroBench's negative indices. The batch path gathers S over the whole session; a stream
carries its last ``span - 1`` samples and cuts its windows from them the same way
(:meth:`WindowFeatures.carried`). Integer inputs give bit-identical features.
"""

from __future__ import annotations

import numpy as np

from motordecode.errors import ConfigError


def log_softplus(x: np.ndarray) -> np.ndarray:
    """``log(softplus(x)) = log(log(1 + e^x))``, computed stably, float32."""
    x = np.asarray(x, dtype=np.float32)
    return np.log(np.logaddexp(np.float32(0.0), x))


TRANSFORMS = {None: None, "none": None, "log_softplus": log_softplus}


class WindowFeatures:
    """k sub-window sums of width ``sub_width`` spaced ``spacing`` apart, ending at each sample."""

    def __init__(self, n_sub: int, sub_width: int, spacing: int | None = None,
                 transform: str | None = None, wrap: bool = False):
        spacing = sub_width if spacing is None else spacing
        if n_sub < 1 or sub_width < 1 or spacing < 1:
            raise ConfigError(f"n_sub, sub_width and spacing must be >= 1 (got {n_sub}, {sub_width}, {spacing}).")
        if transform not in TRANSFORMS:
            raise ConfigError(f"unknown transform {transform!r}; choose from none, log_softplus.")
        self.n_sub, self.sub_width, self.spacing = int(n_sub), int(sub_width), int(spacing)
        self.transform = TRANSFORMS[transform]
        self.wrap = bool(wrap)
        self._hi = -(self.n_sub - 1 - np.arange(self.n_sub)) * self.spacing  # offsets of S, rel. j+1
        self._lo = self._hi - self.sub_width

    @classmethod
    def summed(cls, n_samples: int, n_sub: int, **kwargs) -> "WindowFeatures":
        """N samples summed in k contiguous sub-windows (the AEGRU input, N=100, k=5)."""
        if n_samples % n_sub:
            raise ConfigError(f"window of {n_samples} samples does not split into {n_sub} equal sub-windows.")
        return cls(n_sub, n_samples // n_sub, **kwargs)

    @property
    def span(self) -> int:
        """Number of samples that one feature vector looks back over (including the current one)."""
        return (self.n_sub - 1) * self.spacing + self.sub_width

    def _finish(self, sums: np.ndarray) -> np.ndarray:
        sums = sums.astype(np.float32)
        return sums if self.transform is None else self.transform(sums)

    def __call__(self, x: np.ndarray, ends: np.ndarray | None = None) -> np.ndarray:
        """Features (len(ends), k, C) of the windows ending at sample indices ``ends`` (default all)."""
        table = self.table(x)
        return table(np.arange(table.n_samples) if ends is None else ends)

    def table(self, x: np.ndarray) -> "FeatureTable":
        """Precompute the running sums of ``x`` (T, C) once; the table then cuts any windows fast."""
        x = np.asarray(x)
        if x.ndim != 2:
            raise ConfigError(f"samples must be (T, C), got shape {x.shape}.")
        if self.wrap and self.span > len(x):
            raise ConfigError(f"a window of {self.span} samples cannot wrap around a session of {len(x)}.")
        return FeatureTable(self, _cumulative_sums(x))

    def carried(self, recent: np.ndarray, x: np.ndarray, raw: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Features (T, k, C) of the windows ending at each sample of ``x`` (T, C), continuing a
        stream whose preceding samples are ``recent`` (its last rows; zeros before the stream
        start). Returns them (``raw``: the sums, float64) and the new ``recent``, of the same length.
        This is the streaming path: a decoder carries ``recent`` (``span - 1`` samples) in its state."""
        if self.wrap:
            raise ConfigError("wrap-around needs the end of the session and cannot stream.")
        stream = np.concatenate([recent, x])
        sums = self.table(stream).sums(np.arange(len(recent), len(stream)))
        out = sums.astype(np.float64) if raw else self._finish(sums)
        return out, stream[len(stream) - len(recent):]


class FeatureTable:
    """Windows of one recording, cut from its precomputed running sums (see the module docstring)."""

    def __init__(self, features: WindowFeatures, cumsum: np.ndarray):
        self.features = features
        self.cumsum = cumsum

    @property
    def n_samples(self) -> int:
        return len(self.cumsum) - 1

    def __call__(self, ends: np.ndarray) -> np.ndarray:
        """Features (len(ends), k, C) of the windows ending at sample indices ``ends``."""
        return self.features._finish(self.sums(ends))

    def sums(self, ends: np.ndarray) -> np.ndarray:
        """The raw sub-window sums (len(ends), k, C), before any transform: exact integers for counts."""
        ends = np.asarray(ends, dtype=np.int64)
        if len(ends) and (ends.min() < 0 or ends.max() >= self.n_samples):
            raise ConfigError(f"window ends must lie in [0, {self.n_samples - 1}].")
        f = self.features
        return self._gather(ends[:, None] + 1 + f._hi) - self._gather(ends[:, None] + 1 + f._lo)

    def _gather(self, pos: np.ndarray) -> np.ndarray:
        if not self.features.wrap:
            return self.cumsum[np.maximum(pos, 0)]
        n = self.n_samples
        values = self.cumsum[np.where(pos < 0, pos + n, pos)]
        return np.where((pos < 0)[..., None], values - self.cumsum[n], values)


def _counts_dtype(dtype) -> bool:
    return np.issubdtype(dtype, np.integer) or dtype == bool


def _cumulative_sums(x: np.ndarray) -> np.ndarray:
    """(T+1, C) running sums with a leading zero row; integers stay exact."""
    if _counts_dtype(x.dtype):
        dtype = np.int64
        if len(x) and int(x.max(initial=0)) * len(x) < 2**31 and int(x.min(initial=0)) >= 0:
            dtype = np.int32
    else:
        dtype = np.float64
    out = np.empty((len(x) + 1, x.shape[1]), dtype=dtype)
    out[0] = 0
    np.cumsum(x, axis=0, dtype=dtype, out=out[1:])
    return out
