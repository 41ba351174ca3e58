"""Streaming evaluation: one pass over the test split, one metrics row.

The decoder sees the test samples in order, as in real time: its :class:`Stream` starts once at
the start and carries the state across steps. The whole (T, C) stream goes through in one call
(the face's ``sequence``); an :class:`ActivityRecorder` keeps what each layer saw, and the operations
are counted afterwards from that activity and the weight masks, vectorised over all steps. Static
metrics are measured before any data runs, as NeuroBench does.

The operation counts are per step of the stream, i.e. per input sample (NeuroBench's "per
sample"): per 4 ms on the benchmark sessions, per bin on binned data. ``step_ms`` (the samples'
spacing) is recorded beside them as ``ops_step_ms``; they are never rescaled (docs/metrics.md).
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from motordecode.metrics.activity import ActivityRecorder
from motordecode.metrics.deployed import deployed_footprint_bytes
from motordecode.metrics.footprint import footprint_bytes, parameter_count
from motordecode.metrics.ops import model_ops
from motordecode.metrics.r2 import r2_per_axis
from motordecode.metrics.sparsity import activation_sparsity, connection_sparsity


def evaluate_stream(model: nn.Module, inputs, labels, *, run: Callable | None = None,
                    deployed_bits: dict[str, int] | None = None, neurobench_gru_slip: bool = False,
                    step_ms: float | None = None):
    """(metrics row, predictions) of a plain ``model`` on a stream of ``inputs`` (T, ...) with
    ``labels`` (T, D): how the cross-checks against NeuroBench run any ``nn.Module``.

    ``run(model, inputs) -> predictions (T, D)`` defaults to ``model(inputs)``; a model with a
    ``reset()`` method is reset first. ``deployed_bits`` maps parameter names to their deployed bit
    width (see :mod:`motordecode.metrics.deployed`); ``step_ms``: the spacing of the inputs, the
    unit of the operation counts (``ops_step_ms``; None: not known).
    """
    inputs = torch.as_tensor(inputs, dtype=torch.float32)
    model.eval()
    if hasattr(model, "reset"):
        model.reset()
    return _measure(model, lambda: (run or _default_run)(model, inputs), labels, deployed_bits, neurobench_gru_slip,
                    step_ms)


def evaluate_decoder(decoder, streams, labels, *, deployed_bits: dict[str, int] | None = None,
                     step_ms: float | None = None):
    """(metrics row, predictions) of a decoder face over ``streams``, a list of (history, samples)
    pairs decoded in turn by one :class:`~motordecode.decoders.base.Stream`, each from the initial
    state warmed by its history (the samples before it; None: none). ``labels`` (T, D) cover the
    samples of all streams, in order (one stream for a contiguous test split). ``deployed_bits``:
    the run's (``Run.deployed_bits``); ``step_ms``: the samples' spacing (``Recording.step_ms``)."""
    return _measure(decoder.model, lambda: decode_streams(decoder, streams), labels, deployed_bits, False, step_ms)


def decode_streams(decoder, streams) -> np.ndarray:
    """The velocities of ``streams`` ((history, samples) pairs) decoded in turn by one
    :class:`~motordecode.decoders.base.Stream`, each from the initial state warmed by its history."""
    from motordecode.decoders.base import Stream

    stream = Stream(decoder)
    outputs = []
    for history, samples in streams:
        stream.reset(history=history)
        outputs.append(stream(samples))
    return np.concatenate(outputs)


def _default_run(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    return model(inputs)


def _measure(model: nn.Module, predict: Callable, labels, deployed_bits, neurobench_gru_slip: bool,
             step_ms: float | None):
    """Static metrics before any data runs, then one recorded pass ``predict()`` and its counts."""
    labels = np.asarray(labels)
    row = {"footprint_bytes": footprint_bytes(model), "parameter_count": parameter_count(model),
           "deployed_footprint_bytes": deployed_footprint_bytes(model, deployed_bits),
           "connection_sparsity": connection_sparsity(model)}
    start = time.perf_counter()
    with torch.no_grad(), ActivityRecorder(model) as recorder:
        pred = predict()
    streamed = time.perf_counter()
    pred = torch.as_tensor(pred).detach().float().cpu().numpy().reshape(len(labels), -1)
    ops = model_ops(recorder.layers, neurobench_gru_slip).per_step(len(labels))
    per_axis = r2_per_axis(pred, labels)
    row.update({
        "r2": float(per_axis.mean()), "r2_x": float(per_axis[0]), "r2_y": float(per_axis[1]),
        "activation_sparsity": activation_sparsity(recorder.activations),
        "dense_ops": ops.dense, "effective_macs": ops.effective_macs, "effective_acs": ops.effective_acs,
        "synaptic_operations": ops.as_neurobench(), "ops_step_ms": step_ms,
        "steps": len(labels),
        "timings": {"stream_s": streamed - start, "count_s": time.perf_counter() - streamed},
    })
    return row, pred
