"""The delta GRU decoder network: sub-window features -> delta GRU cell -> linear readout.

    (h_t, s_t) = DeltaGRU(u_t, s_{t-1})      u_t: the newest sub-window's transformed counts
    v_t = sigma_y * (W_y h_t + b_y) + mu_y     (the label scale folded in after training)

One step per sample, one carried state. The readout reads the whole h_t every step.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from motordecode.decoders.delta.cell import DeltaGRU, DeltaState


@dataclass
class DeltaConfig:
    n_channels: int
    hidden: int = 64
    n_outputs: int = 2
    theta_x: float = 0.0
    theta_h: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class DeltaGRUNet(nn.Module):
    def __init__(self, config: DeltaConfig):
        super().__init__()
        self.config = config
        self.cell = DeltaGRU(config.n_channels, config.hidden, config.theta_x, config.theta_h)
        self.fc_out = nn.Linear(config.hidden, config.n_outputs)
        self.register_buffer("y_scale", torch.ones(config.n_outputs))
        self.register_buffer("y_shift", torch.zeros(config.n_outputs))

    def forward(self, u: torch.Tensor, state: DeltaState | None = None):
        """u (batch, T, C) -> (velocity (batch, T, D), state, Dx, Dh)."""
        h, state, dx, dh = self.cell(u, state)
        y = self.fc_out(h) * self.y_scale + self.y_shift
        return y, state, dx, dh

    def set_thresholds(self, theta_x: float, theta_h: float) -> None:
        self.cell.theta_x.fill_(theta_x)
        self.cell.theta_h.fill_(theta_h)

    def set_output_scale(self, scale, shift) -> None:
        self.y_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        self.y_shift.copy_(torch.as_tensor(shift, dtype=torch.float32))

    def pruned_weights(self) -> dict[str, torch.Tensor]:
        """The connection weights that pruning and quantisation act on (not biases)."""
        return {"cell.weight_ih": self.cell.weight_ih, "cell.weight_hh": self.cell.weight_hh,
                "fc_out.weight": self.fc_out.weight}
