"""Fused CPU loops (numba) for the LIF layer and the leaky readout: one compiled pass per time step.

The same recursions as :func:`motordecode.decoders.rsnn.lif.lif_step` / :class:`~motordecode.decoders.rsnn.lif.LIFSequence`
and :func:`motordecode.decoders.rsnn.readout.readout_step` / :class:`~motordecode.decoders.rsnn.readout.LeakyFilter`
(equations there), written as loops over (batch, neuron), so that one step costs one pass over the
state instead of ~12 tensor dispatches. Spikes are sparse (a few percent of neurons per step), so the
recurrent product and the recurrent weight gradient add one weight row per spike instead of a dense
product. Spike dropout draws its masks in the loop from a counter-based hash (lowbias32 of
seed + element index), so no mask tensor is generated; the forward pass stores which spikes were
kept (one byte each) for the backward pass.

Used for float32/float64 tensors on the CPU; every other case runs the PyTorch loop.
``tests/test_rsnn_model.py`` checks that both give the same outputs and gradients.
The arrays are numpy views of the tensors (no copies); the callers allocate the outputs.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange

from motordecode.decoders.numba_tensors import arrays, usable  # noqa: F401 - the RSNN's callers use them from here

_LOW32 = np.uint64(0xFFFFFFFF)


def scalars(like: torch.Tensor, *values: float):
    """The values as numpy scalars of ``like``'s dtype (keeps the compiled loops in that precision)."""
    kind = like.detach().numpy().dtype.type
    return tuple(kind(v) for v in values)


def drop_threshold(p: float) -> np.uint64:
    """A 32-bit hash value below floor(p 2^32) drops the spike: probability p to within 2^-32."""
    return np.uint64(int(p * 2.0 ** 32))


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _hash32(x):
    """lowbias32 (Wellons): a 32-bit integer hash; x < 2^32 as uint64."""
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & _LOW32
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & _LOW32
    x ^= x >> np.uint64(16)
    return x


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _lerp(start, end, weight):
    """torch.lerp's formula: start + w (end - start) for |w| < 0.5, else end - (end - start)(1 - w)."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def lif_forward(drive, drive0, weight_t, alpha, beta, s0, syn0, mem0, threshold, drop_below, scale, seed,
                spikes, syns, mems, kept):
    """LIF loop. drive (B, T, H) = W x_t, so step t uses drive[:, t-1] (drive0 = W x_{-1} at t = 0);
    weight_t = V^T. Writes spikes (B, T, H) and, when ``syns`` has B rows, the pre-step states
    I_{t-1}, U_{t-1} (B, T, H) and the kept-spike flags. ``drop_below`` = 0: no dropout, else kept
    spikes are scaled by ``scale``. Returns the final (I, U). The samples are independent: each
    runs its whole sequence in turn (its arrays are read and written in order), in parallel."""
    batch, steps, hidden = spikes.shape
    store = syns.shape[0] == batch
    dropout = drop_below > 0
    syn_end = np.empty_like(syn0)
    mem_end = np.empty_like(mem0)
    for b in prange(batch):
        s = s0[b].copy()
        syn = syn0[b].copy()
        mem = mem0[b].copy()
        current = np.empty_like(syn)
        for t in range(steps):
            if t == 0:
                for h in range(hidden):
                    current[h] = drive0[b, h]
            else:
                for h in range(hidden):
                    current[h] = drive[b, t - 1, h]
            for k in range(hidden):  # V s: one weight row per (scaled) spike
                if s[k] != 0.0:
                    for h in range(hidden):
                        current[h] += weight_t[k, h] * s[k]
            counter = np.uint64(seed) + np.uint64((t * batch + b) * hidden)
            for h in range(hidden):
                u = mem[h]
                i = syn[h]
                if store:
                    syns[b, t, h] = i
                    mems[b, t, h] = u
                syn[h] = current[h] + alpha[h] * i
                out = 0.0
                if u > threshold:
                    mem[h] = 0.0
                    out = 1.0
                else:
                    mem[h] = _lerp(i, u, beta[h])
                if dropout:
                    keep = _hash32((counter + np.uint64(h)) & _LOW32) >= drop_below
                    out = out * scale if keep else 0.0
                    if store:
                        kept[b, t, h] = keep
                s[h] = out
                spikes[b, t, h] = out
        for h in range(hidden):
            syn_end[b, h] = syn[h]
            mem_end[b, h] = mem[h]
    return syn_end, mem_end


BLOCK = 16  # samples per block in the backward pass (one small matrix product per step and block)


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def lif_backward(grad_spikes, weight, alpha, beta, s0, spikes, syns, mems, kept, scale, threshold, steepness,
                 grad_drive, grad_drive0):
    """BPTT of :func:`lif_forward` (equations in ``LIFSequence``). Writes grad_drive (B, T, H):
    the gradient of drive[:, t] is G_I(t+1) (0 for the last step) and that of drive0 is G_I(0).
    Returns (dalpha, dbeta, dV^T), summed over batch and time; dV^T[k, h] = sum G_I(t)[h] sd_{t-1}[k].
    Blocks of samples run their sequences backwards together (G_I(t) V is a block product), the
    blocks in parallel. The per-neuron work is split into short loops over one row each, which the
    compiler vectorises; ``scale``, ``threshold`` and ``steepness`` come in the arrays' dtype."""
    batch, steps, hidden = grad_spikes.shape
    dropout = kept.shape[0] == batch
    one = scale / scale
    zero = scale - scale
    one_minus_beta = one - beta
    blocks = (batch + BLOCK - 1) // BLOCK
    part_alpha = np.zeros((blocks, hidden), dtype=grad_spikes.dtype)
    part_beta = np.zeros_like(part_alpha)
    part_weight_t = np.zeros((blocks, hidden, hidden), dtype=grad_spikes.dtype)
    for block in prange(blocks):
        start = block * BLOCK
        stop = min(start + BLOCK, batch)
        g_syn = np.zeros((stop - start, hidden), dtype=grad_spikes.dtype)
        g_mem = np.zeros_like(g_syn)
        new_syn = np.empty_like(g_syn)
        carry = np.zeros_like(g_syn)
        held = np.empty(hidden, dtype=grad_spikes.dtype)
        factor = np.empty_like(held)
        acc_alpha, acc_beta, acc_weight_t = part_alpha[block], part_beta[block], part_weight_t[block]
        for b in range(start, stop):
            for h in range(hidden):
                grad_drive[b, steps - 1, h] = zero
        for t in range(steps - 1, -1, -1):
            for b in range(start, stop):
                j = b - start
                if t == 0:
                    for h in range(hidden):
                        grad_drive0[b, h] = g_syn[j, h]
                else:
                    for h in range(hidden):
                        grad_drive[b, t - 1, h] = g_syn[j, h]
                for h in range(hidden):
                    held[h] = g_mem[j, h] if mems[b, t, h] <= threshold else zero
                for h in range(hidden):
                    acc_alpha[h] += g_syn[j, h] * syns[b, t, h]
                for h in range(hidden):
                    acc_beta[h] += held[h] * (mems[b, t, h] - syns[b, t, h])
                if dropout:
                    for h in range(hidden):
                        factor[h] = scale if kept[b, t, h] else zero
                else:
                    for h in range(hidden):
                        factor[h] = one
                for h in range(hidden):  # the surrogate: 1 / (steepness |U - theta| + 1)^2
                    d = one + steepness * abs(mems[b, t, h] - threshold)
                    factor[h] = factor[h] / (d * d)
                for h in range(hidden):
                    g_mem[j, h] = held[h] * beta[h] + factor[h] * (grad_spikes[b, t, h] + carry[j, h])
                for h in range(hidden):
                    new_syn[j, h] = alpha[h] * g_syn[j, h] + held[h] * one_minus_beta[h]
                for k in range(hidden):  # dV from the spikes of the previous step
                    pre = s0[b, k] if t == 0 else spikes[b, t - 1, k]
                    if pre != zero:
                        for h in range(hidden):
                            acc_weight_t[k, h] += g_syn[j, h] * pre
            np.dot(g_syn, weight, carry)
            g_syn, new_syn = new_syn, g_syn
    return part_alpha.sum(axis=0), part_beta.sum(axis=0), part_weight_t.sum(axis=0)


@njit(cache=True, nogil=True, error_model="numpy")
def filter_forward(current, a, b, syn0, mem0, ys, syn_prev):
    """Leaky readout loop over current (T, B, U): writes Y_t to ys and I_{t-1} to syn_prev; returns I_T."""
    steps, batch, units = current.shape
    syn = syn0.copy()
    mem = mem0.copy()
    for t in range(steps):
        syn_prev[t] = syn
        for n in range(batch):
            for k in range(units):
                i = syn[n, k]
                syn[n, k] = current[t, n, k] + a[k] * i
                mem[n, k] = _lerp(i, mem[n, k], b[k])
        ys[t] = mem
    return syn


@njit(cache=True, nogil=True, error_model="numpy")
def filter_backward(grad_y, a, b, syn_prev, mem_prev, grad_current):
    """BPTT of :func:`filter_forward` (equations in ``LeakyFilter``). Writes grad_current; returns (da, db)."""
    steps, batch, units = grad_y.shape
    g_syn = np.zeros((batch, units), dtype=grad_y.dtype)
    g_mem = np.zeros_like(g_syn)
    acc_a = np.zeros(units)
    acc_b = np.zeros(units)
    for t in range(steps - 1, -1, -1):
        for n in range(batch):
            for k in range(units):
                gm = g_mem[n, k]
                g_syn[n, k] = a[k] * g_syn[n, k] + (1.0 - b[k]) * gm
                g_mem[n, k] = grad_y[t, n, k] + b[k] * gm
                grad_current[t, n, k] = g_syn[n, k]
                acc_a[k] += g_syn[n, k] * syn_prev[t, n, k]
                acc_b[k] += g_mem[n, k] * (mem_prev[t, n, k] - syn_prev[t, n, k])
    return acc_a, acc_b
