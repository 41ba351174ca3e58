"""Validation of a streaming decoder: its R2 over one part of a session, run as one stream."""

from __future__ import annotations

import numpy as np

from motordecode.decoders.base import Stream
from motordecode.metrics.r2 import r2_per_axis


def stream_r2(decoder, spikes: np.ndarray, labels: np.ndarray, index: np.ndarray) -> float:
    """R2 of a decoder face over the samples ``index`` run as one :class:`Stream` from its initial
    state (the model is left in eval mode)."""
    pred = Stream(decoder)(np.asarray(spikes[index], dtype=np.float32))
    return float(r2_per_axis(pred, np.asarray(labels)[index]).mean())
