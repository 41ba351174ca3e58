"""The RSNN written with snntorch neurons, called once per time step.

This is the same network as :class:`motordecode.decoders.rsnn.model.RSNN` (same equations, same parameters)
in the form NeuroBench evaluates spiking models: ``nn.Linear`` layers and an snntorch
``SpikingNeuron`` subclass called every step, with state kept between calls. It serves two
purposes: running a trained model under unmodified NeuroBench (cross-checked in the tests), and
the snntorch baseline of the training-speed benchmark. snntorch's ``fast_sigmoid(slope=20)``
surrogate is the SuperSpike derivative 1 / (20 |v| + 1)^2.
"""

from __future__ import annotations

import snntorch
import torch
from snntorch import surrogate
from torch import nn

from motordecode.decoders.rsnn.lif import decay, lif_step
from motordecode.decoders.rsnn.readout import readout_step, unit_decays
from motordecode.decoders.rsnn.model import RSNN


class StepLIF(snntorch.SpikingNeuron):
    """S_t = H(U_{t-1} - 1); I_t = alpha I_{t-1} + input + V S_{t-1}; U_t = (beta U_{t-1} + (1 - beta) I_{t-1})(1 - S_t)."""

    def __init__(self, n_hidden: int, tau_mem_ms: float, tau_syn_ms: float, dt_ms: float, slope: float = 20.0):
        super().__init__(threshold=1.0, spike_grad=surrogate.fast_sigmoid(slope=slope), reset_mechanism="zero")
        self.recurrent = nn.Linear(n_hidden, n_hidden, bias=False)
        self.mem_param = nn.Parameter(torch.rand(n_hidden))
        self.syn_param = nn.Parameter(torch.rand(n_hidden))
        self.tau_mem_ms, self.tau_syn_ms, self.dt_ms = tau_mem_ms, tau_syn_ms, dt_ms

    def forward(self, input_, spk, syn, mem):
        alpha = decay(self.tau_syn_ms, self.syn_param, self.dt_ms)
        beta = decay(self.tau_mem_ms, self.mem_param, self.dt_ms)
        new_spk = self.fire(mem)  # snntorch's threshold crossing: the spikes NeuroBench records
        _, new_syn, new_mem = lif_step(input_ + self.recurrent(spk), syn, mem, alpha, beta)
        return new_spk, new_syn, new_mem


class StepReadout(nn.Module):
    """Non-spiking leaky integrator: I_t = a I_{t-1} + input; Y_t = b Y_{t-1} + (1 - b) I_{t-1}; heads averaged."""

    def __init__(self, n_outputs: int, heads, dt_ms: float):
        super().__init__()
        self.n_outputs, self.heads, self.dt_ms = n_outputs, tuple(heads), dt_ms
        units = n_outputs * len(self.heads)
        self.mem_param = nn.Parameter(torch.rand(units))
        self.syn_param = nn.Parameter(torch.rand(units))

    def forward(self, input_, syn, mem):
        a, b = unit_decays(self.heads, self.n_outputs, self.syn_param, self.mem_param, self.dt_ms)
        new_syn, new_mem = readout_step(input_, syn, mem, a, b)
        y = new_mem.reshape(*new_mem.shape[:-1], len(self.heads), self.n_outputs).mean(dim=-2)
        return y, new_syn, new_mem


class SnnTorchRSNN(nn.Module):
    """Per-step RSNN that keeps its state between calls (``reset()`` clears it).

    ``forward(x (..., C))`` reads the rows of x as consecutive steps of one stream and returns
    (steps, D), so NeuroBench can feed it one 4 ms step per batch; ``sequence(x (B, T, C))`` runs a
    batch of sequences from a zero state (training)."""

    def __init__(self, n_channels: int, hidden: int, n_outputs: int = 2, tau_mem_ms: float = 20.0,
                 tau_syn_ms: float = 10.0, readout_heads=((10.0, 50.0),), dt_ms: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.input_dropout, self.spike_dropout = nn.Dropout(dropout), nn.Dropout(dropout)
        self.fc_in = nn.Linear(n_channels, hidden, bias=False)
        self.lif = StepLIF(hidden, tau_mem_ms, tau_syn_ms, dt_ms)
        self.fc_out = nn.Linear(hidden, n_outputs * len(readout_heads), bias=False)
        self.readout = StepReadout(n_outputs, readout_heads, dt_ms)
        self.state = None

    @classmethod
    def from_rsnn(cls, model: RSNN) -> "SnnTorchRSNN":
        """The same network and weights; one call per network step (so no coarse-bin sub-steps)."""
        c = model.config
        if c.substeps != 1:
            raise ValueError(f"the snntorch version runs one network step per input row; this model feeds "
                             f"each sample as {c.substeps} sub-steps.")
        net = cls(c.n_channels, c.hidden, c.n_outputs, c.tau_mem_ms, c.tau_syn_ms, c.readout_heads, c.dt_ms,
                  c.dropout)
        with torch.no_grad():
            net.fc_in.weight.copy_(model.lif.input.weight)
            net.lif.recurrent.weight.copy_(model.lif.recurrent.weight)
            net.lif.mem_param.copy_(model.lif.mem_param)
            net.lif.syn_param.copy_(model.lif.syn_param)
            net.fc_out.weight.copy_(model.readout.fc.weight)
            net.readout.mem_param.copy_(model.readout.mem_param)
            net.readout.syn_param.copy_(model.readout.syn_param)
        return net

    def reset(self) -> None:
        self.state = None

    def _zeros(self, batch: int, like: torch.Tensor):
        z = lambda n: torch.zeros(batch, n, dtype=like.dtype)  # noqa: E731
        hidden, units = self.fc_in.out_features, self.fc_out.out_features
        return [z(self.fc_in.in_features), z(hidden), z(hidden), z(hidden), z(units), z(units)]

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One time step for a (B, C) input."""
        if self.state is None:
            self.state = self._zeros(x.shape[0], x)
        x_prev, spk, syn, mem, r_syn, r_mem = self.state
        new_spk, syn, mem = self.lif(self.fc_in(self.input_dropout(x_prev)), spk, syn, mem)
        y, r_syn, r_mem = self.readout(self.fc_out(spk), r_syn, r_mem)
        self.state = [x, self.spike_dropout(new_spk), syn, mem, r_syn, r_mem]
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        return torch.cat([self.step(row[None]) for row in rows])

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        self.reset()
        out = torch.stack([self.step(x[:, t]) for t in range(x.shape[1])], dim=1)
        self.reset()
        return out


__all__ = ["SnnTorchRSNN", "StepLIF", "StepReadout"]
