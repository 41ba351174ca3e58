"""Where velocities go: ``file:PATH.csv`` or ``file:PATH.npz``.

Each row: the sample's timestamp (s), its index, the velocities (``vx``, ``vy``; the recording's
units) and its latency (us). The CSV sink appends and flushes every row, so a stop at any moment keeps every
sample decoded before it; the NPZ sink writes its file atomically when it closes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from motordecode.errors import ConfigError
from motordecode.fileio import atomic_write_path


class FileSink:
    def __init__(self, path: str, n_outputs: int):
        self.path = Path(path)
        if self.path.suffix not in (".csv", ".npz"):
            raise ConfigError(f"file sink {path}: the name must end in .csv or .npz.")
        if not self.path.parent.is_dir():
            raise ConfigError(f"file sink {path}: the directory {self.path.parent} does not exist.")
        names = ["vx", "vy"] if n_outputs == 2 else [f"v{d}" for d in range(n_outputs)]
        self.columns = ["timestamp", "index", *names, "latency_us"]
        self.rows: list[list[float]] = []
        self._file = None
        if self.path.suffix == ".csv":
            self._file = open(self.path, "w", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(self.columns)
            self._file.flush()

    def write(self, timestamp: float, index: int, velocity: np.ndarray, latency_us: float) -> None:
        row = [timestamp, index, *map(float, velocity), latency_us]
        if self._file is not None:
            self._writer.writerow(row)
            self._file.flush()
        else:
            self.rows.append(row)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            return
        table = np.asarray(self.rows, dtype=np.float64).reshape(-1, len(self.columns))
        with atomic_write_path(self.path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{name: table[:, i] for i, name in enumerate(self.columns)})


def open_sink(spec: str, n_outputs: int):
    kind, _, target = spec.partition(":")
    if kind == "file" and target:
        return FileSink(target, n_outputs)
    if kind == "redis" and target:
        from motordecode.serve.redis_io import RedisSink
        return RedisSink(target, n_outputs)
    if kind == "lsl" and target:
        from motordecode.serve.lsl_io import LSLSink
        return LSLSink(target, n_outputs)
    raise ConfigError(f"unknown sink {spec!r}; use file:PATH.csv, file:PATH.npz, lsl:NAME or redis:URL/STREAM.")
