"""Reader for the O'Doherty et al. reaching sessions (Zenodo record 583331), MATLAB v7.3 = HDF5.

h5py shows MATLAB arrays transposed: ``t`` (1, T) seconds every 4 ms, ``cursor_pos`` (2, T) mm,
``target_pos`` (2, T), ``finger_pos`` (3 or 6, T), ``spikes`` (U, C) object references, one per
(unit, channel) cell; each points to a (1, n) array of spike times in seconds, or, for an empty
MATLAB cell, to a uint64 array carrying the attribute ``MATLAB_empty``.

``ReachingFile`` checks the layout when it opens and then hands out one channel's spike times at a
time, so a caller never needs every spike time in memory at once.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from motordecode.data.binning import STEP_S
from motordecode.data.sessions import CATALOG
from motordecode.errors import DataFormatError

REQUIRED_VARIABLES = ("t", "cursor_pos", "target_pos", "spikes")
# what h5py and numpy raise on damaged files or variables of the wrong kind
_DAMAGE = (OSError, KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError)
_STEP_TOLERANCE_S = 1e-6


def unreadable_hdf5(path: Path, exc: Exception, what: str = "HDF5 file") -> DataFormatError:
    """The error for an HDF5 file (``what``: a session .mat, an NWB file) that h5py cannot read:
    truncated or corrupt, with what to do (a catalogued session is fetched again; any other file
    copied again from where it came from)."""
    text = str(exc)
    again = (f"fetch it again (`motordecode data fetch {path.stem}`)" if path.stem in CATALOG
             else "copy or download it again from where it came from")
    if "truncated" in text or "eof" in text.lower():
        size = path.stat().st_size if path.exists() else 0
        return DataFormatError(f"{path}: the {what} is truncated ({size} bytes on disk; {text}); the copy or "
                               f"download was probably interrupted: {again}.")
    return DataFormatError(f"{path}: the {what} is corrupt or unreadable ({text}); {again}.")


def _corrupt(path: Path, exc: Exception) -> DataFormatError:
    return unreadable_hdf5(path, exc, "session file")


def file_kind(path: Path) -> str:
    """'hdf5' (MATLAB v7.3), 'matlab-v5' or 'other', from the file's content; errors if not a file."""
    if not path.exists():
        raise DataFormatError(f"{path}: no such file.")
    if not path.is_file():
        raise DataFormatError(f"{path}: is not a file.")
    if h5py.is_hdf5(str(path)):
        return "hdf5"
    with open(path, "rb") as fh:
        return "matlab-v5" if fh.read(10).startswith(b"MATLAB 5.0") else "other"


def check_is_hdf5(path: Path) -> None:
    """Raise DataFormatError unless ``path`` is an HDF5 (MATLAB v7.3) file."""
    kind = file_kind(path)
    if kind == "hdf5":
        return
    with open(path, "rb") as fh:
        head = fh.read(16)
    if kind == "matlab-v5":
        raise DataFormatError(
            f"{path}: is a MATLAB v5 file, not v7.3 (HDF5). Reaching sessions from Zenodo 583331 are "
            "v7.3; binned recordings (spike counts + velocity) in v5 files load with load_recording."
        )
    raise DataFormatError(
        f"{path}: is not an HDF5 / MATLAB v7.3 file (first bytes {head!r}). "
        "Check that the download finished and that this is a session .mat file."
    )


class ReachingFile:
    """An open O'Doherty session file with a validated layout. Use as a context manager."""

    def __init__(self, path: str | os.PathLike, expected_channels: int | None = None):
        self.path = Path(path)
        check_is_hdf5(self.path)
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise _corrupt(self.path, exc) from None
        try:
            self._validate(expected_channels)
        except DataFormatError:
            self._file.close()
            raise
        except _DAMAGE as exc:
            self._file.close()
            raise _corrupt(self.path, exc) from None

    # -- layout checks -------------------------------------------------------------------------
    def _variable(self, name: str) -> np.ndarray:
        if name not in self._file:
            present = ", ".join(sorted(k for k in self._file.keys() if not k.startswith("#")))
            raise DataFormatError(
                f"{self.path}: missing variable '{name}' (present: {present or 'none'}). "
                "Is this a session of Zenodo record 583331?"
            )
        node = self._file[name]
        if not isinstance(node, h5py.Dataset):
            raise DataFormatError(f"{self.path}: '{name}' is a {type(node).__name__}, expected an array.")
        return node[()]

    def _validate(self, expected_channels: int | None) -> None:
        for name in REQUIRED_VARIABLES:
            if name not in self._file:
                self._variable(name)  # raises with the list of present variables
        t = self._numeric("t")
        if t.ndim != 2 or 1 not in t.shape or t.size < 3:
            raise DataFormatError(f"{self.path}: 't' has shape {t.shape}, expected (1, T) with T >= 3.")
        t = t.reshape(-1)
        if not np.isfinite(t).all():
            bad = ~np.isfinite(t)
            raise DataFormatError(f"{self.path}: 't' contains {int(bad.sum())} NaN or infinite values.")
        steps = np.diff(t)
        if (steps <= 0).any():
            first = int(np.argmax(steps <= 0))
            raise DataFormatError(
                f"{self.path}: 't' is not strictly increasing (t[{first}]={t[first]!r} >= "
                f"t[{first + 1}]={t[first + 1]!r})."
            )
        median_step = float(np.median(steps))
        if abs(median_step - STEP_S) > _STEP_TOLERANCE_S:
            raise DataFormatError(
                f"{self.path}: 't' is sampled every {median_step * 1e3:.3f} ms, expected 4 ms."
            )
        n = t.size
        self.t = t
        self.cursor_pos = self._xy("cursor_pos", n, allow_nan=False)
        self.target_pos = self._xy("target_pos", n, allow_nan=True)
        self.finger_pos = None
        if "finger_pos" in self._file:
            finger = self._numeric("finger_pos")
            if finger.ndim != 2 or finger.shape[1] != n or finger.shape[0] not in (3, 6):
                raise DataFormatError(
                    f"{self.path}: 'finger_pos' has shape {finger.shape}, expected (3, {n}) or (6, {n})."
                )
            self.finger_pos = finger.T
        spikes = self._file["spikes"]
        if not isinstance(spikes, h5py.Dataset) or spikes.ndim != 2 or h5py.check_dtype(ref=spikes.dtype) is None:
            raise DataFormatError(
                f"{self.path}: 'spikes' must be a 2-D cell array of references (units x channels), "
                f"found shape {spikes.shape} dtype {spikes.dtype}."
            )
        self._refs = spikes[()]
        self.n_unit_rows, self.n_channels = (int(s) for s in self._refs.shape)
        if expected_channels is not None and self.n_channels != expected_channels:
            raise DataFormatError(
                f"{self.path}: {self.n_channels} channels, expected {expected_channels}. "
                "Indy sessions of the benchmark have 96 channels and Loco sessions 192."
            )

    def _numeric(self, name: str) -> np.ndarray:
        value = np.asarray(self._variable(name))
        if value.dtype.kind not in "biuf":
            raise DataFormatError(f"{self.path}: '{name}' holds {value.dtype} values, expected numbers.")
        return value.astype(np.float64)

    def _xy(self, name: str, n: int, allow_nan: bool) -> np.ndarray:
        value = self._numeric(name)
        if value.shape != (2, n):
            raise DataFormatError(f"{self.path}: '{name}' has shape {value.shape}, expected (2, {n}).")
        if not allow_nan and not np.isfinite(value).all():
            bad = int((~np.isfinite(value)).any(axis=0).sum())
            raise DataFormatError(f"{self.path}: '{name}' contains NaN or infinite values at {bad} time points.")
        return value.T

    # -- spikes --------------------------------------------------------------------------------
    def channel_spike_times(self, channel: int) -> list[np.ndarray]:
        """Spike times (seconds, 1-D float64) of every non-empty unit of one channel."""
        units = []
        try:
            for row in range(self.n_unit_rows):
                ref = self._refs[row, channel]
                if not ref:
                    raise DataFormatError(
                        f"{self.path}: spikes{{{row + 1},{channel + 1}}} is a null reference."
                    )
                node = self._file[ref]
                if not isinstance(node, h5py.Dataset):
                    raise DataFormatError(
                        f"{self.path}: spikes{{{row + 1},{channel + 1}}} does not point to an array."
                    )
                if node.attrs.get("MATLAB_empty", 0):
                    continue
                units.append(np.asarray(node[()], dtype=np.float64).reshape(-1))
        except DataFormatError:
            raise
        except _DAMAGE as exc:
            raise _corrupt(self.path, exc) from None
        return units

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ReachingFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
