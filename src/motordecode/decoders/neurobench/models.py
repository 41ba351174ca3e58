"""The NeuroBench primate-reaching baselines: ANN2D, ANN3D, SNN2 (streaming SNN) and SNN3D.

Each takes a stream of samples, ``forward(x (T, C)) -> (T, 2)``, carrying its state across calls
(``reset()`` clears it), and has NeuroBench's parameter and buffer names, so the published state
dicts load unchanged. Layer sizes and neuron settings are those of NeuroBench's examples:

- ANN2D: the sum of the last 50 samples (0.2 s) -> fc1 (C->32) -> ReLU -> BatchNorm -> fc2 (32->48)
  -> Dropout 0.5 -> ReLU -> BatchNorm -> fc3 (48->2); 0 for the first 49 samples (no layer runs).
- ANN3D: the same MLP on 7 bins of 7 samples of the buffer (fc1 7C->32, input index c*7 + bin).
- SNN3D: the 7 bins, LayerNorm over (7, C), then 7 steps of fc1 -> Dropout 0.5 -> LIF (subtract)
  -> fc2 -> LIF (subtract) -> fc3 -> LIF (no reset), membranes reset per sample; output
  (v_x U_3x, v_y U_3y) after the 7th step. beta 0.5 and threshold 0.5 are buffers (the published
  files hold trained values there; the recipe trains with them fixed), atan surrogate.
- SNN2: fc1 (C->50, no bias) -> Dropout 0.3 -> LIF (beta 0.96, threshold 1, reset to zero) ->
  fc_out (50->2, no bias) -> leaky integrator (beta 0.96, no reset); output its membrane. One
  step per sample, state kept for the whole stream. On coarser samples beta = 0.96^(step / 4 ms).

The buffers are in :mod:`~motordecode.decoders.neurobench.history`, the neuron in :mod:`~motordecode.decoders.neurobench.leaky`.
For training (ANN2D, ANN3D, SNN3D), :meth:`arrange` turns buffer features cut anywhere in a
session into the first layer's input and :meth:`readout` maps them to outputs in batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from motordecode.decoders.neurobench.history import SampleHistory
from motordecode.decoders.neurobench.leaky import NBLeaky


@dataclass
class BaselineConfig:
    kind: str                # ann2d | ann3d | snn2 | snn3d
    n_channels: int
    n_outputs: int = 2
    window: int = 50         # samples in the input buffer (0.2 s of 4 ms samples)
    bins: int = 7            # ANN3D / SNN3D bins
    step_ms: float = 4.0     # sample width; SNN2's decay 0.96 per 4 ms becomes 0.96^(step_ms / 4)


class _Windowed(nn.Module):
    """Shared by the buffer-based baselines: history features of a stream, then a per-sample map."""

    def reset(self) -> None:
        self.history.reset()

    def stream_state(self):
        return self.history.stream_state()

    def load_stream_state(self, state) -> None:
        self.history.load_stream_state(state)

    def window(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(buffer features of the samples that run, which samples run) for a stream x (T, C)."""
        raise NotImplementedError

    def arrange(self, window: torch.Tensor) -> torch.Tensor:
        """Buffer features -> the first layer's input (identity unless overridden)."""
        return window

    def readout(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), -1).to(self.fc1.weight.dtype)
        window, runs = self.window(x)
        out = x.new_zeros(len(x), self.fc3.out_features)
        if len(window):
            out[runs] = self.readout(self.arrange(window))
        return out


class _MLP(_Windowed):
    def __init__(self, n_inputs: int, n_outputs: int, dropout: float = 0.5):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(n_inputs, 32), nn.Linear(32, 48), nn.Linear(48, n_outputs)
        self.batchnorm1, self.batchnorm2 = nn.BatchNorm1d(32), nn.BatchNorm1d(48)
        self.relu1, self.relu2, self.dropout = nn.ReLU(), nn.ReLU(), nn.Dropout(dropout)

    def readout(self, features: torch.Tensor) -> torch.Tensor:
        h = self.batchnorm1(self.relu1(self.fc1(features)))
        h = self.batchnorm2(self.relu2(self.dropout(self.fc2(h))))
        return self.fc3(h)


class ANN2D(_MLP):
    def __init__(self, config: BaselineConfig):
        super().__init__(config.n_channels, config.n_outputs)
        self.config = config
        self.history = SampleHistory(config.n_channels, config.window, config.bins)

    def window(self, x):
        return self.history.summed(x)


class ANN3D(_MLP):
    def __init__(self, config: BaselineConfig):
        super().__init__(config.bins * config.n_channels, config.n_outputs)
        self.config = config
        self.history = SampleHistory(config.n_channels, config.window, config.bins)

    def window(self, x):
        return self.history.binned(x), torch.ones(len(x), dtype=torch.bool)

    def arrange(self, bins):
        return bins.transpose(1, 2).reshape(len(bins), -1)  # channel-major: index c * bins + i


class SNN3D(_Windowed):
    def __init__(self, config: BaselineConfig, beta: float = 0.5, threshold: float = 0.5):
        super().__init__()
        self.config = config
        c = config.n_channels
        self.history = SampleHistory(c, config.window, config.bins)
        self.norm_layer = nn.LayerNorm([config.bins, c])
        self.fc1, self.fc2, self.fc3 = nn.Linear(c, 32), nn.Linear(32, 48), nn.Linear(48, config.n_outputs)
        self.dropout = nn.Dropout(0.5)
        self.lif1 = NBLeaky(beta, threshold, "subtract", "atan")
        self.lif2 = NBLeaky(beta, threshold, "subtract", "atan")
        self.lif3 = NBLeaky(beta, threshold, "none", "atan")
        self.v_x, self.v_y = nn.Parameter(torch.rand(1)), nn.Parameter(torch.rand(1))

    def window(self, x):
        return self.history.binned(x), torch.ones(len(x), dtype=torch.bool)

    def readout(self, bins: torch.Tensor) -> torch.Tensor:
        z = self.norm_layer(bins)
        for lif in (self.lif1, self.lif2, self.lif3):
            lif.reset()  # every sample starts from rest
        for i in range(z.shape[1]):
            s1 = self.lif1(self.dropout(self.fc1(z[:, i]))[None])[0]
            s2 = self.lif2(self.fc2(s1)[None])[0]
            self.lif3(self.fc3(s2)[None])
        mem = self.lif3.mem
        return torch.stack([self.v_x * mem[:, 0], self.v_y * mem[:, 1]], dim=1)


class SNN2(nn.Module):
    def __init__(self, config: BaselineConfig, hidden: int = 50, beta_4ms: float = 0.96):
        super().__init__()
        self.config = config
        beta = beta_4ms ** (config.step_ms / 4.0)
        self.fc1 = nn.Linear(config.n_channels, hidden, bias=False)
        self.dropout = nn.Dropout(0.3)
        self.lif1 = NBLeaky(beta, 1, "zero")
        self.fc_out = nn.Linear(hidden, config.n_outputs, bias=False)
        self.lif_out = NBLeaky(beta, 1, "none")

    def reset(self) -> None:
        self.lif1.reset()
        self.lif_out.reset()

    @torch.no_grad()
    def set_output_scale(self, scale, shift=None) -> None:
        """Fold a label scale into fc_out (the output is linear in it; no bias, so no shift)."""
        self.fc_out.weight.mul_(torch.as_tensor(scale, dtype=self.fc_out.weight.dtype)[:, None])

    def stream_state(self) -> "SNN2State":
        def membrane(lif, n):
            return torch.zeros(n, dtype=self.fc1.weight.dtype) if lif.mem is None else lif.mem.detach().clone()
        return SNN2State(membrane(self.lif1, self.fc1.out_features), membrane(self.lif_out, self.fc_out.out_features))

    def load_stream_state(self, state: "SNN2State") -> None:
        self.lif1.mem, self.lif_out.mem = state.mem1.clone(), state.mem_out.clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(T, C) or (T, B, C) consecutive steps -> the output membrane (T, 2) or (T, B, 2)."""
        x = x.to(self.fc1.weight.dtype)
        self.lif_out(self.fc_out(self.lif1(self.dropout(self.fc1(x)))))
        return self.lif_out.membranes


class SNN2State(NamedTuple):
    mem1: torch.Tensor      # membranes of the hidden LIF layer (50,)
    mem_out: torch.Tensor   # membranes of the output integrator (2,)


BASELINES = {"ann2d": ANN2D, "ann3d": ANN3D, "snn2": SNN2, "snn3d": SNN3D}


def build_baseline(config: BaselineConfig) -> nn.Module:
    return BASELINES[config.kind](config)
