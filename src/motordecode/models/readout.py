"""Leaky-integrator readout: non-spiking output units driven by hidden spikes, heads averaged.

Per output unit, with the hidden spikes S and a one-step delay:

    I_t = a * I_{t-1} + W S_{t-1}
    Y_t = b * Y_{t-1} + (1 - b) * I_{t-1}

a = exp(-dt / tau_syn), b = exp(-dt / tau_mem), tau = tau_nominal * softplus(p) per unit (learnable).
Each head is a set of ``n_outputs`` units with its own nominal (tau_syn, tau_mem); the prediction is
the mean of the heads' Y (tinyRSNN: one head (10, 50) ms; bigRSNN: five heads).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from motordecode.models.lif import decay


def readout_step(current: torch.Tensor, syn: torch.Tensor, mem: torch.Tensor, a: torch.Tensor,
                 b: torch.Tensor):
    """(W S_{t-1}, I_{t-1}, Y_{t-1}) -> (I_t, Y_t)."""
    return a * syn + current, b * mem + (1.0 - b) * syn


class LeakyReadout(nn.Module):
    """``forward(presynaptic (B, T, H), state) -> (prediction (B, T, n_outputs), state)``.

    ``presynaptic`` is the already delayed spike sequence S_{t-1}; ``state`` = (I, Y) of all units.
    """

    def __init__(self, n_inputs: int, n_outputs: int, heads=((10.0, 50.0),), dt_ms: float = 4.0):
        super().__init__()
        self.heads = tuple((float(s), float(m)) for s, m in heads)
        if not self.heads:
            raise ValueError("a readout needs at least one head.")
        self.n_outputs, self.dt_ms = int(n_outputs), float(dt_ms)
        units = n_outputs * len(self.heads)
        self.fc = nn.Linear(n_inputs, units, bias=False)
        self.mem_param = nn.Parameter(torch.rand(units))
        self.syn_param = nn.Parameter(torch.rand(units))
        with torch.no_grad():  # N(0, 1) / sqrt(fan-in)
            self.fc.weight.normal_(0.0, 1.0 / n_inputs ** 0.5)

    def _nominal(self, index: int) -> torch.Tensor:
        """Nominal time constant of every unit (head-major), as a tensor in ms."""
        values = [head[index] for head in self.heads for _ in range(self.n_outputs)]
        return torch.tensor(values, dtype=self.mem_param.dtype, device=self.mem_param.device)

    def decays(self) -> tuple[torch.Tensor, torch.Tensor]:
        return decay(self._nominal(0), self.syn_param, self.dt_ms), decay(self._nominal(1), self.mem_param, self.dt_ms)

    def time_constants_ms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(tau_syn, tau_mem) per unit in ms."""
        return self._nominal(0) * F.softplus(self.syn_param), self._nominal(1) * F.softplus(self.mem_param)

    def scale_outputs(self, scale) -> None:
        """Multiply output d by ``scale[d]`` (exact: Y is linear in W). Folds a label scale into W."""
        scale = torch.as_tensor(scale, dtype=self.fc.weight.dtype).repeat(len(self.heads))
        with torch.no_grad():
            self.fc.weight.mul_(scale[:, None])

    def forward(self, presynaptic: torch.Tensor, state=None):
        current = self.fc(presynaptic)
        batch, steps, units = current.shape
        if state is None:
            zeros = current.new_zeros(batch, units)
            state = (zeros, zeros)
        syn, mem = state
        a, b = self.decays()
        outputs = []
        for t in range(steps):
            syn, mem = readout_step(current[:, t], syn, mem, a, b)
            outputs.append(mem)
        y = torch.stack(outputs, dim=1)
        y = y.reshape(batch, steps, len(self.heads), self.n_outputs).mean(dim=2)
        return y, (syn, mem)
