"""The input checks of the stream faces (``Stream``, ``FastStream``): spike counts as float32, in
the shape the decoder reads, or a ConfigError that says what was expected and what came."""

from __future__ import annotations

import numpy as np

from motordecode.errors import ConfigError


def as_float32(values, what: str) -> np.ndarray:
    """Spike counts as a float32 array; ConfigError for anything that is not numbers."""
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().numpy()
    try:
        return np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: expected spike counts (numbers), got {type(values).__name__} ({exc}).") from None


def check_samples(values, n_channels: int, what: str) -> np.ndarray:
    """(T, C) float32 samples, or ConfigError naming the shape expected and the one given."""
    x = as_float32(values, what)
    if x.ndim != 2 or x.shape[1] != n_channels:
        raise ConfigError(f"{what}: expected samples of {n_channels} channels as (T, {n_channels}), got shape "
                          f"{tuple(x.shape)}.")
    return x
