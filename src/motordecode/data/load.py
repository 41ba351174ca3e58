"""Load any supported recording into a :class:`Recording`.

- MATLAB v7.3 (HDF5) reaching sessions of Zenodo 583331: read, binned and labelled exactly as
  NeuroBench 2.3.0 does (see :mod:`motordecode.data.binning`), with reach bounds for the split.
- NWB files (DANDI): :func:`motordecode.data.nwb.load_nwb` (needs ``motordecode[nwb]``).
- .npz or MATLAB v5 .mat binned recordings: :func:`motordecode.data.binned.load_binned`.
"""

from __future__ import annotations

import os
from pathlib import Path

from motordecode.data.binned import load_binned
from motordecode.data.nwb import is_nwb
from motordecode.data.binning import STEP_S, bin_spike_times, velocity_labels
from motordecode.data.read_mat import ReachingFile, file_kind
from motordecode.data.recording import Recording
from motordecode.data.sessions import expected_channels_for, monkey_of
from motordecode.data.splits import reach_bounds
from motordecode.errors import ConfigError


def load_reaching(path: str | os.PathLike, bin_width_s: float = STEP_S,
                  expected_channels: int | None = None) -> Recording:
    """Read an O'Doherty session: samples (T, C) of width ``bin_width_s``, velocity, reach bounds.

    ``expected_channels`` defaults to the catalog's count when the file is a known session.
    """
    path = Path(path)
    if expected_channels is None:
        expected_channels = expected_channels_for(path.stem)
    with ReachingFile(path, expected_channels) as f:
        trains = ((channel, times) for channel in range(f.n_channels) for times in f.channel_spike_times(channel))
        spikes, meta = bin_spike_times(path, f.t, trains, f.n_channels, bin_width_s)
        meta.update(format="mat-v7.3", n_unit_rows=f.n_unit_rows, label_units="mm per 4 ms step")
        return Recording(
            spikes=spikes, velocity=velocity_labels(f.cursor_pos), bin_width_s=meta.pop("bin_width_s"),
            step_s=STEP_S, t=f.t, reach_bounds=reach_bounds(f.target_pos), name=path.stem,
            monkey=monkey_of(path.stem), meta=meta,
        )


def load_recording(path: str | os.PathLike, bin_width_s: float | None = None, **kwargs) -> Recording:
    """Load a reaching session (MATLAB v7.3), an NWB file, or a binned recording (.npz / v5 .mat), by
    content; ``kwargs`` go to the reader (NWB: ``heldout``)."""
    path = Path(path)
    kind = file_kind(path)
    if kind == "hdf5" and is_nwb(path):
        from motordecode.data.nwb import load_nwb

        return load_nwb(path, STEP_S if bin_width_s is None else bin_width_s, **kwargs)
    if kwargs.pop("heldout", "include") != "include":
        raise ConfigError(f"{path}: held-out units are an NWB notion (Neural Latents MC_RTT); this file has none.")
    if kind == "hdf5":
        return load_reaching(path, STEP_S if bin_width_s is None else bin_width_s, **kwargs)
    if kind == "matlab-v5" or path.suffix.lower() == ".npz":
        return load_binned(path, bin_width_s=bin_width_s, **kwargs)
    return load_reaching(path)  # raises the precise "not an HDF5 file" error
