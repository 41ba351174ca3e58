"""The input buffer of NeuroBench's primate-reaching baselines (ANN2D, ANN3D, SNN3D).

NeuroBench's models keep a buffer of recent 4 ms samples, ``data_buffer``: it starts as one zero
row, every sample is appended, and it is cut to its last ``window`` = 50 rows (0.2 s). Writing
R_0 = 0 and R_{k+1} = x_k for the row history, the buffer after sample t (row p = t + 1) holds
R_{max(0, p-49)} .. R_p, and the models read it as:

- summed (ANN2D): while the buffer has <= 50 rows (p <= 49, the first 49 samples) the output is 0
  and no layer runs; afterwards the sum of the buffer = x_{t-49} + ... + x_t;
- binned (ANN3D, SNN3D): 7 bins of 7 rows, bin i = rows lo + 7i .. lo + 7i + 6 of those present
  (lo = max(0, p - 49)); with a full buffer that is x_{t-49} .. x_{t-1} in 28 ms bins (the current
  sample is not used), during the first samples the bins fill from the start.

:class:`SampleHistory` computes these features for a whole stream at once from running sums and
carries the buffer across calls (the published footprint counts it at its initial size, 1 x C).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from motordecode.data.features import WindowFeatures


class HistoryState(NamedTuple):
    buffer: torch.Tensor    # the buffered rows R_{max(0, p-49)} .. R_p (at most ``window``, C)
    rows_seen: int          # p + 1: rows of the history so far, R_0 included


class SampleHistory(nn.Module):
    def __init__(self, n_channels: int, window: int = 50, bins: int = 7):
        super().__init__()
        self.window, self.bins, self.bin_rows = int(window), int(bins), int(window) // int(bins)
        self.register_buffer("data_buffer", torch.zeros(1, n_channels), persistent=False)
        self.rows_seen = 1  # rows of the history so far, R_0 included

    def reset(self) -> None:
        self.data_buffer = torch.zeros_like(self.data_buffer[:1])
        self.rows_seen = 1

    def stream_state(self) -> "HistoryState":
        return HistoryState(self.data_buffer.clone(), self.rows_seen)

    def load_stream_state(self, state: "HistoryState") -> None:
        self.data_buffer = state.buffer.clone()
        self.rows_seen = int(state.rows_seen)

    def _extend(self, x: torch.Tensor):
        """(running sums S of the carried rows + x, local row of each new sample, its global row p)."""
        rows = torch.cat([self.data_buffer.to(x.dtype), x])
        first = self.rows_seen - len(self.data_buffer)  # global row of rows[0]
        p = self.rows_seen + torch.arange(len(x))
        self.data_buffer = rows[-min(self.window, len(rows)):].detach().clone()
        self.rows_seen += len(x)
        sums = torch.cat([rows.new_zeros(1, rows.shape[1], dtype=torch.float64), rows.cumsum(0, dtype=torch.float64)])
        return sums, p - first, p

    def summed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sums of the last ``window`` samples (n, C) for the samples that run, which samples run (T,))."""
        sums, q, p = self._extend(x)
        runs = p >= self.window
        q = q[runs]
        return (sums[q + 1] - sums[q + 1 - self.window]).to(x.dtype), runs

    def binned(self, x: torch.Tensor) -> torch.Tensor:
        """Bin counts (T, bins, C), oldest bin first."""
        sums, q, p = self._extend(x)
        lo = q - (p - torch.clamp(p - (self.window - 1), min=0))  # local row of R_lo
        start = lo[:, None] + self.bin_rows * torch.arange(self.bins)
        stop = torch.minimum(start + self.bin_rows, q[:, None] + 1)
        return (sums[stop] - sums[torch.minimum(start, stop)]).to(x.dtype)


def history_table(spikes, window: int, bins: int, kind: str):
    """Buffer features of any samples t >= window - 1 of a session, cut from running sums: the
    same values :class:`SampleHistory` gives a stream from the session start (tested).
    ``kind`` "summed": x_{t-W+1..t}; "binned": ``bins`` bins of W // bins samples from x_{t-W+1}."""
    if kind == "summed":
        return WindowFeatures(1, window).table(spikes), 0
    rows = window // bins
    return WindowFeatures(bins, rows).table(spikes), window - bins * rows  # (table, end offset)
