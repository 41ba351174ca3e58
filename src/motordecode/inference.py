"""The two ways a GRU decoder runs on a stream of samples, batch (for evaluation) and streaming.

Windowed (as published, AEGRU challenge entry): at every sample j the k sub-window features ending at
j are fed to the GRU from h = 0, and the velocity after the k-th step is the prediction. Each sample
costs k GRU steps and k input FCs.

Stateful: the GRU keeps its state. With sub-windows of s samples, sample j belongs to phase
p = j mod s; each phase is its own GRU stream that advances once every s samples on the newest
sub-window (the same sub-window sequence, spaced s apart, that a window of the windowed mode
holds). Each sample costs one GRU step and one input FC, 1/k of the windowed cost, and the state
carries the history beyond the k sub-windows. States start at zero at the start of the stream.
In batch form the s phases run as one GRU batch.
"""

from __future__ import annotations

import numpy as np
import torch

from motordecode.data.features import WindowFeatures
from motordecode.errors import ConfigError

MODES = ("windowed", "stateful")


class _Inference:
    mode: str
    features: WindowFeatures

    def stream(self, model, n_channels: int) -> "StreamingDecoder":
        return StreamingDecoder(self, model, n_channels)


class WindowedInference(_Inference):
    mode = "windowed"

    def __init__(self, n_sub: int, sub_width: int, transform: str | None = "log_softplus"):
        self.features = WindowFeatures(n_sub, sub_width, transform=transform)

    def inputs(self, spikes: np.ndarray, ends: np.ndarray) -> torch.Tensor:
        """(T, k, C) features of the windows ending at ``ends``."""
        return torch.from_numpy(self.features(spikes, ends))

    @staticmethod
    def run(model, inputs: torch.Tensor) -> torch.Tensor:
        return model(inputs)[:, -1]

    @staticmethod
    def step(model, x: torch.Tensor, count: int, states: dict) -> torch.Tensor:
        """One streaming step on the (1, k, C) window: the GRU from h = 0."""
        return model(x)[0, -1]


class StatefulInference(_Inference):
    mode = "stateful"

    def __init__(self, sub_width: int, transform: str | None = "log_softplus"):
        self.phases = int(sub_width)
        self.features = WindowFeatures(1, sub_width, transform=transform)

    def inputs(self, spikes: np.ndarray, ends: np.ndarray) -> torch.Tensor:
        """(T, C) newest sub-window at each of ``ends`` (consecutive samples)."""
        if len(ends) > 1 and np.any(np.diff(ends) != 1):
            raise ConfigError("stateful inference needs a contiguous run of samples.")
        return torch.from_numpy(self.features(spikes, ends)[:, 0])

    def run(self, model, inputs: torch.Tensor) -> torch.Tensor:
        """Predictions (T, D): the s phases as one GRU batch, then the left-over samples."""
        s, (n, c) = self.phases, inputs.shape
        rounds = n // s
        outputs, state = [], None
        if rounds:
            y, state = model.sequence(inputs[: rounds * s].reshape(rounds, s, c).transpose(0, 1))
            outputs.append(y.transpose(0, 1).reshape(rounds * s, -1))
        rest = n - rounds * s
        if rest:
            y, _ = model.sequence(inputs[rounds * s :, None], None if state is None else state[:, :rest].contiguous())
            outputs.append(y[:, 0])
        return torch.cat(outputs)

    def step(self, model, x: torch.Tensor, count: int, states: dict) -> torch.Tensor:
        """One streaming step on the (1, 1, C) newest sub-window: phase ``count mod s`` advances."""
        phase = count % self.phases
        out, states[phase] = model.sequence(x, states.get(phase))
        return out[0, -1]


class StreamingDecoder:
    """Real-time use: ``push(sample)`` with one sample (C,) returns the velocity (D,) for it."""

    def __init__(self, inference, model, n_channels: int):
        self.inference = inference
        self.model = model.eval()
        self.features = inference.features.stream(n_channels)
        self.reset()

    def reset(self) -> None:
        self.features.reset()
        self.count = 0
        self.states: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def push(self, sample: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(self.features.push(sample))[None]  # (1, k, C)
        y = self.inference.step(self.model, x, self.count, self.states)
        self.count += 1
        return y.numpy()


def make_inference(mode: str, recipe, step_s: float):
    """The inference of ``mode`` with the recipe's window mapped onto samples ``step_s`` apart."""
    sub_width = recipe.sub_width(step_s)
    if mode == "windowed":
        return WindowedInference(recipe.n_sub, sub_width, recipe.transform)
    if mode == "stateful":
        return StatefulInference(sub_width, recipe.transform)
    raise ConfigError(f"unknown inference mode {mode!r}; choose from {', '.join(MODES)}.")
