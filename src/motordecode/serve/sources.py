"""Where samples come from (LSL and Redis: :mod:`motordecode.serve.lsl_io`, :mod:`~motordecode.serve.redis_io`): ``replay:FILE`` plays a recording (a session .mat, NWB or binned file,
read as the run reads its data) at its bin width, or as fast as possible with ``fast``.

A source yields :class:`Sample` s: the sample's index in its stream, its timestamp (s), its spike
counts (C,), its arrival time (``time.perf_counter_ns``), from which latency is measured, the id of
the entry it came in (for the log) and, for an entry that could not be read, the ``problem`` (the
server drops such a sample and counts it as bad).
"""

from __future__ import annotations

import time
from typing import Iterator, NamedTuple

import numpy as np

from motordecode.errors import ConfigError


class Sample(NamedTuple):
    index: int | None           # None: unknown (the entry's labels could not be read)
    timestamp: float
    counts: np.ndarray | None   # None when ``problem`` says why
    arrived_ns: int
    entry: str = ""             # the source's id of the entry (Redis: its stream id)
    problem: str | None = None  # why the entry cannot be a sample, or None


def check_timeout(timeout_s: float) -> float:
    """``timeout_s`` as a float, or ConfigError unless it is a finite number >= 0."""
    timeout_s = float(timeout_s)
    if not np.isfinite(timeout_s) or timeout_s < 0:
        raise ConfigError(f"the source timeout must be a finite number of seconds >= 0, got {timeout_s:g}.")
    return timeout_s


class ReplaySource:
    """The samples of a recording in order, one every bin width / ``rate`` (``fast`` or ``rate``
    inf: as fast as possible); ``part`` "test": only its test split, with ``history`` the samples
    before it (the decoder's window is filled from them, as the evaluation does)."""

    def __init__(self, recording, fast: bool = False, part: str = "all", rate: float = 1.0):
        from motordecode.data.splits import default_split

        rate = float(rate)
        if not rate > 0:  # NaN as well
            raise ConfigError(f"the replay rate must be > 0 (times real time; inf: as fast as possible), "
                              f"got {rate:g}.")
        self.recording, self.fast = recording, fast or rate == float("inf")
        self.step_s = recording.step_s
        self.pace_s = self.step_s / (1.0 if self.fast else rate)  # one sample every pace_s
        if part == "test":
            test = default_split(recording).test
            self.start, self.stop = int(test[0]), int(test[-1]) + 1
        elif part == "all":
            self.start, self.stop = 0, recording.n_samples
        else:
            raise ConfigError(f"unknown part {part!r}; choose all or test.")
        self.history = recording.spikes[:self.start]
        self.stopping = lambda: False  # the server sets it: True once a stop signal arrived

    def __iter__(self) -> Iterator[Sample]:
        spikes, t = self.recording.spikes, self.recording.t
        origin = time.perf_counter_ns()
        step_ns = int(round(self.pace_s * 1e9))
        for k, j in enumerate(range(self.start, self.stop)):
            if not self.fast:
                due = origin + k * step_ns
                while (wait := due - time.perf_counter_ns()) > 0 and not self.stopping():
                    time.sleep(min(wait, 2_000_000) / 1e9 if wait > 200_000 else 0)
                if self.stopping():
                    return
            yield Sample(j, float(t[j]), spikes[j], time.perf_counter_ns(), f"sample {j}")


def open_source(spec: str, run, fast: bool = False, part: str = "all", timeout_s: float = 5.0):
    """The source named by ``spec``: ``replay:FILE`` (read as the run ``run`` reads its data) or
    ``redis:URL/STREAM`` (:mod:`motordecode.serve.redis_io`) or ``lsl:NAME``; ``timeout_s`` (>= 0):
    how long a live source waits for a sample or a server before it ends."""
    timeout_s = check_timeout(timeout_s)
    kind, _, target = spec.partition(":")
    if kind == "replay" and target:
        return ReplaySource(run.load_recording(target), fast, part)
    if kind == "redis" and target:
        from motordecode.serve.redis_io import RedisSource
        return RedisSource(target, timeout_s)
    if kind == "lsl" and target:
        from motordecode.serve.lsl_io import LSLSource
        return LSLSource(target, timeout_s)
    raise ConfigError(f"unknown source {spec!r}; use replay:FILE, lsl:NAME or redis:URL/STREAM.")
