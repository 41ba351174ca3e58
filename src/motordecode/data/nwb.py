"""NWB recordings (Neurodata Without Borders, the DANDI archive's format) into a :class:`Recording`.

- Samples: the spike times of the units table, binned like the O'Doherty files
  (:func:`~motordecode.data.binning.bin_spike_times`): the units of one electrode OR-ed into a binary
  4 ms train when the table has an ``electrodes`` column (one channel per electrodes-table row),
  one channel per unit otherwise; then trailing sums over the bin width.
- Time points and labels, from ``processing/behavior``: a position series (``cursor_pos``, else
  ``finger_pos``; x and y) differentiated per 4 ms step like the O'Doherty files, else a velocity
  series (``finger_vel``, ``cursor_vel``) as stored. A series 4 ms apart gives the time points
  itself; any other rate is interpolated linearly onto 4 ms points over its span.
- Reaches: each trial of the trials table starts one (the split goes by reach order); without
  trials the split is contiguous in time.
- Samples outside every unit's ``obs_intervals``, or whose label is not finite, are marked
  invalid (``Recording.valid``) and left out of the splits.
- Neural Latents MC_RTT (DANDI 000129): the ``heldout`` units column is honoured by ``heldout``
  ("include": used as inputs, the default; "exclude": left out). Its test file has no behaviour
  and is refused with a clear message.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import h5py
import numpy as np

from motordecode.data.binning import STEP_S, bin_spike_times, velocity_labels
from motordecode.data.read_mat import unreadable_hdf5
from motordecode.data.recording import Recording
from motordecode.data.sessions import monkey_of
from motordecode.errors import ConfigError, DataFormatError

POSITIONS = ("cursor_pos", "finger_pos")
VELOCITIES = ("finger_vel", "cursor_vel")
HELDOUT = ("include", "exclude")


def require_pynwb():
    """The pynwb module, or a clear error naming the extra that installs it."""
    try:
        import pynwb
    except ImportError:
        raise ConfigError("reading and writing NWB files needs pynwb: pip install 'motordecode[nwb]'.") from None
    return pynwb


def is_nwb(path: str | os.PathLike) -> bool:
    """True for an HDF5 file with NWB's root attributes (a MATLAB v7.3 file has none)."""
    try:
        with h5py.File(path, "r") as f:
            return "nwb_version" in f.attrs or f.attrs.get("neurodata_type") in ("NWBFile", b"NWBFile")
    except OSError:
        return False


def _series(nwbfile) -> dict:
    """Behaviour time series by name: ``processing/behavior``, containers (Position, ...) opened."""
    module = nwbfile.processing.get("behavior")
    if module is None:
        return {}
    found = {}
    for name, item in module.data_interfaces.items():
        children = getattr(item, "spatial_series", None) or getattr(item, "time_series", None)
        if children:
            found.update(children)
        else:
            found[name] = item
    return found


def _times(series) -> np.ndarray:
    if series.timestamps is not None:
        return np.asarray(series.timestamps[:], dtype=np.float64)
    return float(series.starting_time or 0.0) + np.arange(len(series.data)) / float(series.rate)


def _on_grid(path: Path, series) -> tuple[np.ndarray, np.ndarray]:
    """(4 ms time points, the series' x and y on them)."""
    times, data = _times(series), np.asarray(series.data[:], dtype=np.float64)
    if data.ndim != 2 or data.shape[1] < 2 or len(times) != len(data):
        raise DataFormatError(f"{path}: behaviour series {series.name!r} must be (T, >=2) with one time per row; "
                              f"got data {data.shape} and {len(times)} times.")
    data = data[:, :2]
    if len(times) < 3 or np.any(np.diff(times) <= 0):
        raise DataFormatError(f"{path}: behaviour series {series.name!r} needs at least 3 increasing time stamps.")
    if np.all(np.abs(np.diff(times) - STEP_S) < 1e-6):
        return times, data
    grid = np.arange(np.ceil(times[0] / STEP_S - 1e-9), np.floor(times[-1] / STEP_S + 1e-9) + 1) * STEP_S
    if len(grid) < 3:
        raise DataFormatError(f"{path}: behaviour series {series.name!r} spans less than three 4 ms steps.")
    return grid, np.stack([np.interp(grid, times, data[:, d]) for d in range(2)], axis=1)


def _units(path: Path, nwbfile, heldout: str):
    """(channel of each kept unit, spike times of each, obs_intervals of each, number of channels)."""
    units = nwbfile.units
    if units is None or len(units) == 0:
        raise DataFormatError(f"{path}: the NWB file has no units table (sorted spike times); nothing to decode.")
    keep = np.ones(len(units), dtype=bool)
    if heldout == "exclude":
        if "heldout" not in units.colnames:
            raise ConfigError(f"{path}: held-out units are to be excluded, but the units table has no 'heldout' column; "
                              "every unit is an input here.")
        keep = ~np.asarray(units["heldout"].data[:], dtype=bool)
    if "electrodes" in units.colnames and nwbfile.electrodes is not None and len(nwbfile.electrodes):
        n_channels = len(nwbfile.electrodes)
        region = units["electrodes"]  # a ragged column: per-unit ends into the flat electrode rows
        ends, rows = np.asarray(region.data[:], dtype=np.int64), np.asarray(region.target.data[:], dtype=np.int64)
        starts = np.concatenate([[0], ends[:-1]])
        channels = np.array([rows[a] if b > a else -1 for a, b in zip(starts, ends)])
        if np.any(channels < 0):
            raise DataFormatError(f"{path}: a unit names no electrode; every unit needs one to be grouped by channel.")
    else:
        n_channels = int(keep.sum())
        channels = np.cumsum(keep) - 1
    times = [np.asarray(units.get_unit_spike_times(i), dtype=np.float64) for i in range(len(units))]
    intervals = None
    if "obs_intervals" in units.colnames:
        intervals = [np.asarray(units.get_unit_obs_intervals(i), dtype=np.float64).reshape(-1, 2)
                     for i in range(len(units))]
        bad = [i for i, iv in enumerate(intervals) if len(iv) and np.any(iv[:, 1] <= iv[:, 0])]
        if bad:
            raise DataFormatError(f"{path}: unit {bad[0]} has an empty or reversed obs_interval "
                                  f"{intervals[bad[0]][np.argmax(intervals[bad[0]][:, 1] <= intervals[bad[0]][:, 0])].tolist()}"
                                  "; every interval needs stop > start.")
    kept = np.nonzero(keep)[0]
    return (channels[kept], [times[i] for i in kept], None if intervals is None else [intervals[i] for i in kept],
            n_channels)


def _reach_bounds(t: np.ndarray, nwbfile) -> np.ndarray | None:
    trials = nwbfile.trials
    if trials is None or len(trials) == 0:
        return None
    starts = np.searchsorted(t, np.asarray(trials["start_time"].data[:], dtype=np.float64) - 1e-9)
    starts = np.unique(np.clip(starts, 0, len(t)))
    starts = np.union1d([0], starts[starts < len(t)])
    return np.stack([starts, np.append(starts[1:], len(t))], axis=1).astype(np.int64)


def load_nwb(path: str | os.PathLike, bin_width_s: float = STEP_S, heldout: str = "include") -> Recording:
    """Read an NWB file (see the module docstring) at samples of ``bin_width_s`` every 4 ms."""
    path = Path(path)
    NWBHDF5IO = require_pynwb().NWBHDF5IO
    if heldout not in HELDOUT:
        raise ConfigError(f"heldout must be one of {', '.join(HELDOUT)}, got {heldout!r}.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynwb's cached-namespace notices
        io = None
        try:
            io = NWBHDF5IO(str(path), "r", load_namespaces=True)
            nwbfile = io.read()
        except Exception as exc:  # noqa: BLE001 - every unreadable file gets one clear message
            if io is not None:
                io.close()
            if isinstance(exc, OSError):  # h5py: truncated or damaged
                raise unreadable_hdf5(path, exc, "NWB file") from None
            raise DataFormatError(f"{path}: not a readable NWB file ({str(exc).splitlines()[0]}).") from None
    try:
        series = _series(nwbfile)
        position = next((series[n] for n in POSITIONS if n in series), None)
        velocity = next((series[n] for n in VELOCITIES if n in series), None)
        if position is None and velocity is None:
            raise DataFormatError(
                f"{path}: the NWB file has no behaviour (processing/behavior with {', '.join(POSITIONS + VELOCITIES)}), "
                "so it has no labels to train or evaluate on (e.g. the MC_RTT test file, whose behaviour is held back).")
        t, values = _on_grid(path, position if position is not None else velocity)
        labels = velocity_labels(values) if position is not None else values.astype(np.float32)
        channels, times, intervals, n_channels = _units(path, nwbfile, heldout)
        spikes, meta = bin_spike_times(path, t, zip(channels, times), n_channels, bin_width_s)
        valid = np.isfinite(labels).all(axis=1)
        if intervals is not None and any(len(iv) for iv in intervals):
            # sample t counts the spikes in [t - w - 4 ms, t - 4 ms): observed when that lies in an interval
            observed = np.zeros(len(t), dtype=bool)
            lead = meta["bin_width_s"] + STEP_S
            for iv in intervals:
                for start, stop in iv:
                    observed[np.searchsorted(t, start + lead - 1e-9):np.searchsorted(t, stop + STEP_S + 1e-9)] = True
            valid &= observed
        if not valid.any():
            raise DataFormatError(f"{path}: no sample lies inside the units' obs_intervals with a finite label; "
                                  "the time bases of the units and the behaviour do not overlap.")
        labels = np.where(valid[:, None], labels, 0.0).astype(np.float32)
        meta.update(format="nwb", behaviour=(position if position is not None else velocity).name,
                    label_units="per 4 ms step" if position is not None else "as stored", heldout=heldout,
                    session_id=nwbfile.session_id, identifier=nwbfile.identifier)
        name = path.stem
        return Recording(spikes=spikes, velocity=labels, bin_width_s=meta.pop("bin_width_s"), step_s=STEP_S, t=t,
                         reach_bounds=_reach_bounds(t, nwbfile), name=name, monkey=monkey_of(name), meta=meta,
                         valid=None if valid.all() else valid)
    finally:
        io.close()
