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

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from motordecode.metrics.activity import register_activation
from motordecode.decoders.rsnn import half_arithmetic, lif_kernels, lif_triton, loops


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


def hashed_dropout(seed: int, step: int, batch: int, hidden: int, p: float, like: torch.Tensor) -> torch.Tensor:
    """Spike-dropout multipliers of one step (batch, hidden), a function of (seed, step) only.

    Element (b, h) is dropped (0, else 1 / (1 - p)) when lowbias32(n mod 2^32) < floor(p 2^32),
    n = seed + (step B + b) H + h: the masks the fused loops of :mod:`lif_kernels` draw."""
    low32 = 0xFFFFFFFF
    x = (torch.arange(batch * hidden, dtype=torch.int64, device=like.device) + (seed + step * batch * hidden)) & low32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & low32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & low32  # int64 products wrap; their low 32 bits are exact
    x = x ^ (x >> 16)
    keep = x >= int(lif_kernels.drop_threshold(p))
    return keep.reshape(batch, hidden).to(like.dtype) / (1.0 - p)


def dropout_scale(p: float, like: torch.Tensor) -> float:
    """1 / (1 - p) rounded as :func:`hashed_dropout` rounds it in ``like``'s dtype."""
    return float(torch.ones((), dtype=like.dtype) / (1.0 - p))


def decay(tau_nominal_ms: float, param: torch.Tensor, dt_ms: float) -> torch.Tensor:
    """exp(-dt / (tau_nominal * softplus(p))), per neuron (float16 parameters: in float64, rounded once,
    :func:`~motordecode.decoders.rsnn.half_arithmetic.half_decay`)."""
    if param.dtype == torch.float16:
        return half_arithmetic.half_decay(tau_nominal_ms, param, dt_ms)
    return torch.exp(-dt_ms / (tau_nominal_ms * F.softplus(param)))


def delayed(sequence: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    """(B, T, n) -> the same sequence one step later: [first, s_0, ..., s_{T-2}]."""
    return torch.cat([first[:, None], sequence[:, :-1]], dim=1)


class LIFSequence(torch.autograd.Function):
    """The LIF loop over a whole sequence with a hand-written backward pass (BPTT).

    Forward: ``lif_step`` for t = 0..T-1 on the precomputed input drive, D_t = W x_{t-1} =
    drive[:, t-1] (drive (B, T, H) = W x_t, drive0 = W x_{-1}); the spikes after dropout,
    sd_t = S_t m_t (m_t = 0 or 1 / (1 - p), :func:`hashed_dropout`, when ``dropout`` = p > 0),
    feed the recurrence and are the output (B, T, H). Backward, for t = T-1..0, with G_I, G_U the gradients of I_t, U_t, g_t that
    of sd_t from the outputs, keep_t = 1 - S_t and sigma'_t the surrogate derivative at U_{t-1} - theta:

        c_t        = g_t + G_I(t+1) V                        (spikes also feed the next step)
        G_U(t-1)   = beta keep_t G_U(t) + m_t sigma'_t c_t
        G_I(t-1)   = (1 - beta) keep_t G_U(t) + alpha G_I(t)

    with dD_t = G_I(t), dV = sum_t G_I(t)^T sd_{t-1}, dalpha = sum G_I(t) I_{t-1} and
    dbeta = sum G_U(t) keep_t (U_{t-1} - I_{t-1}). :func:`~motordecode.decoders.rsnn.loops.choose` picks
    where both loops run: fused in :mod:`~motordecode.decoders.rsnn.lif_kernels` (CPU, float32/float64)
    or :mod:`~motordecode.decoders.rsnn.lif_triton` (CUDA, float32), else step by step in PyTorch, where
    every per-step tensor stays (B, H) (autograd would build ~10 graph nodes per step instead).
    """

    @staticmethod
    def forward(ctx, drive, drive0, weight, alpha, beta, s0, syn0, mem0, dropout, threshold, steepness):
        ctx.threshold, ctx.steepness, ctx.dropout = threshold, steepness, dropout
        ctx.seed = int(torch.randint(0, 2 ** 32, (1,))) if dropout > 0 else 0
        ctx.path = loops.choose(drive, drive0, weight, alpha, beta, s0, syn0, mem0)
        run = {"numba": LIFSequence._forward_fused, "triton": LIFSequence._forward_triton,
               "torch": LIFSequence._forward_torch}[ctx.path]
        out, syn, mem, history = run(ctx, drive, drive0, weight, alpha, beta, s0, syn0, mem0)
        ctx.save_for_backward(weight, alpha, beta, s0, out, *history)
        ctx.mark_non_differentiable(syn, mem)
        return out, syn, mem

    @staticmethod
    def _forward_torch(ctx, drive, drive0, weight, alpha, beta, s0, syn0, mem0):
        weight_t = weight.t()
        s, syn, mem = s0, syn0, mem0
        spikes, syns, mems, keeps, masks = [], [], [], [], []
        for t in range(drive.shape[1]):
            syns.append(syn)
            mems.append(mem)
            current = (drive0 if t == 0 else drive[:, t - 1]) + s @ weight_t
            raw, syn, mem = lif_step(current, syn, mem, alpha, beta, ctx.threshold, ctx.steepness)
            keeps.append(1.0 - raw)
            if ctx.dropout > 0:
                masks.append(hashed_dropout(ctx.seed, t, *raw.shape, ctx.dropout, raw))
                s = raw * masks[-1]
            else:
                s = raw
            spikes.append(s)
        ctx.lists = (syns, mems, keeps, masks)
        return torch.stack(spikes, dim=1), syn, mem, ()

    @staticmethod
    def _forward_fused(ctx, drive, drive0, weight, alpha, beta, s0, syn0, mem0):
        batch, steps, hidden = drive.shape
        keep_history = any(ctx.needs_input_grad)
        history = (batch, steps, hidden) if keep_history else (0, steps, hidden)
        syns, mems = drive.new_empty(history), drive.new_empty(history)
        kept = torch.empty(history if ctx.dropout > 0 else (0, steps, hidden), dtype=torch.bool)
        ctx.scale = 1.0 / (1.0 - ctx.dropout)
        out = torch.empty_like(drive)
        syn, mem = lif_kernels.lif_forward(
            *lif_kernels.arrays(drive, drive0, weight.t(), alpha, beta, s0, syn0, mem0), ctx.threshold,
            lif_kernels.drop_threshold(ctx.dropout), ctx.scale, np.uint64(ctx.seed),
            out.numpy(), syns.numpy(), mems.numpy(), kept.numpy())
        return out, torch.from_numpy(syn), torch.from_numpy(mem), (syns, mems, kept)

    @staticmethod
    def _forward_triton(ctx, drive, drive0, weight, alpha, beta, s0, syn0, mem0):
        ctx.drop_below = int(lif_kernels.drop_threshold(ctx.dropout))
        ctx.scale = dropout_scale(ctx.dropout, drive) if ctx.dropout > 0 else 1.0
        out, syn, mem, syns, mems = lif_triton.lif_forward(
            drive, drive0, weight, alpha, beta, s0, syn0, mem0, ctx.threshold, ctx.drop_below, ctx.scale,
            ctx.seed, store=any(ctx.needs_input_grad))
        return out, syn, mem, (syns, mems)

    @staticmethod
    def backward(ctx, grad_spikes, _grad_syn, _grad_mem):
        weight, alpha, beta, s0, spikes, *history = ctx.saved_tensors
        if ctx.path == "triton":
            syns, mems = history
            grad_drive, grad_drive0, grad_weight, grad_alpha, grad_beta = lif_triton.lif_backward(
                grad_spikes, weight, alpha, beta, s0, spikes, syns, mems, ctx.threshold, ctx.steepness,
                ctx.drop_below, ctx.scale, ctx.seed)
        elif ctx.path == "numba":
            syns, mems, kept = history
            grad_drive, grad_drive0 = torch.empty_like(spikes), torch.empty_like(s0)
            typed = lif_kernels.scalars(spikes, ctx.scale, ctx.threshold, ctx.steepness)
            grad_alpha, grad_beta, grad_weight_t = lif_kernels.lif_backward(
                *lif_kernels.arrays(grad_spikes, weight, alpha, beta, s0, spikes, syns, mems, kept), *typed,
                grad_drive.numpy(), grad_drive0.numpy())
            grads = (torch.from_numpy(grad_alpha), torch.from_numpy(grad_beta), torch.from_numpy(grad_weight_t).t())
            grad_alpha, grad_beta, grad_weight = (g.to(weight.dtype) for g in grads)
        else:
            g_syn_all, grad_alpha, grad_beta = LIFSequence._backward_torch(ctx, grad_spikes, weight, alpha, beta, s0)
            grad_drive = torch.cat([g_syn_all[1:], torch.zeros_like(s0)[None]]).transpose(0, 1)
            grad_drive0 = g_syn_all[0]
            hidden = spikes.shape[-1]
            previous = torch.cat([s0[:, None], spikes[:, :-1]], dim=1).transpose(0, 1).reshape(-1, hidden)
            grad_weight = g_syn_all.reshape(-1, hidden).t() @ previous
        return grad_drive, grad_drive0, grad_weight, grad_alpha, grad_beta, None, None, None, None, None, None

    @staticmethod
    def _backward_torch(ctx, grad_spikes, weight, alpha, beta, s0):
        """G_I(t) for t = 0..T-1 (T, B, H), dalpha, dbeta."""
        syns, mems, keeps, masks = ctx.lists
        ctx.lists = None
        one_minus_beta = 1.0 - beta
        g_syn = torch.zeros_like(s0)
        g_mem = torch.zeros_like(s0)
        carry = torch.zeros_like(s0)
        acc_alpha = torch.zeros_like(s0)
        acc_beta = torch.zeros_like(s0)
        g_syns = [None] * grad_spikes.shape[1]
        for t in range(grad_spikes.shape[1] - 1, -1, -1):
            g_syns[t] = g_syn
            acc_alpha.addcmul_(g_syn, syns[t])
            held = g_mem * keeps[t]
            acc_beta.addcmul_(held, mems[t] - syns[t])
            surrogate = superspike_derivative(mems[t] - ctx.threshold, ctx.steepness)
            if masks:
                surrogate.mul_(masks[t])
            new_mem = torch.addcmul(held * beta, surrogate, grad_spikes[:, t] + carry)
            new_syn = torch.addcmul(alpha * g_syn, held, one_minus_beta)
            carry = g_syn @ weight
            g_syn, g_mem = new_syn, new_mem
        return torch.stack(g_syns), acc_alpha.sum(dim=0), acc_beta.sum(dim=0)


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
        self.substeps = 1  # network steps per sample: float16 inference divides each sample's drive by it

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
        """``x``: the inputs of the network steps. float16 weights: each sample's integer counts repeated
        for its ``substeps`` steps, computed as :mod:`half_arithmetic` defines (the state then carries the
        counts of the last step); otherwise the inputs themselves (count / substeps)."""
        if half_arithmetic.is_half(self):
            if state is None:
                state = self.initial_state(x.shape[0], self.input.weight)
            alpha, beta = self.decays()
            return half_arithmetic.lif_sequence(x.to(torch.float32), self.substeps, self.input.weight,
                                                self.recurrent.weight, alpha, beta, self.threshold, state)
        x = x.to(self.input.weight.dtype)
        if state is None:
            state = self.initial_state(x.shape[0], x)
        x_prev, s_prev, syn, mem = state
        seen, seen_prev = x, x_prev  # the state carries the undropped input
        if self.training and self.input_dropout > 0:
            seen = x * dropout_masks(x.shape, self.input_dropout, x)
            seen_prev = x_prev * dropout_masks(x_prev.shape, self.input_dropout, x_prev)
        # the input connection is counted through synaptic_inputs, so it is not called as a module
        drive, drive0 = F.linear(seen, self.input.weight), F.linear(seen_prev, self.input.weight)
        alpha, beta = self.decays()
        dropout = self.dropout if self.training else 0.0
        out, syn, mem = LIFSequence.apply(drive, drive0, self.recurrent.weight, alpha, beta, s_prev, syn, mem,
                                          dropout, self.threshold, self.steepness)
        return out, (x[:, -1], out[:, -1], syn, mem)

    @staticmethod
    def synaptic_inputs(module: "RecurrentLIF", inputs: tuple, output) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(weight, presynaptic activity rows) of both connections for one recorded call: the input
        weights multiply x_{t-1}, the recurrent ones the spikes of the previous step, S_{t-1}."""
        x = inputs[0]
        state = inputs[1] if len(inputs) > 1 else None
        spikes = output[0]
        if state is None:
            first_x, first_s = torch.zeros_like(x[:, 0]), torch.zeros_like(spikes[:, 0])
        else:
            first_x, first_s = state[0], state[1]
        x_rows = delayed(x, first_x.to(x.dtype)).reshape(-1, x.shape[-1])
        if half_arithmetic.is_half(module) and module.substeps > 1:  # counts in: count the steps' count / k
            x_rows = x_rows.to(torch.float32) / module.substeps
        s_rows = delayed(spikes, first_s.to(spikes.dtype)).reshape(-1, spikes.shape[-1])
        return [(module.input.weight, x_rows), (module.recurrent.weight, s_rows)]


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
