"""Write a reaching session as NWB (pynwb), in the layout :mod:`motordecode.data.nwb` reads.

- electrodes: one row per channel (a Utah array in M1); units: one row per sorted unit, its spike
  times, its electrode, its observation interval (the whole session, the pre-roll included) and,
  optionally, a boolean ``heldout`` column (the Neural Latents MC_RTT layout);
- ``processing/behavior``: ``cursor_pos``, ``target_pos`` and ``finger_pos`` (mm) on the session's
  time points (``with_behaviour=False`` leaves them out, like MC_RTT's test file);
- trials: one per reach (the target changes), so the reader splits by the same reaches.

The file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import datetime
import os
import warnings
from pathlib import Path

import numpy as np

from motordecode.data.nwb import require_pynwb
from motordecode.data.splits import reach_bounds
from motordecode.fileio import atomic_write_path


def write_session_nwb(path: str | os.PathLike, *, t: np.ndarray, cursor_pos: np.ndarray, target_pos: np.ndarray,
                      finger_pos: np.ndarray | None, spike_times: list[list[np.ndarray]], identifier: str,
                      heldout: np.ndarray | None = None, with_behaviour: bool = True,
                      description: str = "motordecode reaching session",
                      attributes: dict[str, str] | None = None) -> Path:
    """``spike_times[channel]`` lists the spike-time arrays of that channel's units; ``heldout``
    marks units (in channel order) as held out; ``attributes`` become string attributes of the
    file's root."""
    pynwb = require_pynwb()
    NWBHDF5IO, NWBFile, TimeSeries = pynwb.NWBHDF5IO, pynwb.NWBFile, pynwb.TimeSeries
    SpatialSeries = pynwb.behavior.SpatialSeries

    t = np.asarray(t, dtype=np.float64)
    start = datetime.datetime(2017, 1, 31, tzinfo=datetime.timezone.utc)
    nwbfile = NWBFile(session_description=description, identifier=identifier, session_start_time=start,
                      session_id=Path(path).stem)
    device = nwbfile.create_device(name="array", description="96- or 192-channel Utah arrays")
    group = nwbfile.create_electrode_group(name="M1", description="motor cortex array", location="M1",
                                           device=device)
    for _ in spike_times:
        nwbfile.add_electrode(group=group, location="M1")
    if heldout is not None:
        nwbfile.add_unit_column(name="heldout", description="held out of the inputs in the test data")
    observed = [[float(min(t[0], min((s[0] for unit in spike_times for s in unit if len(s)), default=t[0]))),
                 float(t[-1] + (t[1] - t[0]))]]
    row = 0
    for channel, units in enumerate(spike_times):
        for times in units:
            extra = {} if heldout is None else {"heldout": bool(heldout[row])}
            nwbfile.add_unit(spike_times=np.asarray(times, dtype=np.float64), electrodes=[channel],
                             obs_intervals=observed, **extra)
            row += 1
    if with_behaviour:
        behaviour = nwbfile.create_processing_module(name="behavior", description="cursor, target and finger")
        cursor = SpatialSeries(name="cursor_pos", data=np.asarray(cursor_pos, dtype=np.float64), timestamps=t,
                               reference_frame="screen", unit="mm")
        behaviour.add(cursor)
        behaviour.add(SpatialSeries(name="target_pos", data=np.asarray(target_pos, dtype=np.float64),
                                    timestamps=cursor, reference_frame="screen", unit="mm"))
        if finger_pos is not None:
            behaviour.add(TimeSeries(name="finger_pos", data=np.asarray(finger_pos, dtype=np.float64),
                                     timestamps=cursor, unit="mm"))
        step = float(t[1] - t[0])
        for first, stop in reach_bounds(target_pos):
            nwbfile.add_trial(start_time=float(t[first]), stop_time=float(t[stop - 1] + step))
    path = Path(path)
    with atomic_write_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynwb's notes on optional metadata
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwbfile)
        if attributes:
            import h5py

            with h5py.File(tmp, "a") as f:
                f.attrs.update(attributes)
    return path
