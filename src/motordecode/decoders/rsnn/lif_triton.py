"""Fused GPU loops (Triton) for the LIF layer and the leaky readout: one kernel launch per pass.

The same recursions as :class:`~motordecode.decoders.rsnn.lif.LIFSequence` and
:class:`~motordecode.decoders.rsnn.readout.LeakyFilter` (equations there). The PyTorch loop
launches ~12 small kernels per step, so 500 steps forward and backward cost ~12,000 launches, and
on a GPU that launch overhead, not the arithmetic, sets a batch's time. Here each program owns a
block of ``BLOCK_B`` samples and runs the whole time loop inside the kernel:

- forward, per step and per tile of neurons: D_t + V S_{t-1} as block matrix products
  (``tl.dot`` in IEEE float32, no TF32) of the program's previous spikes and V^T, then the LIF
  update; a barrier ends the step, so the next step reads the spikes just written;
- backward, per step: G_I(t+1) V the same way (G_I(t+1) is read back from ``grad_drive``, where
  it is stored as the gradient of drive[:, t]), then the update of G_U, G_I and the per-sample
  sums over time of dalpha and dbeta. dV = sum_t G_I(t)^T sd_{t-1} is one matrix product afterwards.

Spike dropout draws its masks from the counter hash of :func:`~motordecode.decoders.rsnn.lif.hashed_dropout`
(lowbias32 of seed + (t B + b) H + h), so the masks equal the PyTorch and numba paths'; the backward
pass recomputes them, and the reset flags from the stored U_{t-1}. The readout filter is
elementwise: one program per block of (sample, unit) pairs loops over time.

Triton is optional (``pip install motordecode[gpu]``; CUDA builds of torch bring it). Kernels are
compiled for CUDA tensors; CPU tensors run them in Triton's interpreter (slow; for the tests).
Only float32.
"""

from __future__ import annotations

import functools

import torch

try:  # optional: the gpu extra (CUDA builds of torch bring it)
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised where triton is absent
    triton = None
    tl = None

BLOCK_B = 16  # samples per program (tl.dot needs at least 16 rows)
BLOCK_ELEMENTS = 256  # (sample, unit) pairs per program of the readout filter


def available() -> bool:
    """True when Triton can be imported."""
    return triton is not None


def usable(*tensors: torch.Tensor) -> bool:
    """True when the Triton kernels can run these tensors compiled: CUDA, float32, Triton present."""
    return available() and all(t.device.type == "cuda" and t.dtype == torch.float32 for t in tensors)


def _tile(n: int, most: int) -> int:
    """A power-of-two tile of at least 16 and at most ``most`` covering up to n."""
    return max(16, min(most, triton.next_power_of_2(n)))


# The kernels are plain functions, made into compiled (CUDA) or interpreted (CPU) kernels on demand.

def _lif_forward_kernel(drive, drive0, weight_t, alpha, beta, s0, syn_state, mem_state, out, syns, mems,
                        batch, steps, hidden, threshold, drop_below, scale, seed,
                        BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
                        STORE: tl.constexpr, DROPOUT: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < batch
    rows64 = rows.to(tl.int64)
    seq = rows64 * steps * hidden  # (B, T, H) row offsets
    for t in range(steps):
        # step t reads D_t = drive[:, t-1] (drive0 at t = 0) and S_{t-1} = out[:, t-1] (s0 at t = 0)
        drive_rows = tl.where(t == 0, drive0 + rows64 * hidden, drive + seq + (t - 1) * hidden)
        spike_rows = tl.where(t == 0, s0 + rows64 * hidden, out + seq + (t - 1) * hidden)
        for h_start in range(0, hidden, BLOCK_H):
            cols = h_start + tl.arange(0, BLOCK_H)
            col_ok = cols < hidden
            tile_ok = row_ok[:, None] & col_ok[None, :]
            current = tl.load(drive_rows[:, None] + cols[None, :], mask=tile_ok, other=0.0)
            for k_start in range(0, hidden, BLOCK_K):
                ks = k_start + tl.arange(0, BLOCK_K)
                k_ok = ks < hidden
                pre = tl.load(spike_rows[:, None] + ks[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0.0)
                w = tl.load(weight_t + ks[:, None] * hidden + cols[None, :], mask=k_ok[:, None] & col_ok[None, :],
                            other=0.0)
                current += tl.dot(pre, w, input_precision="ieee")
            state = rows64[:, None] * hidden + cols[None, :]
            i = tl.load(syn_state + state, mask=tile_ok, other=0.0)
            u = tl.load(mem_state + state, mask=tile_ok, other=0.0)
            here = seq[:, None] + t * hidden + cols[None, :]
            if STORE:
                tl.store(syns + here, i, mask=tile_ok)
                tl.store(mems + here, u, mask=tile_ok)
            a = tl.load(alpha + cols, mask=col_ok, other=0.0)[None, :]
            b = tl.load(beta + cols, mask=col_ok, other=0.0)[None, :]
            fired = u > threshold
            # torch.lerp(I, U, beta): I + beta (U - I) for |beta| < 0.5, else U - (U - I)(1 - beta)
            leaky = tl.where(tl.abs(b) < 0.5, i + b * (u - i), u - (u - i) * (1.0 - b))
            tl.store(syn_state + state, current + a * i, mask=tile_ok)
            tl.store(mem_state + state, tl.where(fired, 0.0, leaky), mask=tile_ok)
            spike = tl.where(fired, 1.0, 0.0)
            if DROPOUT:
                x = (seed + (t * batch + rows64[:, None]) * hidden + cols[None, :]) & 0xFFFFFFFF
                x = x ^ (x >> 16)
                x = (x * 0x7FEB352D) & 0xFFFFFFFF
                x = x ^ (x >> 15)
                x = (x * 0x846CA68B) & 0xFFFFFFFF
                x = x ^ (x >> 16)
                spike = tl.where(x >= drop_below, spike * scale, 0.0)
            tl.store(out + here, spike, mask=tile_ok)
        tl.debug_barrier()  # the next step reads this step's spikes


def _lif_backward_kernel(grad_spikes, weight, alpha, beta, syns, mems, g_syn_state, g_mem_state, grad_drive,
                         grad_drive0, acc_alpha, acc_beta,
                         batch, steps, hidden, threshold, steepness, drop_below, scale, seed,
                         BLOCK_B: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_K: tl.constexpr,
                         DROPOUT: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_B + tl.arange(0, BLOCK_B)
    row_ok = rows < batch
    rows64 = rows.to(tl.int64)
    seq = rows64 * steps * hidden
    for step in range(steps):
        t = steps - 1 - step
        # carry = G_I(t+1) V, with G_I(t+1) stored as the gradient of drive[:, t] (0 at t = T-1)
        later_rows = grad_drive + seq + t * hidden
        # G_I(t) becomes the gradient of drive[:, t-1] (of drive0 at t = 0)
        this_rows = tl.where(t == 0, grad_drive0 + rows64 * hidden, grad_drive + seq + (t - 1) * hidden)
        for h_start in range(0, hidden, BLOCK_H):
            cols = h_start + tl.arange(0, BLOCK_H)
            col_ok = cols < hidden
            tile_ok = row_ok[:, None] & col_ok[None, :]
            carry = tl.full((BLOCK_B, BLOCK_H), 0.0, tl.float32)
            for k_start in range(0, hidden, BLOCK_K):
                ks = k_start + tl.arange(0, BLOCK_K)
                k_ok = ks < hidden
                later = tl.load(later_rows[:, None] + ks[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0.0)
                w = tl.load(weight + ks[:, None] * hidden + cols[None, :], mask=k_ok[:, None] & col_ok[None, :],
                            other=0.0)
                carry += tl.dot(later, w, input_precision="ieee")
            state = rows64[:, None] * hidden + cols[None, :]
            g_syn = tl.load(g_syn_state + state, mask=tile_ok, other=0.0)
            g_mem = tl.load(g_mem_state + state, mask=tile_ok, other=0.0)
            tl.store(this_rows[:, None] + cols[None, :], g_syn, mask=tile_ok)
            here = seq[:, None] + t * hidden + cols[None, :]
            i = tl.load(syns + here, mask=tile_ok, other=0.0)
            u = tl.load(mems + here, mask=tile_ok, other=0.0)
            a = tl.load(alpha + cols, mask=col_ok, other=0.0)[None, :]
            b = tl.load(beta + cols, mask=col_ok, other=0.0)[None, :]
            held = tl.where(u > threshold, 0.0, g_mem)
            d = 1.0 + steepness * tl.abs(u - threshold)
            surrogate = 1.0 / (d * d)
            if DROPOUT:
                x = (seed + (t * batch + rows64[:, None]) * hidden + cols[None, :]) & 0xFFFFFFFF
                x = x ^ (x >> 16)
                x = (x * 0x7FEB352D) & 0xFFFFFFFF
                x = x ^ (x >> 15)
                x = (x * 0x846CA68B) & 0xFFFFFFFF
                x = x ^ (x >> 16)
                surrogate = tl.where(x >= drop_below, surrogate * scale, 0.0)
            g_out = tl.load(grad_spikes + here, mask=tile_ok, other=0.0)
            tl.store(g_mem_state + state, held * b + surrogate * (g_out + carry), mask=tile_ok)
            tl.store(g_syn_state + state, a * g_syn + held * (1.0 - b), mask=tile_ok)
            # per-sample sums over time of dalpha and dbeta (summed over the samples afterwards)
            tl.store(acc_alpha + state, tl.load(acc_alpha + state, mask=tile_ok, other=0.0) + g_syn * i,
                     mask=tile_ok)
            tl.store(acc_beta + state, tl.load(acc_beta + state, mask=tile_ok, other=0.0) + held * (u - i),
                     mask=tile_ok)
        tl.debug_barrier()  # the next (earlier) step reads this step's G_I


def _filter_forward_kernel(current, a, b, syn_state, mem_state, ys, syn_prev, steps, elements, units,
                           BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < elements
    unit = offs % units
    ka = tl.load(a + unit, mask=ok, other=0.0)
    kb = tl.load(b + unit, mask=ok, other=0.0)
    syn = tl.load(syn_state + offs, mask=ok, other=0.0)
    mem = tl.load(mem_state + offs, mask=ok, other=0.0)
    for t in range(steps):
        here = t * elements + offs
        tl.store(syn_prev + here, syn, mask=ok)
        c = tl.load(current + here, mask=ok, other=0.0)
        mem = tl.where(tl.abs(kb) < 0.5, syn + kb * (mem - syn), mem - (mem - syn) * (1.0 - kb))
        syn = c + ka * syn
        tl.store(ys + here, mem, mask=ok)
    tl.store(syn_state + offs, syn, mask=ok)


def _filter_backward_kernel(grad_y, a, b, syn_prev, mem_prev, grad_current, part_a, part_b, steps, elements,
                            units, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = offs < elements
    unit = offs % units
    ka = tl.load(a + unit, mask=ok, other=0.0)
    kb = tl.load(b + unit, mask=ok, other=0.0)
    g_syn = tl.full((BLOCK,), 0.0, tl.float32)
    g_mem = tl.full((BLOCK,), 0.0, tl.float32)
    acc_a = tl.full((BLOCK,), 0.0, tl.float32)
    acc_b = tl.full((BLOCK,), 0.0, tl.float32)
    for step in range(steps):
        here = (steps - 1 - step) * elements + offs
        g_syn = ka * g_syn + (1.0 - kb) * g_mem
        g_mem = tl.load(grad_y + here, mask=ok, other=0.0) + kb * g_mem
        tl.store(grad_current + here, g_syn, mask=ok)
        i = tl.load(syn_prev + here, mask=ok, other=0.0)
        acc_a += g_syn * i
        acc_b += g_mem * (tl.load(mem_prev + here, mask=ok, other=0.0) - i)
    tl.store(part_a + offs, acc_a, mask=ok)
    tl.store(part_b + offs, acc_b, mask=ok)


@functools.lru_cache(maxsize=None)
def _kernel(name: str, interpreted: bool):
    """The kernel ``name``, compiled (CUDA tensors) or for Triton's interpreter (CPU tensors)."""
    fn = globals()[f"_{name}_kernel"]
    if interpreted:
        from triton.runtime.interpreter import InterpretedFunction
        return InterpretedFunction(fn)
    return triton.jit(fn)


def _launch(name: str, grid, *args, **meta):
    interpreted = args[0].device.type == "cpu"
    return _kernel(name, interpreted)[grid](*args, **meta)


def _hidden_tiles(hidden: int) -> dict:
    return dict(BLOCK_B=BLOCK_B, BLOCK_H=_tile(hidden, 64), BLOCK_K=_tile(hidden, 64))


def lif_forward(drive, drive0, weight, alpha, beta, s0, syn0, mem0, threshold: float, drop_below: int,
                scale: float, seed: int, store: bool):
    """The LIF loop: (spikes (B, T, H), I_T, U_T, I_{t-1} (B, T, H), U_{t-1} (B, T, H)); the histories
    are empty (0, T, H) unless ``store``. ``drop_below`` = 0: no dropout."""
    batch, steps, hidden = drive.shape
    drive, drive0 = drive.contiguous(), drive0.contiguous()
    out = torch.empty_like(drive)
    history = (batch, steps, hidden) if store else (0, steps, hidden)
    syns, mems = drive.new_empty(history), drive.new_empty(history)
    syn, mem = syn0.detach().clone().contiguous(), mem0.detach().clone().contiguous()
    _launch("lif_forward", (triton.cdiv(batch, BLOCK_B),), drive, drive0, weight.detach().t().contiguous(),
            alpha.detach().contiguous(), beta.detach().contiguous(), s0.detach().contiguous(), syn, mem,
            out, syns, mems, batch, steps, hidden, float(threshold), int(drop_below), float(scale), int(seed),
            STORE=store, DROPOUT=drop_below > 0, **_hidden_tiles(hidden))
    return out, syn, mem, syns, mems


def lif_backward(grad_spikes, weight, alpha, beta, s0, spikes, syns, mems, threshold: float, steepness: float,
                 drop_below: int, scale: float, seed: int):
    """BPTT of :func:`lif_forward`: (grad_drive, grad_drive0, dV, dalpha, dbeta)."""
    batch, steps, hidden = grad_spikes.shape
    grad_drive = torch.empty_like(syns)
    grad_drive[:, steps - 1] = 0.0
    grad_drive0 = torch.empty_like(s0)
    g_syn, g_mem = torch.zeros_like(s0), torch.zeros_like(s0)
    acc_alpha, acc_beta = torch.zeros_like(s0), torch.zeros_like(s0)
    _launch("lif_backward", (triton.cdiv(batch, BLOCK_B),), grad_spikes.contiguous(), weight.detach().contiguous(),
            alpha.detach().contiguous(), beta.detach().contiguous(), syns, mems, g_syn, g_mem, grad_drive,
            grad_drive0, acc_alpha, acc_beta, batch, steps, hidden, float(threshold), float(steepness),
            int(drop_below), float(scale), int(seed), DROPOUT=drop_below > 0, **_hidden_tiles(hidden))
    # dV = sum_t G_I(t)^T sd_{t-1}: G_I(t) is grad_drive[:, t-1] (t >= 1; its last step is 0) and grad_drive0
    grad_weight = (grad_drive.reshape(-1, hidden).t() @ spikes.reshape(-1, hidden)
                   + grad_drive0.t() @ s0.detach())
    return grad_drive, grad_drive0, grad_weight, acc_alpha.sum(dim=0), acc_beta.sum(dim=0)


def filter_forward(current, a, b, syn0, mem0):
    """The leaky readout loop over current (T, B, U): (Y (T, B, U), I_{t-1} (T, B, U), I_T)."""
    steps, batch, units = current.shape
    current = current.contiguous()
    ys, syn_prev = torch.empty_like(current), torch.empty_like(current)
    syn, mem = syn0.detach().clone().contiguous(), mem0.detach().clone().contiguous()
    elements = batch * units
    _launch("filter_forward", (triton.cdiv(elements, BLOCK_ELEMENTS),), current, a.detach().contiguous(),
            b.detach().contiguous(), syn, mem, ys, syn_prev, steps, elements, units, BLOCK=BLOCK_ELEMENTS)
    return ys, syn_prev, syn


def filter_backward(grad_y, a, b, syn_prev, mem_prev):
    """BPTT of :func:`filter_forward`: (grad_current, da, db)."""
    steps, batch, units = grad_y.shape
    grad_current = torch.empty_like(syn_prev)
    elements = batch * units
    part_a, part_b = syn_prev.new_empty(batch, units), syn_prev.new_empty(batch, units)
    _launch("filter_backward", (triton.cdiv(elements, BLOCK_ELEMENTS),), grad_y.contiguous(), a.detach().contiguous(),
            b.detach().contiguous(), syn_prev, mem_prev.contiguous(), grad_current, part_a, part_b, steps,
            elements, units, BLOCK=BLOCK_ELEMENTS)
    return grad_current, part_a.sum(dim=0), part_b.sum(dim=0)
