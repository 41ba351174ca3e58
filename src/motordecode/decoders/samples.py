"""The input checks of the stream faces (``Stream``, ``FastStream``): spike counts as float32, in
the shape the decoder reads, or a ConfigError that says what was expected and what came."""

from __future__ import annotations

import numpy as np

from motordecode.errors import ConfigError


def as_float32(values, what: str) -> np.ndarray:
    """Spike counts as a float32 array; ConfigError for anything that is not finite numbers."""
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    try:
        x = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: expected spike counts (numbers), got {type(values).__name__} ({exc}).") from None
    return check_finite(x, what)


def check_finite(x: np.ndarray, what: str) -> np.ndarray:
    """``x``, or ConfigError where it holds NaN or infinity (a missing value would spread through
    every window that reads it)."""
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ConfigError(f"{what}: spike counts must be finite numbers; found {x[tuple(bad)]} at index "
                          f"{tuple(int(i) for i in bad) if x.ndim > 1 else int(bad[0])}.")
    return x


def check_samples(values, n_channels: int, what: str) -> np.ndarray:
    """(T, C) float32 samples, or ConfigError naming the shape expected and the one given."""
    x = as_float32(values, what)
    if x.ndim != 2 or x.shape[1] != n_channels:
        raise ConfigError(f"{what}: expected samples of {n_channels} channels as (T, {n_channels}), got shape "
                          f"{tuple(x.shape)}.")
    return x


MAX_RATE_HZ = 5000.0  # a channel's spike counts above this rate are not spikes (the refractory period is ~1 ms)


def max_plausible_count(step_s: float) -> int:
    """The largest count a channel can plausibly have in a bin of ``step_s`` seconds:
    ceil(``MAX_RATE_HZ`` * step_s), at least 10."""
    return max(10, int(np.ceil(MAX_RATE_HZ * float(step_s))))


def sample_problem(counts, n_channels: int, max_count: int) -> str | None:
    """Why one live sample cannot be decoded, or None when it can: ``counts`` must be ``n_channels``
    finite, non-negative integers of at most ``max_count``. A sample that fails is dropped before the
    decoder sees it (a negative or NaN count would stay in a stateful decoder's state for good).
    One reduction for integer counts (a few us: it runs on every sample of a live stream)."""
    x = counts if isinstance(counts, np.ndarray) else np.asarray(counts)
    if x.shape != (n_channels,):
        return f"{x.size} channels; this decoder reads {n_channels}"
    kind = x.dtype.kind
    if kind in "iu" and x.dtype.isnative:  # a negative signed count, seen unsigned, is above any max_count
        if np.maximum.reduce(x.view(f"u{x.dtype.itemsize}") if kind == "i" else x) <= max_count:
            return None
    elif kind == "f" and x.min() >= 0 and x.max() <= max_count:  # NaN fails both
        if not (x - x.astype(np.int64)).any():
            return None
    return _first_problem(x, max_count)


def _first_problem(x: np.ndarray, max_count: int) -> str | None:
    """The first check that ``x`` fails, with the channel, or None (every check passed)."""
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return f"counts are not numbers ({x.dtype})"
    checks = ((~np.isfinite(x), "not finite"), (x < 0, "negative"), (x != np.round(x), "not an integer"),
              (x > max_count, f"above the plausible {max_count} per bin"))
    for bad, what in checks:
        if bad.any():
            where = int(np.argmax(bad))
            return f"count {x[where]:g} at channel {where} is {what}"
    return None
