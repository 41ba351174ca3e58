"""Generic binned recordings: spike counts + velocity + bin width, from .npz or a MATLAB v5 .mat.

Accepted variables (names can be overridden): spike counts ``spikes`` (T, C) or (C, T); velocity
``velocity`` or ``handVel`` (T, D) or (D, T), of which the first ``velocity_dims`` components are
kept; bin times ``time`` (T,) and/or ``bin_width_s``. The time axis is the one of length T = the
number of bin times (or, without times, the longer axis of the velocity). There are no reach
markers, so the default split is contiguous in time (50 / 25 / 25).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import scipy.io

from motordecode.data.recording import Recording
from motordecode.errors import DataFormatError

SPIKE_NAMES = ("spikes",)
VELOCITY_NAMES = ("velocity", "handVel", "vel")
TIME_NAMES = ("time", "t")


def _read_variables(path: Path) -> dict:
    if not path.exists():
        raise DataFormatError(f"{path}: no such file.")
    if path.suffix == ".npz":
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ValueError("it holds a single array, not named variables")
            with loaded as npz:
                return {k: npz[k] for k in npz.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise DataFormatError(f"{path}: not a readable .npz file ({exc}).") from None
    try:
        return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    except NotImplementedError:
        raise DataFormatError(
            f"{path}: is MATLAB v7.3 (HDF5); read reaching sessions with load_recording / `data info`."
        ) from None
    except (ValueError, OSError, TypeError, scipy.io.matlab.MatReadError) as exc:
        raise DataFormatError(f"{path}: not a readable MATLAB v5 .mat file ({exc}).") from None


def _pick(variables: dict, names: tuple, what: str, path: Path, required: bool = True):
    for name in names:
        if name in variables:
            value = np.asarray(variables[name])
            if value.dtype.kind not in "buif" or value.size == 0:
                raise DataFormatError(f"{path}: '{name}' ({what}) must be a non-empty real numeric array, "
                                      f"got {value.dtype} of shape {value.shape}.")
            return value
    if required:
        raise DataFormatError(
            f"{path}: no {what} variable (looked for {', '.join(names)}; found {', '.join(sorted(variables)) or 'none'})."
        )
    return None


def _time_major(array: np.ndarray, n: int, what: str, path: Path) -> np.ndarray:
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or n not in array.shape:
        raise DataFormatError(f"{path}: {what} has shape {array.shape}; neither axis has the {n} time bins.")
    return array if array.shape[0] == n else array.T


def load_binned(path: str | os.PathLike, *, spikes_var: str | None = None, velocity_var: str | None = None,
                time_var: str | None = None, bin_width_s: float | None = None,
                velocity_dims: int = 2) -> Recording:
    """Read a binned recording into a :class:`Recording` (see the module docstring)."""
    path = Path(path)
    variables = _read_variables(path)
    spikes = _pick(variables, (spikes_var,) if spikes_var else SPIKE_NAMES, "spike-count", path)
    velocity = _pick(variables, (velocity_var,) if velocity_var else VELOCITY_NAMES, "velocity", path)
    time = _pick(variables, (time_var,) if time_var else TIME_NAMES, "time", path, required=False)
    if time is not None:
        time = time.reshape(-1).astype(np.float64)
        n = len(time)
    else:
        if velocity.ndim != 2:
            raise DataFormatError(f"{path}: velocity has shape {velocity.shape}, expected 2-D.")
        n = max(velocity.shape)
    spikes = _time_major(spikes, n, "spikes", path)
    velocity = _time_major(velocity, n, "velocity", path)[:, :velocity_dims].astype(np.float32)
    if not np.isfinite(velocity).all():
        raise DataFormatError(f"{path}: velocity contains NaN or infinite values.")
    if spikes.dtype.kind == "f" and not np.isfinite(spikes).all():
        raise DataFormatError(f"{path}: spike counts contain NaN or infinite values.")
    if (spikes < 0).any():
        raise DataFormatError(f"{path}: spike counts must be >= 0.")
    if spikes.shape[1] == 0 or n < 4:
        raise DataFormatError(f"{path}: needs at least one channel and 4 time bins, got {spikes.shape}.")
    if time is not None and not (np.isfinite(time).all() and (np.diff(time) > 0).all()):
        raise DataFormatError(f"{path}: bin times must be finite and strictly increasing.")
    if bin_width_s is None and "bin_width_s" in variables:
        bin_width_s = _pick(variables, ("bin_width_s",), "bin width", path).reshape(-1)[0]
    if bin_width_s is None:
        if time is None:
            raise DataFormatError(f"{path}: give the bin width (no 'time' or 'bin_width_s' variable).")
        bin_width_s = np.median(np.diff(time))
    bin_width_s = float(bin_width_s)
    if not (np.isfinite(bin_width_s) and bin_width_s > 0):
        raise DataFormatError(f"{path}: bin width must be a positive number of seconds, got {bin_width_s}.")
    if time is None:
        time = np.arange(n) * bin_width_s
    if np.issubdtype(spikes.dtype, np.floating) and np.array_equal(spikes, np.round(spikes)):
        spikes = spikes.astype(np.uint16 if spikes.max(initial=0) < 2**16 else np.int64)
    return Recording(
        spikes=np.ascontiguousarray(spikes), velocity=np.ascontiguousarray(velocity),
        bin_width_s=bin_width_s, step_s=bin_width_s, t=time, reach_bounds=None,
        name=path.stem, monkey=None,
        meta={"source": str(path), "format": path.suffix.lstrip(".") or "mat", "label_units": "as stored in the file",
              "spike_counts": spikes.sum(axis=0).astype(np.int64)},
    )
