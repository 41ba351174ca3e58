"""Where velocities go: ``file:PATH.csv`` or ``file:PATH.npz`` (LSL and Redis:
:mod:`motordecode.serve.lsl_io`, :mod:`~motordecode.serve.redis_io`).

Each row: the sample's timestamp (s), its index, the velocities (``vx``, ``vy``; the recording's
units) and its latency (us).

A file sink never destroys a file. An existing PATH is refused, unless ``overwrite``: then the rows
go to a temporary file next to it (``.NAME.*.tmp``) that replaces PATH when the sink closes, so
PATH is the old file until the stream has ended (after a SIGKILL: the old file, and the rows in
the temporary one). Nothing is created before the stream starts (:meth:`FileSink.start`, called
once the decoder is ready), so a run that fails before its first sample leaves the directory as it
was. The CSV sink writes each row whole, straight to the file (no buffer), so a stop at any moment
keeps every sample decoded before it; when a write fails (a full disk), the part of the row that
was written is cut off again and the error names the file. The NPZ sink writes its file atomically
when it closes.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from motordecode.errors import ConfigError
from motordecode.fileio import atomic_write_path


class FileSink:
    def __init__(self, path: str, n_outputs: int, overwrite: bool = False):
        self.path, self.overwrite = Path(path), bool(overwrite)
        if self.path.suffix not in (".csv", ".npz"):
            raise ConfigError(f"file sink {path}: the name must end in .csv or .npz.")
        if not self.path.parent.is_dir():
            raise ConfigError(f"file sink {path}: the directory {self.path.parent} does not exist.")
        self._refuse_existing()
        names = ["vx", "vy"] if n_outputs == 2 else [f"v{d}" for d in range(n_outputs)]
        self.columns = ["timestamp", "index", *names, "latency_us"]
        self.rows: list[list[float]] = []
        self.written = 0  # CSV: whole rows in the file, and its size in bytes
        self._fd, self._tmp, self._size, self.started = None, None, 0, False
        self._replace = contextlib.ExitStack()  # with overwrite: moves the temporary file over PATH on close

    def _refuse_existing(self) -> None:
        if not self.overwrite and (self.path.exists() or self.path.is_symlink()):
            raise ConfigError(f"file sink {self.path}: the file exists and a sink never replaces one unless asked "
                              "to (overwrite=True; on the command line --overwrite); choose a new name.")

    def start(self) -> None:
        """Create the file (the temporary one with ``overwrite``) and write the CSV header."""
        self._refuse_existing()
        self.started = True
        if self.path.suffix != ".csv":
            return
        try:
            if self.overwrite:
                self._tmp = self._replace.enter_context(atomic_write_path(self.path))
                self._fd = os.open(self._tmp, os.O_WRONLY)
            else:  # O_EXCL: a file that appeared since the check is refused too
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            raise ConfigError(f"file sink {self.path}: the file appeared while the decoder started; choose a new "
                              "name.") from None
        except OSError as exc:
            raise OSError(exc.errno, f"file sink: cannot create the file ({exc.strerror})", str(self.path)) from None
        self._write_whole(",".join(self.columns) + "\n", "the header")

    def _write_whole(self, line: str, what: str) -> None:
        """Append ``line`` whole, or cut off what was written of it and raise OSError naming the file."""
        data, done = line.encode(), 0
        try:
            while done < len(data):
                done += os.write(self._fd, data[done:])
        except OSError as exc:
            if done:
                try:
                    os.ftruncate(self._fd, self._size)  # frees blocks: works on a full disk
                except OSError:
                    pass
            raise OSError(exc.errno, f"{exc.strerror} while writing {what}; the file holds the {self.written} "
                                     "whole rows before it", str(self._tmp or self.path)) from None
        self._size += len(data)

    def write(self, timestamp: float, index: int, velocity: np.ndarray, latency_us: float) -> None:
        row = [float(timestamp), int(index), *map(float, velocity), float(latency_us)]
        if not self.started:  # written to without the server's start()
            self.start()
        if self._fd is None:
            self.rows.append(row)
            return
        self._write_whole(",".join(map(repr, row)) + "\n", f"the row of sample {index}")
        self.written += 1

    def close(self) -> None:
        """Close the CSV (moving it over PATH with ``overwrite``) or write the NPZ; nothing when the
        stream never started."""
        if not self.started:
            return
        self.started = False
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._replace.close()  # with overwrite: the temporary file replaces PATH
            return
        table = np.asarray(self.rows, dtype=np.float64).reshape(-1, len(self.columns))
        try:
            with atomic_write_path(self.path) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **{name: table[:, i] for i, name in enumerate(self.columns)})
        except OSError as exc:
            raise OSError(exc.errno, f"{exc.strerror} while writing the {len(table)} rows", str(self.path)) from None


def open_sink(spec: str, n_outputs: int, overwrite: bool = False):
    """The sink named by ``spec``; ``overwrite``: a file sink may replace an existing file (when the
    stream ends)."""
    kind, _, target = spec.partition(":")
    if kind == "file" and target:
        return FileSink(target, n_outputs, overwrite)
    if kind == "redis" and target:
        from motordecode.serve.redis_io import RedisSink
        return RedisSink(target, n_outputs)
    if kind == "lsl" and target:
        from motordecode.serve.lsl_io import LSLSink
        return LSLSink(target, n_outputs)
    raise ConfigError(f"unknown sink {spec!r}; use file:PATH.csv, file:PATH.npz, lsl:NAME or redis:URL/STREAM.")


def refuse_sink_equal_to_source(source: str, sink: str) -> None:
    """ConfigError when the sink ``sink`` would write into the source ``source``: the recording a
    ``replay:FILE`` reads (the same file, by any name), or the same Redis stream or LSL name."""
    source_kind, _, source_target = source.partition(":")
    sink_kind, _, sink_target = sink.partition(":")
    same = False
    if source_kind == "replay" and sink_kind == "file" and source_target and sink_target:
        a, b = Path(source_target), Path(sink_target)
        same = a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    elif source_kind == sink_kind and source_kind in ("redis", "lsl"):
        same = source_target == sink_target
    if same:
        raise ConfigError(f"the sink {sink} is the source {source}: it would "
                          f"{'overwrite the recording' if sink_kind == 'file' else 'read its own output'}; "
                          "choose another sink.")
