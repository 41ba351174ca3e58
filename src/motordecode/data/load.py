"""Load any supported recording into a :class:`Recording`.

- MATLAB v7.3 (HDF5) reaching sessions of Zenodo 583331: read, binned and labelled exactly as
  NeuroBench 2.3.0 does (see :mod:`motordecode.data.binning`), with reach bounds for the split.
- .npz or MATLAB v5 .mat binned recordings: :func:`motordecode.data.binned.load_binned`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from motordecode.data.binned import load_binned
from motordecode.data.binning import STEP_S, bin_edges, box_sum, mark_spikes, velocity_labels, width_in_steps
from motordecode.data.read_mat import ReachingFile, file_kind
from motordecode.data.recording import Recording
from motordecode.data.sessions import expected_channels_for
from motordecode.data.splits import reach_bounds
from motordecode.errors import DataFormatError


def load_reaching(path: str | os.PathLike, bin_width_s: float = STEP_S,
                  expected_channels: int | None = None) -> Recording:
    """Read an O'Doherty session: samples (T, C) of width ``bin_width_s``, velocity, reach bounds.

    ``expected_channels`` defaults to the catalog's count when the file is a known session.
    """
    path = Path(path)
    steps = width_in_steps(bin_width_s)
    if expected_channels is None:
        expected_channels = expected_channels_for(path.stem)
    with ReachingFile(path, expected_channels) as f:
        edges = bin_edges(f.t[0], f.t[-1], bin_width_s)
        train = np.zeros((len(edges), f.n_channels), dtype=np.uint8)
        units = np.zeros(f.n_channels, dtype=np.int64)
        counts = np.zeros(f.n_channels, dtype=np.int64)
        for channel in range(f.n_channels):
            for times in f.channel_spike_times(channel):
                mark_spikes(train, channel, times, edges)
                units[channel] += 1
                counts[channel] += times.size
        n = len(f.t)
        samples = box_sum(train, steps)
        if len(samples) < n:
            raise DataFormatError(
                f"{path}: 't' has uneven steps: {len(samples)} bins of 4 ms span its {n} time points."
            )
        spikes = samples[:n]
        # NeuroBench's float arange can give one more sample than there are labels; its wrap-around
        # reads it, so it is kept for exact reproduction (Recording.samples_with_tail)
        meta = {"source": str(path), "format": "mat-v7.3", "units_per_channel": units,
                "spike_counts": counts, "n_unit_rows": f.n_unit_rows, "tail": np.array(samples[n:])}
        name = path.stem
        return Recording(
            spikes=np.ascontiguousarray(spikes), velocity=velocity_labels(f.cursor_pos),
            bin_width_s=steps * STEP_S, step_s=STEP_S, t=f.t, reach_bounds=reach_bounds(f.target_pos),
            name=name, monkey=next((m for m in ("indy", "loco") if m in name.lower()), None), meta=meta,
        )


def load_recording(path: str | os.PathLike, bin_width_s: float | None = None, **kwargs) -> Recording:
    """Load a reaching session (HDF5) or a binned recording (.npz / v5 .mat), by content."""
    path = Path(path)
    kind = file_kind(path)
    if kind == "hdf5":
        return load_reaching(path, STEP_S if bin_width_s is None else bin_width_s, **kwargs)
    if kind == "matlab-v5" or path.suffix.lower() == ".npz":
        return load_binned(path, bin_width_s=bin_width_s, **kwargs)
    return load_reaching(path)  # raises the precise "not an HDF5 file" error
