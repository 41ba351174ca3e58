"""The GRU decoder behind AEGRU and the vanilla GRU (AEGRU paper, Fig. 1 and Table III).

For an input sequence x_1..x_L (L sub-window features of C channels), with h_0 = 0 or a carried state:

    u_t = BN(W_u x_t + b_u)            (AEGRU: input FC, C -> H; BatchNorm optional)
    u_t = x_t                          (vanilla GRU: no input FC)
    r_t = sigma(W_ir u_t + b_ir + W_hr h_{t-1} + b_hr)
    z_t = sigma(W_iz u_t + b_iz + W_hz h_{t-1} + b_hz)
    n_t = tanh(W_in u_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}
    y_t = W_y Dropout(LN(h_t)) + b_y   (LayerNorm on the output only, it does not feed back)
    v_t = sigma_y * y_t + mu_y         (optional: the network learns standardised labels; the label
                                        mean and std are fixed buffers, set once after training)

A velocity y_t is produced at every step; the windowed decoder reads y_L, the stateful one every y_t.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class GRUDecoderConfig:
    n_channels: int
    hidden: int = 32
    n_outputs: int = 2
    input_fc: bool = True      # AEGRU: FC(C -> hidden) before the GRU; vanilla GRU: False
    batchnorm: bool = False    # challenge code: BatchNorm after the input FC
    layernorm: bool = False    # challenge code: LayerNorm on h at every step
    dropout: float = 0.0       # challenge code: 0.5 before the output FC
    scale_outputs: bool = False  # label standardisation folded into two fixed (D,) buffers

    def to_dict(self) -> dict:
        return asdict(self)


class GRUDecoder(nn.Module):
    def __init__(self, config: GRUDecoderConfig):
        super().__init__()
        self.config = config
        c = config
        if c.batchnorm and not c.input_fc:
            raise ValueError("batchnorm follows the input FC; it needs input_fc=True.")
        self.fc_in = nn.Linear(c.n_channels, c.hidden) if c.input_fc else None
        self.bn = nn.BatchNorm1d(c.hidden) if c.batchnorm else None
        self.gru = nn.GRU(c.hidden if c.input_fc else c.n_channels, c.hidden, batch_first=True)
        self.ln = nn.LayerNorm(c.hidden) if c.layernorm else None
        self.dropout = nn.Dropout(c.dropout) if c.dropout > 0 else None
        self.fc_out = nn.Linear(c.hidden, c.n_outputs)
        if c.scale_outputs:
            self.register_buffer("y_scale", torch.ones(c.n_outputs))
            self.register_buffer("y_shift", torch.zeros(c.n_outputs))
        else:
            self.y_scale = self.y_shift = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """u_t: the GRU input (the latent mean of AEGRU), (B, L, C) -> (B, L, H or C)."""
        if self.fc_in is None:
            return x
        u = self.fc_in(x)
        if self.bn is not None:
            u = self.bn(u.reshape(-1, u.shape[-1])).reshape(u.shape)
        return u

    def recur(self, u: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """GRU over the sequence and readout: (velocity (B, L, D), final state (1, B, H))."""
        h, h_n = self.gru(u, h0)
        if self.ln is not None:
            h = self.ln(h)
        if self.dropout is not None:
            h = self.dropout(h)
        y = self.fc_out(h)
        if self.y_scale is not None:
            y = y * self.y_scale + self.y_shift
        return y, h_n

    def sequence(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.recur(self.encode(x), h0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Velocity at every step of x (B, L, C), from h = 0."""
        return self.sequence(x)[0]

    @torch.no_grad()
    def set_output_scale(self, scale, shift) -> None:
        """Fix v = scale * y + shift (the label std and mean the network was trained to undo)."""
        if self.y_scale is None:
            raise ValueError("this decoder was built without scale_outputs.")
        self.y_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        self.y_shift.copy_(torch.as_tensor(shift, dtype=torch.float32))

    def pruned_weights(self) -> dict[str, torch.Tensor]:
        """The connection weights that pruning and quantisation act on (FC and GRU, not biases)."""
        return {name: p for name, p in self.named_parameters()
                if name.startswith(("fc_in.", "gru.", "fc_out.")) and "weight" in name}
