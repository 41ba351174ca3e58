"""``--format onnx``: a decoder's one-sample step as an ONNX graph, (x_t, state) -> (y_t, state).

Graph inputs: ``x`` (1, C) spike counts (float32) and the state tensors; outputs: ``y`` (1, D)
velocity in the recording's units and the next state, named ``<input>_out``. The state starts at
zero. State tensors per mode:

    windowed (GRU):  recent (k w - 1, C)                 the last samples of the input window
    stateful (GRU):  recent (w - 1, C), h (s, H)         h[0] is the phase this sample advances;
                                                         the phases rotate, h_out = [h[1:], h_new]
    stream (delta):  recent (w - 1, C), x_ref (C), u_ref (H), h (H), h_ref (H), m (4H)

Checked with onnxruntime against the Python ``Stream`` on the run's test split.
"""

from __future__ import annotations

import io
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from motordecode.errors import ConfigError

ONNX_FAMILIES = ("gru", "delta")
OPSET = 17


class WindowSums(nn.Module):
    """The newest k sub-window features of (recent, x), in torch ops: sum, then log-softplus."""

    def __init__(self, n_sub: int, width: int, transform: str | None):
        super().__init__()
        self.n_sub, self.width, self.log_softplus = n_sub, width, transform == "log_softplus"

    def forward(self, recent: torch.Tensor, x: torch.Tensor):
        window = torch.cat([recent, x], dim=0)                       # (k w, C)
        sums = window.reshape(self.n_sub, self.width, -1).sum(dim=1)  # (k, C)
        features = torch.log(nn.functional.softplus(sums)) if self.log_softplus else sums
        return features, window[1:]


class WindowedStep(nn.Module):
    def __init__(self, model, sums: WindowSums):
        super().__init__()
        self.model, self.sums = model, sums

    def forward(self, x, recent):
        features, recent = self.sums(recent, x)
        return self.model(features[None])[:, -1], recent


class StatefulStep(nn.Module):
    def __init__(self, model, sums: WindowSums):
        super().__init__()
        self.model, self.sums = model, sums

    def forward(self, x, recent, h):
        features, recent = self.sums(recent, x)
        y, h_new = self.model.sequence(features[None], h[:1, None])
        return y[:, 0], recent, torch.cat([h[1:], h_new[0]], dim=0)


class DeltaStep(nn.Module):
    def __init__(self, model, sums: WindowSums):
        super().__init__()
        self.model, self.sums = model, sums

    def forward(self, x, recent, x_ref, u_ref, h, h_ref, m):
        from motordecode.decoders.delta.cell import DeltaState
        from motordecode.decoders.delta.model import DeltaNetState

        features, recent = self.sums(recent, x)
        state = DeltaNetState(x_ref[None], DeltaState(h[None], u_ref[None], h_ref[None], m[None]))
        y, new, _ = self.model(features[None], state)
        return y[:, 0], recent, new.x_ref[0], new.cell.x_ref[0], new.cell.h[0], new.cell.h_ref[0], new.cell.m[0]


def step_module(run, mode: str):
    """(module, {state name: zero tensor}) of the run's one-sample step in ``mode``."""
    from motordecode.decoders.registry import family_of
    from motordecode.runs import step_ms

    family = family_of(run.recipe)
    if family.name not in ONNX_FAMILIES:
        raise ConfigError(f"{run.recipe.name} ({family.name} family): the ONNX export covers the GRU and delta "
                          f"GRU families ({', '.join(ONNX_FAMILIES)}).")
    recipe, model = run.recipe, run.model.float().eval()
    channels, width = model.config.n_channels, recipe.sub_width(step_ms(run.config))
    hidden = model.config.hidden
    if mode == "windowed":
        sums = WindowSums(recipe.n_sub, width, recipe.transform)
        return WindowedStep(model, sums), {"recent": torch.zeros(recipe.n_sub * width - 1, channels)}
    sums = WindowSums(1, width, recipe.transform)
    recent = torch.zeros(width - 1, channels)
    if mode == "stateful":
        return StatefulStep(model, sums), {"recent": recent, "h": torch.zeros(width, hidden)}
    return DeltaStep(model, sums), {"recent": recent, "x_ref": torch.zeros(channels), "u_ref": torch.zeros(hidden),
                                    "h": torch.zeros(hidden), "h_ref": torch.zeros(hidden),
                                    "m": torch.zeros(4 * hidden)}


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
        self.initial = {name: value.numpy().astype(np.float32) for name, value in state.items()}
        self.state = dict(self.initial)

    def push(self, sample: np.ndarray) -> np.ndarray:
        y, *state = self.session.run(None, {"x": np.asarray(sample, dtype=np.float32)[None], **self.state})
        self.state = dict(zip(self.state, state))
        return y[0]


def write_onnx(run, recording, split, mode, out: Path) -> dict:
    from motordecode.decoders.registry import family_of
    from motordecode.export.exporter import agreement, test_streams

    mode = family_of(run.recipe).resolve_mode(mode)
    module, state = step_module(run, mode)
    channels = run.model.config.n_channels
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
    return {"mode": mode, "files": ["decoder.onnx"], "opset": OPSET,
            "inputs": {"x": [1, channels], **{k: list(v.shape) for k, v in state.items()}},
            "sizes": {"model_bytes": len(model_bytes)},
            "agreement": {"against": "Python Stream.push on the same samples from the zero state",
                          "test_samples": int(len(split.test)), **measured,
                          "onnxruntime_us_per_step": 1e6 * seconds / max(1, steps)}}
