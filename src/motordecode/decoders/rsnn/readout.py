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

from motordecode.decoders.rsnn import half_arithmetic, lif_kernels, lif_triton, loops
from motordecode.decoders.rsnn.lif import decay, delayed


def readout_step(current: torch.Tensor, syn: torch.Tensor, mem: torch.Tensor, a: torch.Tensor,
                 b: torch.Tensor):
    """(W S_{t-1}, I_{t-1}, Y_{t-1}) -> (I_t, Y_t); b Y + (1 - b) I is lerp(I, Y, b)."""
    return torch.addcmul(current, a, syn), torch.lerp(syn, mem, b)


class LeakyFilter(torch.autograd.Function):
    """``readout_step`` over a time-major sequence of currents (T, B, U), with a hand-written backward.

    With gY_t the gradient of Y_t from the outputs and G_I, G_Y the total gradients of I_t, Y_t:

        G_Y(t) = gY_t + b G_Y(t+1)
        G_I(t) = a G_I(t+1) + (1 - b) G_Y(t+1)

    and dc_t = G_I(t), da = sum G_I(t) I_{t-1}, db = sum G_Y(t) (Y_{t-1} - I_{t-1}). Both loops run
    where :func:`~motordecode.decoders.rsnn.loops.choose` says: fused in
    :mod:`~motordecode.decoders.rsnn.lif_kernels` (CPU) or :mod:`~motordecode.decoders.rsnn.lif_triton`
    (CUDA), else step by step in PyTorch.
    """

    @staticmethod
    def forward(ctx, current, a, b, syn0, mem0):
        ctx.path = loops.choose(current, a, b, syn0, mem0)
        if ctx.path == "triton":
            ys, syn_prev, syn = lif_triton.filter_forward(current, a, b, syn0, mem0)
        elif ctx.path == "numba":
            ys, syn_prev = torch.empty_like(current), torch.empty_like(current)
            syn = torch.from_numpy(lif_kernels.filter_forward(*lif_kernels.arrays(current, a, b, syn0, mem0),
                                                              ys.numpy(), syn_prev.numpy()))
        else:
            syn, mem = syn0, mem0
            syns, mems = [], []
            for c in current:
                syn, mem = readout_step(c, syn, mem, a, b)
                syns.append(syn)
                mems.append(mem)
            ys = torch.stack(mems)
            syn_prev = torch.stack([syn0] + syns[:-1])
        mem_prev = torch.cat([mem0[None], ys[:-1]])
        ctx.save_for_backward(a, b, syn_prev, mem_prev)
        ctx.mark_non_differentiable(syn)
        return ys, syn

    @staticmethod
    def backward(ctx, grad_y, _grad_syn):
        a, b, syn_prev, mem_prev = ctx.saved_tensors
        if ctx.path == "triton":
            return (*lif_triton.filter_backward(grad_y, a, b, syn_prev, mem_prev), None, None)
        if ctx.path == "numba":
            grad_current = torch.empty_like(syn_prev)
            grad_a, grad_b = lif_kernels.filter_backward(*lif_kernels.arrays(grad_y, a, b, syn_prev, mem_prev),
                                                         grad_current.numpy())
            return grad_current, torch.from_numpy(grad_a).to(a.dtype), torch.from_numpy(grad_b).to(b.dtype), None, None
        one_minus_b = 1.0 - b
        g_syn = torch.zeros_like(syn_prev[0])
        g_mem = torch.zeros_like(syn_prev[0])
        g_syns, g_mems = [], []
        for t in range(grad_y.shape[0] - 1, -1, -1):
            new_mem = torch.addcmul(grad_y[t], b, g_mem)
            g_syn = torch.addcmul(a * g_syn, one_minus_b, g_mem)
            g_mem = new_mem
            g_syns.append(g_syn)
            g_mems.append(g_mem)
        g_syn_all = torch.stack(g_syns[::-1])
        g_mem_all = torch.stack(g_mems[::-1])
        grad_a = (g_syn_all * syn_prev).sum(dim=(0, 1))
        grad_b = (g_mem_all * (mem_prev - syn_prev)).sum(dim=(0, 1))
        return g_syn_all, grad_a, grad_b, None, None


def unit_decays(heads, n_outputs: int, syn_param: torch.Tensor, mem_param: torch.Tensor, dt_ms: float):
    """(a, b) of every unit, head-major: each head's nominal (tau_syn, tau_mem) times softplus(p)."""
    nominal = torch.tensor([head for head in heads for _ in range(n_outputs)], dtype=mem_param.dtype,
                           device=mem_param.device)
    return decay(nominal[:, 0], syn_param, dt_ms), decay(nominal[:, 1], mem_param, dt_ms)


class LeakyReadout(nn.Module):
    """``forward(spikes (B, T, H), first, state) -> (prediction (B, T, n_outputs), state)``.

    The units see the spikes one step late: the current of step t is W S_{t-1}, with S_{-1} =
    ``first`` (the last spikes of the previous call; None: zeros). The products are taken on the
    undelayed spikes and the (small) currents are shifted. ``state`` = (I, Y) of all units.
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

    def decays(self) -> tuple[torch.Tensor, torch.Tensor]:
        return unit_decays(self.heads, self.n_outputs, self.syn_param, self.mem_param, self.dt_ms)

    def scale_outputs(self, scale) -> None:
        """Multiply output d by ``scale[d]`` (exact: Y is linear in W). Folds a label scale into W."""
        scale = torch.as_tensor(scale, dtype=self.fc.weight.dtype).repeat(len(self.heads))
        with torch.no_grad():
            self.fc.weight.mul_(scale[:, None])

    def forward(self, spikes: torch.Tensor, first: torch.Tensor | None = None, state=None):
        batch, steps, _ = spikes.shape
        if half_arithmetic.is_half(self):  # float16 weights: the definition of half_arithmetic
            weight = self.fc.weight
            zeros = torch.zeros(batch, weight.shape[0], dtype=torch.float16)
            first = torch.zeros(batch, spikes.shape[-1]) if first is None else first
            a, b = self.decays()
            ys, syn = half_arithmetic.readout_sequence(spikes, first, weight, a, b,
                                                       (zeros, zeros) if state is None else state)
            y = ys.transpose(0, 1).reshape(batch, steps, len(self.heads), self.n_outputs)
            last = ys[-1] if steps else (zeros if state is None else state[1])
            return half_arithmetic.mean_of_heads(y, len(self.heads)), (syn, last)
        # fc is counted through synaptic_inputs, so it is not called as a module
        current = F.linear(spikes, self.fc.weight)
        first_current = current.new_zeros(batch, current.shape[-1]) if first is None else F.linear(first, self.fc.weight)
        current = torch.cat([first_current[None], current[:, :-1].transpose(0, 1)])  # time-major (T, B, U)
        if state is None:
            zeros = current.new_zeros(batch, current.shape[-1])
            state = (zeros, zeros)
        a, b = self.decays()
        ys, syn = LeakyFilter.apply(current, a, b, *state)
        y = ys.transpose(0, 1).reshape(batch, steps, len(self.heads), self.n_outputs).mean(dim=2)
        return y, (syn, ys[-1])

    @staticmethod
    def synaptic_inputs(module: "LeakyReadout", inputs: tuple, output) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(fc weight, the spikes it multiplies, S_{t-1}) for one recorded call."""
        spikes = inputs[0]
        first = inputs[1] if len(inputs) > 1 and inputs[1] is not None else torch.zeros_like(spikes[:, 0])
        return [(module.fc.weight, delayed(spikes, first.to(spikes.dtype)).reshape(-1, spikes.shape[-1]))]
