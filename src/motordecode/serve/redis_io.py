"""Redis streams as source and sink, in BRAND's layout (``motordecode[realtime]``: redis-py).

``redis:URL/STREAM``, URL ``unix:///path/redis.sock`` or ``redis://127.0.0.1:6379``; the stream
name is the part after the last ``/``.

BRAND's convention (brand: doc "Guidelines for Data Alignment"): every entry carries ``sync``, a
JSON dict of data labels, and a timing key holding ``clock_gettime(CLOCK_MONOTONIC)`` in ns as a
little-endian uint64. Input entries, one per sample:

    samples (or crossings, as BRAND's thresholdCrossings stream)   C little-endian int16 counts
    sync                                                              {"<label>": <sample index>}
    ts                                                                monotonic ns (optional)

Output entries: ``velocity`` (D little-endian float32, the recording's units), ``sync``
(``{"sample": <the input's index>}``), ``ts`` (monotonic ns when sent) and ``latency_us`` (text).

An input entry that cannot be read (no counts field, an odd byte length, ``sync`` that is not a JSON
dict or whose first label is not an integer >= 0, a ``ts`` that is not 8 bytes) comes out as a
sample with its ``problem``: the server drops it and counts it as bad. ``motordecode replay``
publishes input entries (:class:`RedisSamplePublisher`), with :func:`sample_fields`, the one
encoding of this layout.

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


def sample_fields(index: int, counts: np.ndarray, ts_ns: int) -> dict:
    """One input entry in BRAND's layout (the inverse of :func:`read_sample_fields`): ``counts``
    must already be integers that fit int16 (:func:`motordecode.serve.replay.as_int16_counts`)."""
    return {"samples": np.asarray(counts).astype("<i2").tobytes(), "sync": sync_field(index), "ts": ts_field(ts_ns)}


def sync_field(index: int) -> str:
    return json.dumps({"sample": int(index)})


def ts_field(ts_ns: int) -> bytes:
    return np.asarray(ts_ns, dtype="<u8").tobytes()


class BadEntry(ValueError):
    """An input entry that cannot be read as a sample; the message says why."""


def read_sample_fields(fields: dict, counter: int) -> tuple[int, float, np.ndarray]:
    """(sample index, timestamp in s, int16 counts) of one input entry, or :class:`BadEntry`:
    the counts must be whole int16 values, ``sync`` a JSON dict whose first label is an integer
    >= 0 (an empty dict or none: ``counter``, the entry's position), ``ts`` 8 bytes."""
    raw = fields.get(b"samples", fields.get(b"crossings"))
    if raw is None:
        names = ", ".join(k.decode(errors="replace") for k in fields)
        raise BadEntry(f"no 'samples' or 'crossings' field (fields: {names})")
    if len(raw) % 2:
        raise BadEntry(f"the counts field holds {len(raw)} bytes, not a whole number of int16 counts")
    counts = np.frombuffer(raw, dtype="<i2")  # checked (and converted) by the server
    index = counter
    if b"sync" in fields:
        try:
            labels = json.loads(fields[b"sync"])
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadEntry(f"sync is not JSON ({exc})") from None
        if not isinstance(labels, dict):
            raise BadEntry(f"sync must be a JSON dict of labels, got {type(labels).__name__} "
                           f"{fields[b'sync'][:40]!r}")
        if labels:
            name, label = next(iter(labels.items()))
            if isinstance(label, bool) or not isinstance(label, int) or label < 0:
                raise BadEntry(f"sync label {name!r} is {label!r}, not a sample index (an integer >= 0)")
            index = label
    if b"ts" in fields:
        if len(fields[b"ts"]) != 8:
            raise BadEntry(f"ts holds {len(fields[b'ts'])} bytes; expected 8 (uint64 ns, little-endian)")
        stamp = np.frombuffer(fields[b"ts"], dtype="<u8")[0] / 1e9
    else:
        stamp = time.monotonic()
    return index, float(stamp), counts


class RedisSource:
    def __init__(self, target: str, timeout_s: float = 5.0, block_ms: int = 50):
        self.url, self.stream = parse_target(target)
        self.timeout_s, self.block_ms = float(timeout_s), int(block_ms)
        self.client = connect(self.url, check=True)
        self.end_reason = "source ended"
        self.history = None
        self.stopping = lambda: False

    def _decode(self, entry_id: bytes, fields: dict, counter: int) -> Sample:
        arrived, entry = time.perf_counter_ns(), entry_id.decode()
        try:
            index, stamp, counts = read_sample_fields(fields, counter)
        except BadEntry as exc:
            return Sample(None, float("nan"), None, arrived, entry, str(exc))
        return Sample(index, stamp, counts, arrived, entry)

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


class RedisWriter:
    """Entries added to a Redis stream, the stream capped at about ``max_len`` entries."""

    def __init__(self, target: str, max_len: int = 1_000_000):
        self.url, self.stream = parse_target(target)
        self.client, self.max_len = connect(self.url, check=True), max_len

    def add(self, fields: dict) -> None:
        self.client.xadd(self.stream, fields, maxlen=self.max_len, approximate=True)

    def close(self) -> None:
        self.client.close()


class RedisSink(RedisWriter):
    def __init__(self, target: str, n_outputs: int, max_len: int = 1_000_000):
        super().__init__(target, max_len)

    def write(self, timestamp: float, index: int, velocity: np.ndarray, latency_us: float) -> None:
        self.add({"velocity": np.asarray(velocity, dtype="<f4").tobytes(), "sync": sync_field(index),
                  "ts": ts_field(time.monotonic_ns()), "latency_us": f"{latency_us:.1f}"})


class RedisSamplePublisher(RedisWriter):
    """The producer's side (``motordecode replay``): one input entry per sample."""

    def publish(self, index: int, counts: np.ndarray) -> None:
        self.add(sample_fields(index, counts, time.monotonic_ns()))
