"""``--format onnx``: a decoder's one-sample step as an ONNX graph, (x_t, state) -> (y_t, state).

Graph inputs: ``x`` (1, C) spike counts (float32) and the state tensors; outputs: ``y`` (1, D)
velocity in the recording's units and the next state, named ``<input>_out``. The state starts at
its initial value; :mod:`motordecode.export.onnx_steps` lists the tensors of each decoder.

Checked with onnxruntime against the Python ``Stream`` on the run's test split.
"""

from __future__ import annotations

import importlib.util
import io
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from motordecode.errors import ConfigError
from motordecode.export.onnx_steps import step_module

OPSET = 17
TOLERANCE = 1e-5      # largest |ONNX - Python| kept, relative to the largest |velocity| (at least 1)


def to_onnx(module: nn.Module, state: dict, channels: int) -> bytes:
    names = list(state)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, channels), *state.values()), buffer, dynamo=False,
                          opset_version=OPSET, input_names=["x", *names],
                          output_names=["y", *(f"{n}_out" for n in names)])
    return buffer.getvalue()


class OnnxStream:
    """An onnxruntime session stepped one sample at a time, carrying the state."""

    def __init__(self, model_bytes: bytes, state: dict):
        try:
            import onnxruntime
        except ImportError:
            raise ConfigError("the ONNX export needs onnxruntime: pip install 'motordecode[export]'.") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        self.initial = {name: value.numpy() for name, value in state.items()}
        self.state = dict(self.initial)

    def push(self, sample: np.ndarray) -> np.ndarray:
        y, *state = self.session.run(None, {"x": np.asarray(sample, dtype=np.float32)[None], **self.state})
        self.state = dict(zip(self.state, state))
        return y[0]


def write_onnx(run, recording, split, mode, out: Path) -> dict:
    from motordecode.decoders.registry import family_of
    from motordecode.export.exporter import agreement, test_streams

    for package in ("onnx", "onnxruntime"):
        if importlib.util.find_spec(package) is None:
            raise ConfigError(f"the ONNX export needs {package}: pip install 'motordecode[export]'.")
    mode = family_of(run.recipe).resolve_mode(mode)
    module, state = step_module(run, mode)
    channels = run.decoder(mode).n_channels
    model_bytes = to_onnx(module, state, channels)
    (out / "decoder.onnx").write_bytes(model_bytes)
    python, onnx_out, seconds, steps = [], [], 0.0, 0
    decoder_stream = run.stream(mode)
    for lo, start, stop in test_streams(recording, split, run.decoder(mode).history):
        ort = OnnxStream(model_bytes, state)
        decoder_stream.reset()
        for j in range(lo, stop):
            sample = recording.spikes[j].astype(np.float32)
            tick = time.perf_counter()
            y = ort.push(sample)
            seconds += time.perf_counter() - tick
            steps += 1
            reference = decoder_stream.push(sample)
            if j >= start:
                onnx_out.append(y)
                python.append(reference)
    measured = agreement(np.array(python), np.array(onnx_out), recording.velocity[split.test])
    tolerance = TOLERANCE * max(1.0, float(np.abs(python).max()))
    if measured["max_abs_diff"] > tolerance:
        raise ConfigError(f"onnxruntime differs from the Python step by {measured['max_abs_diff']:.3g} "
                          f"(more than {tolerance:.3g}); not exported.")
    return {"mode": mode, "files": ["decoder.onnx"], "opset": OPSET,
            "inputs": {"x": [1, channels], **{k: list(v.shape) for k, v in state.items()}},
            "sizes": {"model_bytes": len(model_bytes)},
            "agreement": {"against": "Python Stream.push on the same samples from the zero state",
                          "test_samples": int(len(split.test)), **measured,
                          "onnxruntime_us_per_step": 1e6 * seconds / max(1, steps)}}
