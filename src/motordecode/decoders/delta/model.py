"""The delta GRU decoder network: sub-window features -> delta input layer -> delta GRU cell ->
linear readout, one step per sample, one carried state.

    Dx_t = (x_t - x^) [|x_t - x^| > Theta_x],  x^ <- x^ + Dx_t     (the transformed counts)
    u_t  = W_u x^ + b_u                       (accumulated: only the nonzero Dx cost products)
    (h_t, s_t) = DeltaGRU(u_t, s_{t-1})       (thresholds Theta_u on u, Theta_h on h)
    v_t  = sigma_y * (W_y h_t + b_y) + mu_y   (the label scale folded in after training)

The input layer plays AEGRU's input FC (C -> H); its deltas are those of the sparse counts, so the
wide C x H matrix costs only the columns of the channels whose input changed. The readout reads
the whole h_t every step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from motordecode.decoders.delta.cell import DeltaGRU, DeltaState


@dataclass
class DeltaConfig:
    n_channels: int
    hidden: int = 32
    n_outputs: int = 2
    theta_x: float = 0.0
    theta_u: float = 0.0
    theta_h: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class DeltaLinear(nn.Module):
    """u_t = W x^_t + b over the thresholded changes of x (see the module docstring)."""

    def __init__(self, in_features: int, out_features: int, theta: float = 0.0):
        super().__init__()
        reference = nn.Linear(in_features, out_features)
        self.weight = nn.Parameter(reference.weight.detach().clone())
        self.bias = nn.Parameter(reference.bias.detach().clone())
        self.register_buffer("theta", torch.tensor(float(theta)))

    def forward(self, x: torch.Tensor, x_ref: torch.Tensor):
        """x (batch, T, C), x^ (batch, C) -> (u (batch, T, H), x^ after the last step, Dx (batch, T, C))."""
        refs, dxs = [], []
        for t in range(x.shape[1]):
            dx = x[:, t] - x_ref
            dx = dx * (dx.abs() > self.theta)
            x_ref = x_ref + dx
            refs.append(x_ref)
            dxs.append(dx)
        x_hat = torch.stack(refs, dim=1)
        return x_hat @ self.weight.t() + self.bias, x_ref, torch.stack(dxs, dim=1)

    @staticmethod
    def synaptic_inputs(module: "DeltaLinear", inputs: tuple, output) -> list:
        """W with every Dx of the call (zero deltas cost nothing)."""
        dx = output[2]
        return [(module.weight, dx.reshape(-1, dx.shape[-1]))]


class DeltaNetState(NamedTuple):
    x_ref: torch.Tensor    # (batch, C) the input last propagated
    cell: DeltaState       # the GRU cell's h, u^, h^, M


class DeltaGRUNet(nn.Module):
    def __init__(self, config: DeltaConfig):
        super().__init__()
        self.config = config
        self.fc_in = DeltaLinear(config.n_channels, config.hidden, config.theta_x)
        self.cell = DeltaGRU(config.hidden, config.hidden, config.theta_u, config.theta_h)
        self.fc_out = nn.Linear(config.hidden, config.n_outputs)
        self.register_buffer("y_scale", torch.ones(config.n_outputs))
        self.register_buffer("y_shift", torch.zeros(config.n_outputs))

    def initial_state(self, batch: int = 1) -> DeltaNetState:
        return DeltaNetState(self.fc_in.weight.new_zeros(batch, self.config.n_channels), self.cell.initial_state(batch))

    def forward(self, x: torch.Tensor, state: DeltaNetState | None = None):
        """x (batch, T, C) -> (velocity (batch, T, D), state, (Dx, Du, Dh))."""
        state = self.initial_state(x.shape[0]) if state is None else state
        u, x_ref, dx = self.fc_in(x, state.x_ref)
        h, cell, du, dh = self.cell(u, state.cell)
        y = self.fc_out(h) * self.y_scale + self.y_shift
        return y, DeltaNetState(x_ref, cell), (dx, du, dh)

    def set_thresholds(self, theta_x: float, theta_u: float, theta_h: float) -> None:
        self.fc_in.theta.fill_(theta_x)
        self.cell.theta_x.fill_(theta_u)
        self.cell.theta_h.fill_(theta_h)

    def set_output_scale(self, scale, shift) -> None:
        self.y_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        self.y_shift.copy_(torch.as_tensor(shift, dtype=torch.float32))

    def pruned_weights(self) -> dict[str, torch.Tensor]:
        """The connection weights that pruning and quantisation act on (not biases)."""
        return {"fc_in.weight": self.fc_in.weight, "cell.weight_ih": self.cell.weight_ih,
                "cell.weight_hh": self.cell.weight_hh, "fc_out.weight": self.fc_out.weight}
