"""Write a reaching session as MATLAB v7.3 (HDF5) in the layout of the Zenodo 583331 files.

The 512-byte MATLAB user block carries the v7.3 header; every variable has a ``MATLAB_class``
attribute; cell arrays (``spikes``, ``wf``, ``chan_names``) are datasets of object references into
the ``#refs#`` group; an empty cell points to a uint64 ``[0, 0]`` array with ``MATLAB_empty = 1``.
Shapes are as h5py shows MATLAB's column-major arrays: ``t`` (1, T), ``cursor_pos`` (2, T),
``finger_pos`` (3, T), ``target_pos`` (2, T), ``spikes`` and ``wf`` (U, C), ``chan_names`` (1, C).
Waveforms are not synthesised: every ``wf`` cell is empty.

The file is written under a temporary name and renamed, so no half-written file is ever visible.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import h5py
import numpy as np

from motordecode.fileio import atomic_write_path

_USERBLOCK = 512


def _matlab_header() -> bytes:
    created = datetime.datetime.now(datetime.timezone.utc).strftime("%a %b %d %H:%M:%S %Y")
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {created} HDF5 schema 1.00 .".encode()
    return text.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"


class _Refs:
    """Allocates datasets in ``#refs#`` with MATLAB-like short names (a, b, ..., z, ba, ...)."""

    def __init__(self, f: h5py.File):
        self.group = f.create_group("#refs#")
        empty = self.group.create_dataset("a", data=np.zeros(2, dtype=np.uint64))
        empty.attrs["MATLAB_class"] = np.bytes_("canonical empty")
        empty.attrs["MATLAB_empty"] = np.uint8(1)
        self.count = 1

    def _name(self) -> str:
        n, letters = self.count, ""
        while True:
            n, rem = divmod(n, 26)
            letters = chr(ord("a") + rem) + letters
            if n == 0:
                break
        self.count += 1
        return letters

    def array(self, data: np.ndarray, matlab_class: str) -> h5py.Reference:
        ds = self.group.create_dataset(self._name(), data=data)
        ds.attrs["MATLAB_class"] = np.bytes_(matlab_class)
        if matlab_class == "char":
            ds.attrs["MATLAB_int_decode"] = np.int32(2)
        return ds.ref

    def empty(self) -> h5py.Reference:
        ds = self.group.create_dataset(self._name(), data=np.zeros(2, dtype=np.uint64))
        ds.attrs["MATLAB_class"] = np.bytes_("double")
        ds.attrs["MATLAB_empty"] = np.uint8(1)
        return ds.ref


def _double(f: h5py.File, name: str, data: np.ndarray) -> None:
    f.create_dataset(name, data=np.asarray(data, dtype=np.float64)).attrs["MATLAB_class"] = np.bytes_("double")


def _cell(f: h5py.File, name: str, refs: np.ndarray) -> None:
    ds = f.create_dataset(name, data=refs, dtype=h5py.ref_dtype)
    ds.attrs["MATLAB_class"] = np.bytes_("cell")


def write_reaching_mat(path: str | os.PathLike, *, t: np.ndarray, cursor_pos: np.ndarray,
                       target_pos: np.ndarray, finger_pos: np.ndarray,
                       spike_times: list[list[np.ndarray]], n_unit_rows: int = 5,
                       attributes: dict[str, str] | None = None) -> Path:
    """Write a session. Positions are (T, D) time-major; ``spike_times[c][u]`` are seconds;
    ``attributes`` become string attributes of the file's root (MATLAB ignores them)."""
    path = Path(path)
    with atomic_write_path(path) as tmp:
        with h5py.File(tmp, "w", userblock_size=_USERBLOCK, libver="earliest") as f:
            refs = _Refs(f)
            n_channels = len(spike_times)
            _double(f, "t", np.asarray(t)[None, :])
            _double(f, "cursor_pos", np.asarray(cursor_pos).T)
            _double(f, "finger_pos", np.asarray(finger_pos).T)
            _double(f, "target_pos", np.asarray(target_pos).T)
            spikes = np.empty((n_unit_rows, n_channels), dtype=object)
            waveforms = np.empty((n_unit_rows, n_channels), dtype=object)
            for c, units in enumerate(spike_times):
                for u in range(n_unit_rows):
                    times = units[u] if u < len(units) else None
                    spikes[u, c] = (refs.array(np.asarray(times, dtype=np.float64)[None, :], "double")
                                    if times is not None and len(times) else refs.empty())
                    waveforms[u, c] = refs.empty()
            _cell(f, "spikes", spikes)
            _cell(f, "wf", waveforms)
            names = np.empty((1, n_channels), dtype=object)
            for c in range(n_channels):
                label = np.frombuffer(f"elec{c + 1}".encode("utf-16-le"), dtype=np.uint16)[:, None]
                names[0, c] = refs.array(label, "char")
            _cell(f, "chan_names", names)
            for key, value in (attributes or {}).items():
                f.attrs[key] = value
        with open(tmp, "r+b") as fh:
            fh.write(_matlab_header())
    return path
