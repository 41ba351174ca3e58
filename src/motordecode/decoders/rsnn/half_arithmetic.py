"""The float16 arithmetic of a deployed RSNN (tinyRSNN as published): one definition, whatever CPU,
kernel set (``ATEN_CPU_CAPABILITY``) or language computes it.

PyTorch's own float16 operations on the CPU sum in orders, and fuse multiply-adds, in ways that depend
on the kernels it dispatches, so they are not used. Instead every value is a float16 number held in a
float32 (weights and decays rounded once from float64), and each step is built from operations whose
result is the same in every IEEE implementation: exact sums, single float32 operations (products of
two float16 numbers are exact in float32, so a fused and an unfused multiply-add agree), and the
rounding rho(v) of a float32 v to the nearest float16 (ties to even). With integer counts c (one
sample = k network steps, ``substeps``), binary spikes S and a one-step delay on every connection:

    D(c)   = rho(f32(f32(sum_j W_jh c_j) / k))            the input drive of a network step
    R_t    = rho(f32(sum_{i: S_{t-1,i} = 1} V_hi))        the recurrent current
    c_t    = rho(D + R_t),    D = D(c of the previous network step)
    S_t    = [U_{t-1} > rho(theta)]
    I_t    = rho(c_t + alpha I_{t-1})
    U_t    = 0 where S_t, else rho(beta U_{t-1} + gamma I_{t-1}),    gamma = rho(1 - beta)
    J_t    = rho(rho(f32(sum_{i: S_{t-1,i} = 1} W_out_ui)) + a J_{t-1})
    Y_t    = rho(b Y_{t-1} + g J_{t-1}),                 g = rho(1 - b)
    y      = rho(f32(f32(sum_heads Y) / heads))           after the sample's last network step

The sums are exact (taken in float64): every term is a multiple of 2^-24 (float16 weights times
integers), and so are all partial sums, which float64 holds exactly while they stay below 2^29 in
magnitude (:func:`check_counts` refuses inputs that could pass it). The decays are
exp(-dt / (tau softplus(p))) in float64 (:func:`half_decay`), rounded once to float16.

This module is the PyTorch form of the definition (the model's evaluation and the ONNX step); the
fast step (:mod:`~motordecode.decoders.rsnn.fast_step`) and the C export follow it bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from motordecode.errors import ConfigError

EXACT_LIMIT = 2.0 ** 29  # float64 holds every multiple of 2^-24 below this magnitude exactly


def rho(values: torch.Tensor) -> torch.Tensor:
    """float32 values -> the nearest float16 values (ties to even), as float32."""
    return values.to(torch.float32).to(torch.float16).to(torch.float32)


def _to_f32(exact64: torch.Tensor) -> torch.Tensor:
    """An exact float64 sum rounded once to float32."""
    return exact64.to(torch.float32)


def is_half(module: torch.nn.Module) -> bool:
    """Whether a RecurrentLIF / LeakyReadout holds float16 weights (and so computes by this definition)."""
    return next(module.parameters()).dtype == torch.float16


def half_decay(tau_nominal_ms, param: torch.Tensor, dt_ms: float) -> torch.Tensor:
    """exp(-dt / (tau_nominal softplus(p))) per element, in float64 with Python's math (no vector
    kernel), rounded once to float16. ``tau_nominal_ms``: a number or one per element."""
    p = param.detach().to(torch.float64).cpu().numpy().ravel()
    if isinstance(tau_nominal_ms, torch.Tensor):
        tau_nominal_ms = tau_nominal_ms.detach().to(torch.float64).cpu().numpy().ravel()
    taus = np.broadcast_to(np.asarray(tau_nominal_ms, dtype=np.float64), p.shape)
    softplus = [v if v > 20.0 else math.log1p(math.exp(v)) for v in p.tolist()]  # torch's softplus threshold
    values = [math.exp(-dt_ms / (tau * s)) for tau, s in zip(taus.tolist(), softplus)]
    return torch.from_numpy(np.asarray(values, dtype=np.float64).astype(np.float16)).reshape(param.shape)


def complement(decay: torch.Tensor) -> torch.Tensor:
    """gamma = rho(1 - decay) of float16 decays, as float32."""
    return rho(1.0 - decay.to(torch.float32))


@torch.no_grad()
def check_counts(counts: torch.Tensor, weight: torch.Tensor) -> None:
    """Refuse inputs on which the exact sums of the definition are not exact: counts that are not
    integers, or so large that sum_j |W_jh| |c_j| could reach 2^29."""
    if counts.numel() == 0:
        return
    if not torch.equal(counts, torch.round(counts)):
        raise ConfigError("a float16 RSNN decodes integer spike counts; these inputs are not integers "
                          "(round or bin them to counts first).")
    total = float(counts.abs().sum(dim=-1).max())
    if total * float(weight.abs().max()) >= EXACT_LIMIT:
        raise ConfigError(f"spike counts this large (a sample's counts sum to {total:g}) are beyond what the "
                          "float16 RSNN computes exactly; check the recording's units.")


def drive(counts: torch.Tensor, weight: torch.Tensor, substeps: int) -> torch.Tensor:
    """D(c) = rho(f32(f32(W c) / k)) for counts (..., C) and W (H, C) -> (..., H) float32."""
    total = _to_f32(counts.to(torch.float64) @ weight.to(torch.float64).t())
    return rho(total / substeps if substeps > 1 else total)


def spike_current(spikes: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """rho(f32(sum of W's columns where S = 1)) for spikes (..., H) 0/1 and W (U, H) -> (..., U)."""
    return rho(_to_f32(spikes.to(torch.float64) @ weight.to(torch.float64).t()))


@torch.no_grad()
def lif_sequence(counts: torch.Tensor, substeps: int, w_in: torch.Tensor, w_rec: torch.Tensor,
                 alpha: torch.Tensor, beta: torch.Tensor, threshold: float, state):
    """The hidden layer over network steps: ``counts`` (B, T, C), each sample's counts repeated for
    its k network steps; ``state`` = (c of the previous network step, S, I, U), float16 tensors (B, .).
    Returns spikes (B, T, H) and the new state, float16 (every value is exactly float16)."""
    c_prev, s, syn, mem = (t.to(torch.float32) for t in state)
    check_counts(counts, w_in)
    check_counts(c_prev, w_in)
    alpha, beta = alpha.to(torch.float32), beta.to(torch.float32)
    gamma, theta = complement(beta), float(rho(torch.tensor([float(threshold)]))[0])
    steps = counts.shape[1]
    # D of each network step's input, computed once per distinct sample (its k steps share it)
    drives = drive(counts[:, ::substeps], w_in, substeps).repeat_interleave(substeps, dim=1)[:, :steps]
    first_drive = drive(c_prev, w_in, substeps)
    spikes = []
    for t in range(steps):
        d = first_drive if t == 0 else drives[:, t - 1]
        current = rho(d + spike_current(s, w_rec))
        fired = mem > theta
        new_syn = rho(current + alpha * syn)
        mem = torch.where(fired, torch.zeros_like(mem), rho(beta * mem + gamma * syn))
        syn, s = new_syn, fired.to(torch.float32)
        spikes.append(s)
    out = torch.stack(spikes, dim=1) if spikes else counts.new_zeros(counts.shape[0], 0, w_rec.shape[0])
    last = counts[:, -1] if steps else c_prev
    half = lambda t: t.to(torch.float16)  # noqa: E731  (exact: every value is a float16 number)
    return half(out), (half(last), half(s), half(syn), half(mem))


@torch.no_grad()
def readout_sequence(spikes: torch.Tensor, first: torch.Tensor, weight: torch.Tensor, a: torch.Tensor,
                     b: torch.Tensor, state):
    """The leaky readout over network steps: spikes (B, T, H), ``first`` = S of the step before
    (B, H), ``state`` = (J, Y) (B, U). Returns Y (T, B, U) and J after the last step, float16."""
    a, b = a.to(torch.float32), b.to(torch.float32)
    g = complement(b)
    currents = spike_current(torch.cat([first[:, None], spikes[:, :-1]], dim=1), weight)  # (B, T, U)
    j, y = (t.to(torch.float32) for t in state)
    ys = []
    for t in range(spikes.shape[1]):
        j, y = rho(currents[:, t] + a * j), rho(b * y + g * j)
        ys.append(y)
    out = torch.stack(ys) if ys else spikes.new_zeros(0, spikes.shape[0], weight.shape[0], dtype=torch.float32)
    return out.to(torch.float16), j.to(torch.float16)


@torch.no_grad()
def mean_of_heads(y: torch.Tensor, heads: int) -> torch.Tensor:
    """rho(f32(f32(sum over heads) / heads)) of Y (..., heads, D) -> (..., D) float16."""
    total = _to_f32(y.to(torch.float64).sum(dim=-2))
    return rho(total / heads if heads > 1 else total).to(torch.float16)
