"""Lab Streaming Layer as source and sink (``motordecode[realtime]``: pylsl).

``lsl:NAME``: the source resolves the outlet named NAME (C channels of spike counts, one sample per
bin) and reads it through an inlet; the sink opens an outlet NAME with D float32 channels (vx, vy,
in the recording's units), one sample per decoded sample.

LSL discovers streams by multicast and broadcast. Unless ``LSLAPICFG`` already names a
configuration, :func:`loopback_config` writes one that keeps every packet on this machine
(machine scope, IPv6 off, multicast and peers 127.0.0.1 only, TTL 0) and points ``LSLAPICFG`` at
it before pylsl is imported; a lab that streams across machines sets its own ``LSLAPICFG``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from motordecode.errors import ConfigError
from motordecode.serve.sources import Sample

LOOPBACK_CFG = """\
; motordecode: LSL on this machine only
[ports]
IPv6 = disable
[multicast]
ResolveScope = machine
ListenAddress = 127.0.0.1
AddressesOverride = {127.0.0.1}
TTLOverride = 0
Interfaces = {127.0.0.1}
[lab]
KnownPeers = {127.0.0.1}
[log]
level = -2
"""


def loopback_config(directory: str | os.PathLike | None = None) -> Path:
    """Write the loopback-only configuration and point ``LSLAPICFG`` at it (unless it is set)."""
    if os.environ.get("LSLAPICFG"):
        return Path(os.environ["LSLAPICFG"])
    if "pylsl" in sys.modules:
        raise ConfigError("pylsl was imported before LSLAPICFG was set; LSL would use its network-wide defaults.")
    path = Path(directory or Path(tempfile.gettempdir()) / f"motordecode-lsl-{os.getuid()}") / "lsl_api.cfg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(LOOPBACK_CFG)
    os.environ["LSLAPICFG"] = str(path)
    return path


def _pylsl():
    loopback_config()
    try:
        import pylsl
    except (ImportError, RuntimeError) as exc:
        raise ConfigError(f"LSL sources and sinks need pylsl with liblsl: pip install 'motordecode[realtime]' "
                          f"({exc}).") from None
    return pylsl


class LSLSource:
    def __init__(self, name: str, timeout_s: float = 5.0):
        pylsl = _pylsl()
        self.name, self.timeout_s = name, float(timeout_s)
        self.end_reason, self.history = "source ended", None
        self.stopping = lambda: False
        found = pylsl.resolve_byprop("name", name, minimum=1, timeout=self.timeout_s)
        if not found:
            raise ConfigError(f"no LSL stream named {name!r} found within {self.timeout_s:g} s.")
        self.inlet = pylsl.StreamInlet(found[0], max_buflen=60, recover=False)
        self.inlet.open_stream(timeout=self.timeout_s)

    def __iter__(self):
        pylsl = _pylsl()
        index, quiet_since = 0, time.monotonic()
        while not self.stopping():
            try:
                values, stamp = self.inlet.pull_sample(timeout=0.05)
            except pylsl.LostError:
                self.end_reason = f"LSL stream {self.name!r} lost"
                return
            if values is None:
                if time.monotonic() - quiet_since > self.timeout_s:
                    self.end_reason = f"no sample for {self.timeout_s:g} s"
                    return
                continue
            yield Sample(index, float(stamp), np.asarray(values), time.perf_counter_ns(),
                         f"LSL sample {index}")
            index += 1
            quiet_since = time.monotonic()


def open_outlet(name: str, kind: str, channels: int, rate_hz: float, channel_format: str):
    """An LSL outlet ``name`` of ``channels`` channels (``rate_hz`` 0: irregular)."""
    pylsl = _pylsl()
    info = pylsl.StreamInfo(name, kind, channels, rate_hz, channel_format, f"motordecode-{name}")
    return pylsl.StreamOutlet(info)


class LSLSink:
    def __init__(self, name: str, n_outputs: int):
        self.outlet = open_outlet(name, "Velocity", n_outputs, 0.0, "float32")

    def write(self, timestamp: float, index: int, velocity: np.ndarray, latency_us: float) -> None:
        self.outlet.push_sample(np.asarray(velocity, dtype=np.float32).tolist())

    def close(self) -> None:
        del self.outlet


class LSLSamplePublisher:
    """The producer's side (``motordecode replay``): an outlet ``name`` of C int16 channels at the
    bin rate. It waits up to ``timeout_s`` for a consumer (an LSL inlet only receives what is pushed
    after it connects) and, when closed, until the consumers are gone (or ``timeout_s``), so that
    the last samples are delivered."""

    def __init__(self, name: str, n_channels: int, step_s: float, timeout_s: float = 30.0):
        self.name, self.timeout_s = name, float(timeout_s)
        self.outlet = open_outlet(name, "SpikeCounts", n_channels, 1.0 / step_s, "int16")
        if not self.outlet.wait_for_consumers(timeout=self.timeout_s):
            del self.outlet
            raise ConfigError(f"no consumer of the LSL stream {name!r} within {self.timeout_s:g} s; start "
                              f"'motordecode serve RUN --source lsl:{name} ...' first.")

    def publish(self, index: int, counts: np.ndarray) -> None:
        self.outlet.push_sample(np.asarray(counts).astype(np.int16).tolist())

    def close(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while self.outlet.have_consumers() and time.monotonic() < deadline:
            time.sleep(0.05)
        del self.outlet
