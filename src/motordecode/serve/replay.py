"""``motordecode replay``: a recording published sample by sample, in the layout ``serve`` reads,
so that ``serve`` can be tried without writing a producer.

``redis:URL/STREAM``: one entry per sample in BRAND's layout (``samples``: C int16 counts,
``sync``: ``{"sample": i}``, ``ts``: monotonic ns; :func:`motordecode.serve.redis_io.sample_fields`);
``lsl:NAME``: an outlet NAME of C int16 channels at the bin rate, which waits for its consumer.
Samples are paced at the recording's bin width divided by ``rate`` (inf: as fast as possible;
Redis keeps every entry for the reader, LSL only what is pushed once the consumer is connected).
"""

from __future__ import annotations

import itertools

import numpy as np

from motordecode.errors import ConfigError
from motordecode.serve.server import Stopped
from motordecode.serve.sources import ReplaySource

INT16_MAX = np.iinfo(np.int16).max


def as_int16_counts(spikes: np.ndarray, what: str) -> np.ndarray:
    """``spikes`` as int16, or ConfigError unless every value is a whole count in 0..32767 (the
    wire format's range)."""
    x = np.asarray(spikes)
    bad = ~np.isfinite(x) | (x < 0) | (x > INT16_MAX) | (x != np.round(x))
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ConfigError(f"{what}: the value {x[where]} at (sample, channel) {where} is not a spike count in "
                          f"0..{INT16_MAX}; only whole counts travel as int16.")
    return x.astype(np.int16)


def open_publisher(spec: str, n_channels: int, step_s: float, timeout_s: float = 30.0):
    """The producer's side of the sink named by ``spec``: ``redis:URL/STREAM`` or ``lsl:NAME``."""
    kind, _, target = spec.partition(":")
    if kind == "redis" and target:
        from motordecode.serve.redis_io import RedisSamplePublisher
        return RedisSamplePublisher(target)
    if kind == "lsl" and target:
        from motordecode.serve.lsl_io import LSLSamplePublisher
        return LSLSamplePublisher(target, n_channels, step_s, timeout_s)
    raise ConfigError(f"unknown replay sink {spec!r}; use redis:URL/STREAM or lsl:NAME.")


def replay(recording, spec: str, *, rate: float = 1.0, samples: int | None = None, timeout_s: float = 30.0,
           what: str = "recording") -> dict:
    """Publish ``recording``'s samples (the first ``samples``, default all) to ``spec`` at ``rate``
    times real time; returns ``{"samples": published, "outcome": ...}``. SIGINT or SIGTERM stop it
    after the sample in hand. ``timeout_s``: LSL, how long to wait for a consumer."""
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, (int, np.integer))
                                or samples < 1):
        raise ConfigError(f"samples must be a whole number >= 1, got {samples!r}.")
    source = ReplaySource(recording, rate=rate)
    counts = as_int16_counts(recording.spikes[:samples], what)
    publisher = open_publisher(spec, recording.n_channels, recording.step_s, timeout_s)
    published, outcome = 0, "recording ended"
    with Stopped() as stopped:
        source.stopping = lambda: stopped.signal is not None
        try:
            for sample in itertools.islice(source, len(counts)):
                publisher.publish(sample.index, counts[sample.index])
                published += 1
                if stopped.signal:
                    break
        finally:
            publisher.close()
        if stopped.signal:
            outcome = f"stopped by {stopped.signal}"
    return {"samples": published, "outcome": outcome}
