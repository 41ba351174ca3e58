"""Validation of a streaming decoder: its R2 over one part of a session, run as one stream."""

from __future__ import annotations

import numpy as np

from motordecode.decoders.base import Stream
from motordecode.data.splits import contiguous_runs
from motordecode.metrics.r2 import r2_per_axis


def stream_r2(decoder, spikes: np.ndarray, labels: np.ndarray, index: np.ndarray) -> float:
    """R2 of a decoder face over the samples ``index``, each contiguous run of them a
    :class:`Stream` from the initial state (the model is left in eval mode)."""
    stream, pred = Stream(decoder), []
    for start, stop in contiguous_runs(index):
        stream.reset()
        pred.append(stream(np.asarray(spikes[start:stop], dtype=np.float32)))
    return float(r2_per_axis(np.concatenate(pred), np.asarray(labels)[index]).mean())
