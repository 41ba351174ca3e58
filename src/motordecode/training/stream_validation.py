"""Validation of a streaming decoder: its R2 over one part of a session, run as one stream."""

from __future__ import annotations

import numpy as np
import torch

from motordecode.metrics.r2 import r2_per_axis


def stream_r2(model, spikes: np.ndarray, labels: np.ndarray, index: np.ndarray) -> float:
    """R2 of ``model`` over the samples ``index`` run as one stream from a reset state (eval mode)."""
    model.eval()
    model.reset()
    with torch.no_grad():
        pred = model(torch.as_tensor(np.asarray(spikes[index], dtype=np.float32)))
    model.reset()
    return float(r2_per_axis(pred.float().numpy(), np.asarray(labels)[index]).mean())
