"""Generated files say so: the generator's settings travel inside the file they made.

A session written by :mod:`motordecode.data.synthetic` (MATLAB v7.3 or NWB, both HDF5) carries its
:class:`~motordecode.data.synthetic.SynthConfig` as JSON in the root attribute ``motordecode_synthetic``,
so a report, ``data list`` or a grid can tell a generated file from a recording, whatever its name.
"""

from __future__ import annotations

import json
import os

GENERATOR_ATTRIBUTE = "motordecode_synthetic"


def generator_attributes(settings: dict) -> dict[str, str]:
    """The root attributes that mark a file as generated with ``settings``."""
    return {GENERATOR_ATTRIBUTE: json.dumps(settings, sort_keys=True)}


def generator_settings(path: str | os.PathLike) -> dict | None:
    """The generator settings stored in the file at ``path``; None for any other file (a recording,
    a binned file, a file that is not HDF5 or cannot be read)."""
    import h5py

    try:
        if not h5py.is_hdf5(str(path)):
            return None
        with h5py.File(path, "r") as f:
            text = f.attrs.get(GENERATOR_ATTRIBUTE)
    except OSError:
        return None
    if text is None:
        return None
    try:
        return json.loads(text.decode() if isinstance(text, bytes) else str(text))
    except (ValueError, UnicodeDecodeError):
        return None
