"""Causal count windows of a stream as tensors, for the classical decoders' streaming modules.

The sums are :class:`~motordecode.data.features.WindowFeatures` (k windows of w samples spaced w
apart, oldest first, zero before the stream starts) computed on the CPU; :class:`RecentWindow`
carries the last k w - 1 samples across calls in the buffer ``recent``, the state a real-time
decoder keeps.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from motordecode.data.features import WindowFeatures
from motordecode.decoders.base import carried_windows


def window_sums(stream: torch.Tensor, first: int, n_sub: int, width: int) -> torch.Tensor:
    """(T - first, n_sub, C) float64 window sums ending at rows first, first + 1, ... of ``stream``."""
    table = WindowFeatures(n_sub, width).table(stream.detach().cpu().numpy())
    return torch.from_numpy(table.sums(np.arange(first, len(stream))).astype(np.float64))


class RecentWindow(nn.Module):
    """``forward(x (T, C)) -> (T, n_sub, C)`` window sums, continuing the stream of earlier calls."""

    def __init__(self, n_channels: int, n_sub: int, width: int):
        super().__init__()
        self.n_sub, self.width = int(n_sub), int(width)
        self.register_buffer("recent", torch.zeros(self.n_sub * self.width - 1, n_channels))

    def reset(self) -> None:
        self.recent.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sums, recent = carried_windows(WindowFeatures(self.n_sub, self.width), self.recent[:, None], x[:, None],
                                       raw=True)
        self.recent.copy_(recent[:, 0])
        return sums[:, 0].to(x.device)
