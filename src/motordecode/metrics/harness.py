"""Streaming evaluation: one pass over the test split, one metrics row.

The decoder sees the test samples in order, as in real time: state is reset once at the start and
carried across steps. The model is called once on the whole (T, C) stream (its forward carries the
state from step to step); an :class:`ActivityRecorder` keeps what each layer saw, and the operations
are counted afterwards from that activity and the weight masks, vectorised over all steps. Static
metrics are measured before any data runs, as NeuroBench does.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from motordecode.metrics.activity import ActivityRecorder
from motordecode.metrics.deployed import deployed_footprint_bytes
from motordecode.metrics.footprint import footprint_bytes
from motordecode.metrics.ops import model_ops
from motordecode.metrics.r2 import r2_per_axis
from motordecode.metrics.sparsity import activation_sparsity, connection_sparsity


def _default_run(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    return model(inputs)


def evaluate_stream(model: nn.Module, inputs, labels, *, run: Callable | None = None,
                    deployed_bits: dict[str, int] | None = None, neurobench_gru_slip: bool = False):
    """(metrics row, predictions) of ``model`` on a stream of ``inputs`` (T, ...) with ``labels`` (T, D).

    ``run(model, inputs) -> predictions (T, D)`` defaults to ``model(inputs)``; a model with a
    ``reset()`` method is reset first. ``deployed_bits`` maps parameter names to their deployed bit
    width (see :mod:`motordecode.metrics.deployed`).
    """
    inputs = torch.as_tensor(inputs, dtype=torch.float32)
    labels = np.asarray(labels)
    model.eval()
    if hasattr(model, "reset"):
        model.reset()
    row = {"footprint_bytes": footprint_bytes(model),
           "deployed_footprint_bytes": deployed_footprint_bytes(model, deployed_bits),
           "connection_sparsity": connection_sparsity(model)}
    start = time.perf_counter()
    with torch.no_grad(), ActivityRecorder(model) as recorder:
        pred = (run or _default_run)(model, inputs)
    streamed = time.perf_counter()
    pred = pred.detach().float().cpu().numpy().reshape(len(labels), -1)
    ops = model_ops(recorder.layers, neurobench_gru_slip).per_step(len(labels))
    per_axis = r2_per_axis(pred, labels)
    row.update({
        "r2": float(per_axis.mean()), "r2_x": float(per_axis[0]), "r2_y": float(per_axis[1]),
        "activation_sparsity": activation_sparsity(recorder.activations),
        "dense_ops": ops.dense, "effective_macs": ops.effective_macs, "effective_acs": ops.effective_acs,
        "steps": len(labels),
        "timings": {"stream_s": streamed - start, "count_s": time.perf_counter() - streamed},
    })
    return row, pred
