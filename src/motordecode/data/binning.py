"""Binning spike times and computing velocity labels, exactly as NeuroBench 2.3.0's PrimateReaching.

For a bin width ``w`` (a multiple of the 4 ms sample step, ``r = round(w / 4 ms)``):

- edges ``e_m = t_0 - w + m * 4 ms`` (``np.arange(t_0 - w, t_end, 4 ms)``, the same floats);
- the binary 4 ms train ``B[m + 1, c] = 1`` when any unit of channel ``c`` fired in
  ``[e_m, e_{m+1})`` (the last edge is inclusive, as in ``np.histogram``); ``B[0] = 0``;
- samples ``X[j, c] = sum_{i=j}^{j+r-1} B[i, c]`` (a trailing box sum, so counts saturate at r),
  cut to the T time points of ``t``;
- labels ``v_j = (p_{j+1} - p_{j-1}) / 2`` in float32 (one-sided at both ends), the velocity of
  ``cursor_pos`` in mm per 4 ms step.
"""

from __future__ import annotations

import numpy as np

from motordecode.errors import ConfigError, DataFormatError

STEP_S = 0.004
MIN_BIN_S, MAX_BIN_S = 0.001, 1.0  # the bin widths a recording may have: 1 ms to 1 s


def check_bin_width(bin_width_s: float, where: str = "", error: type = ConfigError) -> float:
    """``bin_width_s`` as a float; ``error`` (a setting: ConfigError; a file's: DataFormatError)
    unless it is a number from 1 ms to 1 s (a narrower bin would make billions of samples, a wider
    one leaves nothing to decode)."""
    try:
        width = float(bin_width_s)
    except (TypeError, ValueError):
        width = float("nan")
    if not (np.isfinite(width) and MIN_BIN_S <= width <= MAX_BIN_S):
        shown = f"{width:g} s" if width == width else repr(bin_width_s)
        raise error(f"{where}bin width {shown} is outside 1 ms to 1 s; give the width of one bin as a positive "
                    "number of seconds from 0.001 to 1 (e.g. 0.004 or 0.05).")
    return width


def width_in_steps(bin_width_s: float) -> int:
    """Number of 4 ms steps in one bin, ``round(bin_width / 4 ms)`` (NeuroBench's ``ratio``)."""
    steps = int(np.round(bin_width_s / STEP_S))
    if steps < 1 or abs(steps * STEP_S - bin_width_s) > 1e-9:
        raise ConfigError(f"bin width {bin_width_s * 1e3:g} ms is not a positive multiple of 4 ms.")
    check_bin_width(bin_width_s)
    return steps


def bin_edges(t0: float, t_end: float, bin_width_s: float) -> np.ndarray:
    """Histogram edges of the binary 4 ms train for samples of width ``bin_width_s``."""
    return np.arange(t0 - bin_width_s, t_end, STEP_S)


def histogram_bins(times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``np.histogram`` bin of each time for uniform ``edges``, -1 outside (last edge inclusive).

    The bin is guessed arithmetically, ``floor((s - e_0) / 4 ms)``, then corrected by at most one
    against the actual edge values, so it equals a binary search over ``edges`` at O(1) per spike.
    """
    last = len(edges) - 2
    with np.errstate(invalid="ignore"):
        guess = np.floor((times - edges[0]) / STEP_S)
    bins = np.clip(np.nan_to_num(guess, nan=-1.0, posinf=last + 1, neginf=-1), -1, last + 1).astype(np.int64)
    down = (bins >= 0) & (times < edges[np.maximum(bins, 0)])
    bins[down] -= 1
    up = (bins >= 0) & (bins <= last) & (times >= edges[np.clip(bins + 1, 0, last + 1)])
    bins[up] += 1
    beyond = bins == last + 1  # at or after the last edge: only the edge itself is counted
    bins[beyond] = np.where(times[beyond] == edges[-1], last, -1)
    return bins


def mark_spikes(train: np.ndarray, channel: int, times: np.ndarray, edges: np.ndarray) -> None:
    """OR spikes at ``times`` into column ``channel`` of the binary train (row = histogram bin + 1)."""
    bins = histogram_bins(times, edges)
    train[bins[bins >= 0] + 1, channel] = 1


def box_sum(train: np.ndarray, steps: int) -> np.ndarray:
    """Trailing sums of ``steps`` rows ('valid' part): ``out[j] = sum(train[j : j + steps])``."""
    if steps == 1:
        return train
    n_out = train.shape[0] - steps + 1
    out = train[:n_out].astype(np.uint8 if steps < 256 else np.uint16)
    for shift in range(1, steps):
        out += train[shift : shift + n_out]
    return out


def velocity_labels(position: np.ndarray) -> np.ndarray:
    """Central-difference gradient along time of a (T, D) position, in float32, per step."""
    pos = np.asarray(position, dtype=np.float32)
    vel = np.empty_like(pos)
    vel[1:-1] = (pos[2:] - pos[:-2]) / np.float32(2)
    vel[0] = pos[1] - pos[0]
    vel[-1] = pos[-1] - pos[-2]
    return vel


def bin_spike_times(path, t: np.ndarray, trains, n_channels: int, bin_width_s: float):
    """Samples (T, C) at the 4 ms time points ``t`` as NeuroBench bins the O'Doherty files: the
    units of a channel OR-ed into a binary 4 ms train, then trailing sums over ``bin_width_s``.
    ``trains`` yields (channel, spike times) per unit. Returns (samples, meta)."""
    steps = width_in_steps(bin_width_s)
    edges = bin_edges(t[0], t[-1], bin_width_s)
    train = np.zeros((len(edges), n_channels), dtype=np.uint8)
    units = np.zeros(n_channels, dtype=np.int64)
    counts = np.zeros(n_channels, dtype=np.int64)
    for channel, times in trains:
        mark_spikes(train, channel, times, edges)
        units[channel] += 1
        counts[channel] += times.size
    n = len(t)
    samples = box_sum(train, steps)
    if len(samples) < n:
        raise DataFormatError(f"{path}: 't' has uneven steps: {len(samples)} bins of 4 ms span "
                              f"its {n} time points.")
    # NeuroBench's float arange can give one more sample than there are labels; its wrap-around
    # reads it, so it is kept for exact reproduction (Recording.samples_with_tail)
    meta = {"source": str(path), "units_per_channel": units, "spike_counts": counts,
            "tail": np.array(samples[n:]), "bin_width_s": steps * STEP_S}
    return np.ascontiguousarray(samples[:n]), meta
