"""Redis streams as source and sink, in BRAND's layout (``motordecode[realtime]``: redis-py).

``redis:URL/STREAM``, URL ``unix:///path/redis.sock`` or ``redis://127.0.0.1:6379``; the stream
name is the part after the last ``/``.

BRAND's convention (brand: doc "Guidelines for Data Alignment"): every entry carries ``sync``, a
JSON dict of data labels, and a timing key holding ``clock_gettime(CLOCK_MONOTONIC)`` in ns as a
little-endian uint64. Input entries, one per sample:

    samples (or crossings, as BRAND's thresholdCrossings stream)   C little-endian int16 counts
    sync                                                              {"<label>": <sample index>}
    ts                                                                monotonic ns (optional)

Output entries: ``velocity`` (D little-endian float32, the recording's units), ``sync`` (the
input's labels), ``ts`` (monotonic ns when sent) and ``latency_us`` (text).

The source reads the stream from its start, then follows it (XREAD BLOCK). When the server goes
away it reconnects until ``timeout`` seconds have passed without a sample, then ends; it also
ends after ``timeout`` seconds without a new entry.
"""

from __future__ import annotations

import json
import time

import numpy as np

from motordecode.errors import ConfigError
from motordecode.serve.sources import Sample


def _redis():
    try:
        import redis
    except ImportError:
        raise ConfigError("Redis sources and sinks need redis-py: pip install 'motordecode[realtime]'.") from None
    return redis


def parse_target(target: str) -> tuple[str, str]:
    url, _, stream = target.rpartition("/")
    if not url or not stream or not url.startswith(("unix://", "redis://")):
        raise ConfigError(f"redis:{target}: expected redis:unix:///path/redis.sock/STREAM or "
                          "redis:redis://HOST:PORT/STREAM.")
    return url, stream


def connect(url: str, check: bool = False):
    """A client of the server at ``url``; ``check``: fail now, with a clear message, if it is not there."""
    client = _redis().Redis.from_url(url, socket_connect_timeout=1.0)
    if check:
        try:
            client.ping()
        except _redis().RedisError as exc:
            raise ConfigError(f"cannot reach Redis at {url}: {exc}") from None
    return client


class RedisSource:
    def __init__(self, target: str, timeout_s: float = 5.0, block_ms: int = 50):
        self.url, self.stream = parse_target(target)
        self.timeout_s, self.block_ms = float(timeout_s), int(block_ms)
        self.client = connect(self.url, check=True)
        self.end_reason = "source ended"
        self.history = None
        self.stopping = lambda: False

    def _decode(self, entry_id: bytes, fields: dict, counter: int) -> Sample:
        arrived = time.perf_counter_ns()
        raw = fields.get(b"samples", fields.get(b"crossings"))
        if raw is None:
            raise ConfigError(f"Redis entry {entry_id.decode()} of {self.stream} has no 'samples' or 'crossings' field.")
        counts = np.frombuffer(raw, dtype="<i2").astype(np.float32)
        index = counter
        if b"sync" in fields:
            labels = json.loads(fields[b"sync"])
            if labels:
                index = int(next(iter(labels.values())))
        stamp = np.frombuffer(fields[b"ts"], dtype="<u8")[0] / 1e9 if b"ts" in fields else time.monotonic()
        return Sample(index, float(stamp), counts, arrived)

    def __iter__(self):
        redis = _redis()
        last_id, counter, quiet_since = b"0-0", 0, time.monotonic()
        while not self.stopping():
            try:
                reply = self.client.xread({self.stream: last_id}, count=256, block=self.block_ms)
            except redis.ConnectionError:
                if time.monotonic() - quiet_since > self.timeout_s:
                    self.end_reason = f"Redis at {self.url} gone for {self.timeout_s:g} s"
                    return
                time.sleep(0.05)
                self.client = connect(self.url)
                continue
            if not reply:
                if time.monotonic() - quiet_since > self.timeout_s:
                    self.end_reason = f"no sample for {self.timeout_s:g} s"
                    return
                continue
            for entry_id, fields in reply[0][1]:
                last_id = entry_id
                yield self._decode(entry_id, fields, counter)
                counter += 1
            quiet_since = time.monotonic()


class RedisSink:
    def __init__(self, target: str, n_outputs: int, max_len: int = 1_000_000):
        self.url, self.stream = parse_target(target)
        self.client, self.max_len = connect(self.url, check=True), max_len

    def write(self, timestamp: float, index: int, velocity: np.ndarray, latency_us: float) -> None:
        self.client.xadd(self.stream, {"velocity": np.asarray(velocity, dtype="<f4").tobytes(),
                                       "sync": json.dumps({"sample": int(index)}),
                                       "ts": np.uint64(time.monotonic_ns()).tobytes(),
                                       "latency_us": f"{latency_us:.1f}"},
                         maxlen=self.max_len, approximate=True)

    def close(self) -> None:
        self.client.close()
