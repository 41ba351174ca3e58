"""Per-sample latency from arrival to velocity sent, and the counts a live decoder reports."""

from __future__ import annotations

import numpy as np


STATUS_WINDOW = 1000     # the status line's percentiles cover the most recent samples only


class LatencyLog:
    """Latencies (ns) of the decoded samples against a deadline of one bin width, plus the faults."""

    def __init__(self, deadline_ns: int):
        self.deadline_ns = int(deadline_ns)
        self.latencies: list[int] = []
        self.gaps = 0            # runs of missing sample indices
        self.filled = 0          # samples filled with zeros inside a gap
        self.resets = 0          # gaps past the bound: the decoder state was reset
        self.late = 0            # samples older than one already decoded (dropped)
        self.bad = 0             # samples that failed their checks (dropped; the decoder never saw them)
        self.misses = 0          # samples whose latency exceeded the deadline

    def add(self, latency_ns: int) -> None:
        self.latencies.append(int(latency_ns))
        self.misses += latency_ns > self.deadline_ns

    def summary(self) -> dict:
        t = np.asarray(self.latencies, dtype=np.float64) / 1e3
        stats = {"p50_us": float(np.percentile(t, 50)), "p99_us": float(np.percentile(t, 99)),
                 "max_us": float(t.max())} if len(t) else {"p50_us": None, "p99_us": None, "max_us": None}
        return {"samples": len(t), **stats, "deadline_us": self.deadline_ns / 1e3, "misses": self.misses,
                "gaps": self.gaps, "filled": self.filled, "resets": self.resets, "late": self.late,
                "bad": self.bad}

    def status_line(self) -> str:
        """Counts so far, and the percentiles of the last ``STATUS_WINDOW`` samples (printed while the
        stream runs: it must not sort the whole history every second)."""
        if not self.latencies:
            return f"samples 0, bad {self.bad}"
        recent = np.asarray(self.latencies[-STATUS_WINDOW:], dtype=np.float64) / 1e3
        return (f"samples {len(self.latencies)}, recent latency p50 {np.percentile(recent, 50):.0f} us, "
                f"p99 {np.percentile(recent, 99):.0f} us, misses {self.misses}, gaps {self.gaps}, late {self.late}, "
                f"bad {self.bad}")
