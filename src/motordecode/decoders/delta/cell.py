"""The delta GRU cell (DeltaGRU: Neil et al. 2017; EdgeDRNN, Gao et al. 2020): a GRU that
multiplies its weights only by the changes of its input and state that exceed a threshold.

At step t, with reference values x^ and h^ (the values last propagated) and accumulated products
M (all zero at the start, like h, x^ and h^):

    dx = x_t - x^,        Dx = dx * [|dx| > Theta_x],   x^ <- x^ + Dx
    dh = h_{t-1} - h^,    Dh = dh * [|dh| > Theta_h],   h^ <- h^ + Dh
    M_r  += W_ir Dx + W_hr Dh        r = sigma(M_r + b_ir + b_hr)
    M_z  += W_iz Dx + W_hz Dh        z = sigma(M_z + b_iz + b_hz)
    M_nx += W_in Dx                  n = tanh(M_nx + b_in + r * (M_nh + b_hn))
    M_nh += W_hn Dh                  h_t = (1 - z) * n + z * h_{t-1}

(EdgeDRNN starts M at the biases; adding them at every step is the same and lets the biases learn
through a carried state.) With Theta_x = Theta_h = 0 every change propagates, M = W_i x_t + W_h h_{t-1}, and the cell is
PyTorch's GRU cell (weights in its layout: rows r, z, n). Only the nonzero Dx and Dh cost
multiplications, which is what the operation count records. Gradients treat the threshold masks
as constants (the exact derivative almost everywhere).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class DeltaState(NamedTuple):
    h: torch.Tensor        # (batch, H) the state
    x_ref: torch.Tensor    # (batch, C) the input last propagated
    h_ref: torch.Tensor    # (batch, H) the state last propagated
    m: torch.Tensor        # (batch, 4H) accumulated pre-activations M_r, M_z, M_nx, M_nh


class DeltaGRU(nn.Module):
    def __init__(self, input_size: int, hidden: int, theta_x: float = 0.0, theta_h: float = 0.0):
        super().__init__()
        self.input_size, self.hidden = int(input_size), int(hidden)
        reference = nn.GRUCell(input_size, hidden)  # PyTorch's initialisation and layout
        self.weight_ih = nn.Parameter(reference.weight_ih.detach().clone())
        self.weight_hh = nn.Parameter(reference.weight_hh.detach().clone())
        self.bias_ih = nn.Parameter(reference.bias_ih.detach().clone())
        self.bias_hh = nn.Parameter(reference.bias_hh.detach().clone())
        self.register_buffer("theta_x", torch.tensor(float(theta_x)))
        self.register_buffer("theta_h", torch.tensor(float(theta_h)))

    def initial_state(self, batch: int = 1) -> DeltaState:
        """Everything zero: h, x^, h^ and M."""
        zeros = self.weight_ih.new_zeros
        H = self.hidden
        return DeltaState(zeros(batch, H), zeros(batch, self.input_size), zeros(batch, H), zeros(batch, 4 * H))

    def forward(self, x: torch.Tensor, state: DeltaState | None = None):
        """x (batch, T, C) -> (h (batch, T, H), state after the last step, Dx (batch, T, C), Dh (batch, T, H))."""
        batch, steps, _ = x.shape
        H = self.hidden
        h, x_ref, h_ref, m = self.initial_state(batch) if state is None else state
        w_ih, w_hh = self.weight_ih.t(), self.weight_hh.t()
        b_ih, b_hh = self.bias_ih, self.bias_hh
        b_r, b_z, b_n, b_hn = b_ih[:H] + b_hh[:H], b_ih[H:2 * H] + b_hh[H:2 * H], b_ih[2 * H:], b_hh[2 * H:]
        outputs, dxs, dhs = [], [], []
        for t in range(steps):
            dx = x[:, t] - x_ref
            dx = dx * (dx.abs() > self.theta_x)
            dh = h - h_ref
            dh = dh * (dh.abs() > self.theta_h)
            x_ref, h_ref = x_ref + dx, h_ref + dh
            gi, gh = dx @ w_ih, dh @ w_hh
            m = m + torch.cat([gi[:, :2 * H] + gh[:, :2 * H], gi[:, 2 * H:], gh[:, 2 * H:]], 1)
            r = torch.sigmoid(m[:, :H] + b_r)
            z = torch.sigmoid(m[:, H:2 * H] + b_z)
            n = torch.tanh(m[:, 2 * H:3 * H] + b_n + r * (m[:, 3 * H:] + b_hn))
            h = (1 - z) * n + z * h
            outputs.append(h)
            dxs.append(dx)
            dhs.append(dh)
        stack = lambda values: torch.stack(values, dim=1)  # noqa: E731
        return stack(outputs), DeltaState(h, x_ref, h_ref, m), stack(dxs), stack(dhs)

    @staticmethod
    def synaptic_inputs(module: "DeltaGRU", inputs: tuple, output) -> list:
        """The products of one call: W_ih with every Dx, W_hh with every Dh (zero deltas cost
        nothing), and the 3H gate products r * (M_nh + b_hn), (1 - z) * n, z * h of every step."""
        _, _, dx, dh = output
        steps = dx.shape[0] * dx.shape[1]
        return [(module.weight_ih, dx.reshape(-1, dx.shape[-1])), (module.weight_hh, dh.reshape(-1, dh.shape[-1])),
                (None, dh.new_ones(steps, 3 * module.hidden))]
