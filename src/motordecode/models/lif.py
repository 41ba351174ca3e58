"""Recurrent leaky integrate-and-fire (LIF) neurons with current-based synapses (tinyRSNN, bigRSNN).

Per step t, with threshold theta = 1, no biases and a one-step delay on every connection:

    S_t = H(U_{t-1} - theta)
    I_t = alpha * I_{t-1} + W x_{t-1} + V S_{t-1}
    U_t = (beta * U_{t-1} + (1 - beta) * I_{t-1}) * (1 - S_t)

alpha = exp(-dt / tau_syn), beta = exp(-dt / tau_mem). Each neuron has its own learnable time
constants, tau = tau_nominal * softplus(p) with p ~ U(0, 1) at initialisation. The reset factor
(1 - S_t) is not differentiated. H is the Heaviside step with the SuperSpike surrogate derivative

    dS/dU = 1 / (steepness * |U - theta| + 1)^2,   steepness = 20.

Time constants are in milliseconds and are converted with the recording's sample spacing ``dt_ms``
(4 ms for the benchmark sessions, the bin width for binned recordings).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from motordecode.metrics.activity import register_activation


class SuperSpike(torch.autograd.Function):
    """Heaviside step H(v) = [v > 0]; backward: grad / (steepness * |v| + 1)^2."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, steepness: float) -> torch.Tensor:
        ctx.save_for_backward(v)
        ctx.steepness = steepness
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (v,) = ctx.saved_tensors
        return grad * superspike_derivative(v, ctx.steepness), None


def superspike(v: torch.Tensor, steepness: float = 20.0) -> torch.Tensor:
    return SuperSpike.apply(v, steepness)


def superspike_derivative(v: torch.Tensor, steepness: float) -> torch.Tensor:
    """The surrogate dS/dv = 1 / (steepness |v| + 1)^2 (a new tensor)."""
    return torch.add(1.0, v.abs(), alpha=steepness).square_().reciprocal_()


def lif_step(drive: torch.Tensor, syn: torch.Tensor, mem: torch.Tensor, alpha: torch.Tensor,
             beta: torch.Tensor, threshold: float = 1.0, steepness: float = 20.0):
    """One LIF step: ``drive`` = W x_{t-1} + V S_{t-1}; (I_{t-1}, U_{t-1}) -> (S_t, I_t, U_t).

    beta U + (1 - beta) I is written as lerp(I, U, beta). The surrogate is attached only when a
    gradient is being recorded."""
    if torch.is_grad_enabled() and mem.requires_grad:
        spikes = superspike(mem - threshold, steepness)
    else:
        spikes = (mem > threshold).to(mem.dtype)
    new_syn = torch.addcmul(drive, alpha, syn)
    new_mem = torch.lerp(syn, mem, beta) * (1.0 - spikes.detach())
    return spikes, new_syn, new_mem


def dropout_masks(shape, p: float, like: torch.Tensor) -> torch.Tensor:
    """Inverted-dropout multipliers: 0 with probability p, else 1 / (1 - p)."""
    return (torch.rand(shape, dtype=like.dtype, device=like.device) >= p).to(like.dtype) / (1.0 - p)


def decay(tau_nominal_ms: float, param: torch.Tensor, dt_ms: float) -> torch.Tensor:
    """exp(-dt / (tau_nominal * softplus(p))), per neuron."""
    return torch.exp(-dt_ms / (tau_nominal_ms * F.softplus(param)))


def time_major_delayed(x: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """(B, T, C) -> a new time-major (T, B, C) tensor [first, x_0, ..., x_{T-2}], in one copy."""
    out = x.new_empty(x.shape[1], x.shape[0], x.shape[2])
    out[0] = first
    out[1:] = x[:, :-1].transpose(0, 1)
    return out


def delayed(sequence: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """(B, T, n) -> the same sequence one step later: [first, s_0, ..., s_{T-2}]."""
    return torch.cat([first[:, None], sequence[:, :-1]], dim=1)


class LIFSequence(torch.autograd.Function):
    """The LIF loop over a whole time-major sequence with a hand-written backward pass (BPTT).

    Forward: ``lif_step`` for t = 0..T-1 on the precomputed input drive D_t = W x_{t-1} (T, B, H);
    the spikes after dropout, sd_t = S_t m_t (masks drawn per step when ``dropout`` > 0), feed the
    recurrence and are the output. Backward, for t = T-1..0, with G_I, G_U the gradients of I_t,
    U_t, g_t that of sd_t from the outputs, keep_t = 1 - S_t and sigma'_t the surrogate derivative
    at U_{t-1} - theta:

        c_t        = g_t + G_I(t+1) V                        (spikes also feed the next step)
        G_U(t-1)   = beta keep_t G_U(t) + m_t sigma'_t c_t
        G_I(t-1)   = (1 - beta) keep_t G_U(t) + alpha G_I(t)

    with dD_t = G_I(t), dV = sum_t G_I(t)^T sd_{t-1}, dalpha = sum G_I(t) I_{t-1} and
    dbeta = sum G_U(t) keep_t (U_{t-1} - I_{t-1}). Everything per step stays a (B, H) tensor (in
    cache); autograd would build ~10 graph nodes per step instead.
    """

    @staticmethod
    def forward(ctx, drive, weight, alpha, beta, s0, syn0, mem0, dropout, threshold, steepness):
        weight_t = weight.t()
        s, syn, mem = s0, syn0, mem0
        spikes, syns, mems, keeps, masks = [], [], [], [], []
        for t in range(drive.shape[0]):
            syns.append(syn)
            mems.append(mem)
            raw, syn, mem = lif_step(drive[t] + s @ weight_t, syn, mem, alpha, beta, threshold, steepness)
            keeps.append(1.0 - raw)
            if dropout > 0:
                masks.append(dropout_masks(raw.shape, dropout, raw))
                s = raw * masks[-1]
            else:
                s = raw
            spikes.append(s)
        out = torch.stack(spikes)
        ctx.save_for_backward(weight, alpha, beta, s0, out)
        ctx.lists = (syns, mems, keeps, masks)
        ctx.threshold, ctx.steepness = threshold, steepness
        ctx.mark_non_differentiable(syn, mem)
        return out, syn, mem

    @staticmethod
    def backward(ctx, grad_spikes, _grad_syn, _grad_mem):
        weight, alpha, beta, s0, spikes = ctx.saved_tensors
        syns, mems, keeps, masks = ctx.lists
        grad_spikes = grad_spikes.contiguous()
        one_minus_beta = 1.0 - beta
        g_syn = torch.zeros_like(s0)
        g_mem = torch.zeros_like(s0)
        carry = torch.zeros_like(s0)
        acc_alpha = torch.zeros_like(s0)
        acc_beta = torch.zeros_like(s0)
        g_syns = [None] * spikes.shape[0]
        for t in range(spikes.shape[0] - 1, -1, -1):
            g_syns[t] = g_syn
            acc_alpha.addcmul_(g_syn, syns[t])
            held = g_mem * keeps[t]
            acc_beta.addcmul_(held, mems[t] - syns[t])
            surrogate = superspike_derivative(mems[t] - ctx.threshold, ctx.steepness)
            if masks:
                surrogate.mul_(masks[t])
            new_mem = torch.addcmul(held * beta, surrogate, grad_spikes[t] + carry)
            new_syn = torch.addcmul(alpha * g_syn, held, one_minus_beta)
            carry = g_syn @ weight
            g_syn, g_mem = new_syn, new_mem
        ctx.lists = None
        g_syn_all = torch.stack(g_syns)
        hidden = spikes.shape[-1]
        grad_weight = g_syn_all[0].t() @ s0 + g_syn_all[1:].reshape(-1, hidden).t() @ spikes[:-1].reshape(-1, hidden)
        return (g_syn_all, grad_weight, acc_alpha.sum(dim=0), acc_beta.sum(dim=0),
                None, None, None, None, None, None)


class RecurrentLIF(nn.Module):
    """A population of recurrently connected LIF neurons driven by an input layer.

    ``forward(x (B, T, C), state) -> (spikes (B, T, H), state)``; ``state`` = (x_{T-1}, S_{T-1},
    I_{T-1}, U_{T-1}) carries a stream across calls (None: all zeros; no gradient flows into it).
    The input currents of the whole sequence are computed with one matrix product before the time
    loop, which then runs in :class:`LIFSequence`. In training, dropout acts on the input
    (``input_dropout``, default ``dropout``; 0 when the batches come already dropped out, as the
    trainer cuts them) and on the emitted spikes (the recurrent and readout connections see the
    dropped spikes). Operations are counted from the recorded input and spikes (see
    :meth:`synaptic_inputs`).
    """

    def __init__(self, n_inputs: int, n_hidden: int, tau_mem_ms: float = 20.0, tau_syn_ms: float = 10.0,
                 dt_ms: float = 4.0, dropout: float = 0.0, threshold: float = 1.0, steepness: float = 20.0,
                 input_dropout: float | None = None):
        super().__init__()
        self.input = nn.Linear(n_inputs, n_hidden, bias=False)
        self.recurrent = nn.Linear(n_hidden, n_hidden, bias=False)
        self.mem_param = nn.Parameter(torch.rand(n_hidden))
        self.syn_param = nn.Parameter(torch.rand(n_hidden))
        self.tau_mem_ms, self.tau_syn_ms, self.dt_ms = float(tau_mem_ms), float(tau_syn_ms), float(dt_ms)
        self.threshold, self.steepness = float(threshold), float(steepness)
        self.dropout = float(dropout)  # on the emitted spikes
        self.input_dropout = self.dropout if input_dropout is None else float(input_dropout)

    @property
    def n_hidden(self) -> int:
        return self.recurrent.weight.shape[0]

    def decays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha, beta) per neuron."""
        return (decay(self.tau_syn_ms, self.syn_param, self.dt_ms),
                decay(self.tau_mem_ms, self.mem_param, self.dt_ms))

    def time_constants_ms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(tau_syn, tau_mem) per neuron in ms."""
        return self.tau_syn_ms * F.softplus(self.syn_param), self.tau_mem_ms * F.softplus(self.mem_param)

    def initial_state(self, batch: int, like: torch.Tensor):
        zeros = lambda n: torch.zeros(batch, n, dtype=like.dtype, device=like.device)  # noqa: E731
        return (zeros(self.input.in_features), zeros(self.n_hidden), zeros(self.n_hidden), zeros(self.n_hidden))

    def forward(self, x: torch.Tensor, state=None):
        x = x.to(self.input.weight.dtype)
        if state is None:
            state = self.initial_state(x.shape[0], x)
        x_prev, s_prev, syn, mem = state
        x_in = time_major_delayed(x, x_prev)
        if self.training and self.input_dropout > 0:
            x_in.mul_(dropout_masks(x_in.shape, self.input_dropout, x_in))
        dropout = self.dropout if self.training else 0.0
        drive = self.input(x_in)
        alpha, beta = self.decays()
        spikes, syn, mem = LIFSequence.apply(drive, self.recurrent.weight, alpha, beta, s_prev, syn, mem, dropout,
                                             self.threshold, self.steepness)
        out = spikes.transpose(0, 1)
        return out, (x[:, -1], out[:, -1], syn, mem)

    @staticmethod
    def synaptic_inputs(module: "RecurrentLIF", inputs: tuple, output) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, presynaptic activity rows) of the recurrent connection for one recorded call.

        The input connection is an ``nn.Linear`` counted on its own; the recurrent one multiplies
        the spikes of the previous step, S_{t-1}."""
        state = inputs[1] if len(inputs) > 1 else None
        spikes = output[0]
        first = state[1] if state is not None else torch.zeros_like(spikes[:, 0])
        rows = delayed(spikes, first.to(spikes.dtype)).reshape(-1, spikes.shape[-1])
        return [(module.recurrent.weight, rows)]


register_activation(RecurrentLIF)


def psp_energy(tau_mem_ms: float, tau_syn_ms: float, dt_ms: float, horizon: float = 30.0) -> float:
    """epsilon_hat = sum_t eps_t^2 dt (in seconds): the squared membrane response to one unit input.

    ``lif_step`` of a neuron that never fires, driven once by 1 at step 0; the sum runs over
    ``horizon`` of the longer time constant."""
    alpha = torch.tensor([math.exp(-dt_ms / tau_syn_ms)], dtype=torch.float64)
    beta = torch.tensor([math.exp(-dt_ms / tau_mem_ms)], dtype=torch.float64)
    steps = max(1, int(horizon * max(tau_mem_ms, tau_syn_ms) / dt_ms))
    syn, mem = torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    drive, total = torch.ones(1, dtype=torch.float64), 0.0
    for _ in range(steps + 1):
        _, syn, mem = lif_step(drive, syn, mem, alpha, beta, threshold=math.inf)
        drive = torch.zeros_like(drive)
        total += float(mem) ** 2
    return total * dt_ms / 1000.0


def fluctuation_driven_init(layer: RecurrentLIF, input_rate_hz: float, hidden_rate_hz: float | None = None,
                            sigma_u: float = 0.5, feedforward_share: float = 0.9,
                            generator: torch.Generator | None = None) -> None:
    """Fluctuation-driven initialisation (Rossbroich, Gygax & Zenke 2022), centred normal weights.

    The membrane potential of a neuron with N Poisson inputs of rate nu and weights w ~ N(0, s^2)
    has variance N nu s^2 epsilon_hat (Campbell's theorem). A target sigma_u (threshold 1), with a
    share ``feedforward_share`` of the variance from the input and the rest from recurrence, gives

        s_in^2  = share       * sigma_u^2 / (N_in  nu_in  epsilon_hat)
        s_rec^2 = (1 - share) * sigma_u^2 / (N_rec nu_rec epsilon_hat)
    """
    if input_rate_hz <= 0:
        raise ValueError(f"fluctuation-driven initialisation needs a positive input rate, got {input_rate_hz}.")
    hidden_rate_hz = input_rate_hz if hidden_rate_hz is None else hidden_rate_hz
    energy = psp_energy(layer.tau_mem_ms, layer.tau_syn_ms, layer.dt_ms)
    n_in, n_rec = layer.input.in_features, layer.n_hidden
    std_in = math.sqrt(feedforward_share * sigma_u ** 2 / (n_in * input_rate_hz * energy))
    std_rec = math.sqrt((1.0 - feedforward_share) * sigma_u ** 2 / (n_rec * hidden_rate_hz * energy))
    with torch.no_grad():
        layer.input.weight.normal_(0.0, std_in, generator=generator)
        layer.recurrent.weight.normal_(0.0, std_rec, generator=generator)
