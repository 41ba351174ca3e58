"""tinyRSNN and bigRSNN: one recurrent LIF layer and a leaky-integrator readout (Liu et al. 2024).

    x (C channels, binary 4 ms bins or binned counts)
      -> RecurrentLIF(H)            S_t, with input dropout and spike dropout in training
      -> LeakyReadout(D per head)   Y_t, the mean of the heads

tinyRSNN: H = 64, one readout head (tau_syn, tau_mem) = (10, 50) ms, 10368 weights for 96 channels.
bigRSNN: H = 1024, five heads (10, 50), (5, 20), (20, 20), (10, 30), (30, 100) ms.
The state carries a stream across calls; ``forward`` starts from zeros, as the test split does.

Coarse bins: with ``substeps`` = k > 1 each input sample (a bin of k dt) is fed as k steps of
count / k, and the prediction of a sample is the output at its last step. The network keeps its
published ~4 ms dynamics and one-step delays (5 steps from input to output: 20 ms, not 5 bins).

float16 (the deployed tinyRSNN): the arithmetic of :mod:`~motordecode.decoders.rsnn.half_arithmetic`,
one definition on every CPU, followed bit for bit by the fast step, the C export and ONNX. The
network then takes the counts themselves and divides each sample's drive W c by k.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from motordecode.decoders.base import Decoder
from motordecode.decoders.rsnn import half_arithmetic
from motordecode.decoders.rsnn.lif import RecurrentLIF
from motordecode.decoders.rsnn.readout import LeakyReadout
from motordecode.decoders.rsnn.recipe import HEADS



@dataclass
class RSNNConfig:
    n_channels: int
    hidden: int = 64
    n_outputs: int = 2
    tau_mem_ms: float = 20.0
    tau_syn_ms: float = 10.0
    readout_heads: tuple = HEADS["tiny"]  # (tau_syn, tau_mem) in ms per head
    dt_ms: float = 4.0                  # the network's time step
    dropout: float = 0.0
    substeps: int = 1                   # network steps per input sample (coarse bins, see RSNN)

    def __post_init__(self):
        self.readout_heads = tuple(tuple(float(v) for v in head) for head in self.readout_heads)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["readout_heads"] = [list(head) for head in self.readout_heads]
        return data


class RSNN(nn.Module):
    def __init__(self, config: RSNNConfig):
        super().__init__()
        self.config = config
        self.lif = RecurrentLIF(config.n_channels, config.hidden, config.tau_mem_ms, config.tau_syn_ms,
                                config.dt_ms, config.dropout)
        self.readout = LeakyReadout(config.hidden, config.n_outputs, config.readout_heads, config.dt_ms)
        self.lif.substeps = config.substeps

    def sequence(self, x: torch.Tensor, state=None):
        """(B, T, C) -> (prediction (B, T, D), state, spikes (B, T k, H)); ``state`` from a previous call."""
        k = self.config.substeps
        if k > 1:  # float16: the counts themselves (the network divides each step's drive by k)
            x = x.repeat_interleave(k, dim=1)
            x = x if half_arithmetic.is_half(self.lif) else x / k
        hidden_state, readout_state = (None, None) if state is None else state
        spikes, new_hidden = self.lif(x, hidden_state)
        first = None if hidden_state is None else hidden_state[1]
        y, new_readout = self.readout(spikes, first, readout_state)
        if k > 1:
            y = y[:, k - 1 :: k]
        return y, (new_hidden, new_readout), spikes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C) or (T, C) from a zero state -> predictions of the same leading shape."""
        single = x.dim() == 2
        y, _, _ = self.sequence(x[None] if single else x)
        return y[0] if single else y

    def pruned_weights(self) -> dict[str, torch.Tensor]:
        """The connection matrices that pruning acts on: input, recurrent, readout."""
        return {"lif.input.weight": self.lif.input.weight, "lif.recurrent.weight": self.lif.recurrent.weight,
                "readout.fc.weight": self.readout.fc.weight}

    def set_output_scale(self, scale, shift=None) -> None:
        """Fold a label scale into the readout weights (no extra parameters; no shift: no biases)."""
        if shift is not None and any(float(s) != 0.0 for s in shift):
            raise ValueError("the RSNN readout has no bias; only a label scale can be folded in.")
        self.readout.scale_outputs(scale)


class RSNNState(NamedTuple):
    x: torch.Tensor         # the last input step x_{t-1} (batch, C)
    spikes: torch.Tensor    # S_{t-1} (batch, H)
    syn: torch.Tensor       # I_{t-1} (batch, H)
    mem: torch.Tensor       # U_{t-1} (batch, H)
    out_syn: torch.Tensor   # readout currents (batch, heads x D)
    out_mem: torch.Tensor   # readout outputs (batch, heads x D)


class RSNNDecoder(Decoder):
    """The RSNN's streaming face: one recording sample is ``substeps`` network steps."""

    def initial_state(self, batch: int = 1) -> RSNNState:
        weight = self.model.readout.fc.weight
        readout = torch.zeros(batch, weight.shape[0], dtype=weight.dtype)
        return RSNNState(*self.model.lif.initial_state(batch, weight), readout, readout.clone())

    def sequence(self, x: torch.Tensor, state: RSNNState):
        s = state
        y, (hidden, readout), _ = self.model.sequence(x.transpose(0, 1), ((s.x, s.spikes, s.syn, s.mem),
                                                                           (s.out_syn, s.out_mem)))
        return y.transpose(0, 1), RSNNState(*hidden, *readout)

    def fast_step(self):
        from motordecode.decoders.rsnn.fast_step import RSNNFast

        return RSNNFast(self.model, self.n_channels)
