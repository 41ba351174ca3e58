"""The RSNN decoders' fast step (:mod:`motordecode.decoders.fast`): one recording sample, ``substeps``
network steps of x / substeps, on NumPy state in one compiled kernel.

Per network step (:mod:`~motordecode.decoders.rsnn.lif`, :mod:`~motordecode.decoders.rsnn.readout`),
with S binary and a one-step delay on every connection:

    c_t = W x_{t-1} + V S_{t-1},     S_t = H(U_{t-1} - theta),     I_t = c_t + alpha I_{t-1}
    U_t = lerp(I_{t-1}, U_{t-1}, beta) (1 - S_t)
    J_t = W_out S_{t-1} + a J_{t-1},  Y_t = lerp(J_{t-1}, Y_{t-1}, b),   y = mean of the heads' Y

Spikes are binary and sparse, so V S and W_out S add the weight rows (transposed: (inputs, outputs))
of the spiking neurons only, and W x those of the nonzero channels; W x of a sample is computed once
(the sample's sub-steps share it; its first sub-step uses the previous sample's).

The sums follow PyTorch's CPU kernels where their order is known: products of several rows (the
model's W x and W_out S over a stream's steps) add the terms in index order with one fused
multiply-add each (:func:`_sum_in_order`; PyTorch's order up to 512 inputs in float16, 256 in float32),
a product of one row (V S_{t-1}) is float16's vector dot product (:func:`_sum_as_dot`, 8 x 8
float32 lanes and tree reductions). PyTorch itself rounds a product of one row differently from the
same row in a block (a pushed sample at 4 ms, the first step of a call), where sums are not exact.

float32 models (bigRSNN): the arithmetic of the fused loops of :mod:`lif_kernels`; W_out S is summed
in another order than PyTorch's (float32 rounding in the outputs, not in the spikes).

float16 models (tinyRSNN): PyTorch's CPU float16 arithmetic, operation by operation, so outputs and
spikes are identical to the PyTorch stream. Every operation is computed in float32 and rounded once
to float16 (:func:`round_half`); lerp is the vectorised form, one fused multiply-add,
fma(w, end - start, start) for |w| < 0.5, else fma(w - 1, end - start, end). Products of float16
numbers are exact in float32, so a sum is set by its order; with integer counts and binary spikes
the sums are exact in practice, in any order, but the inputs x / substeps of coarse bins are not.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, types
from numba.extending import intrinsic

from motordecode.decoders.fast import FastStep
from motordecode.decoders.rsnn.lif_kernels import _lerp
from motordecode.errors import ConfigError

_F32 = np.float32


# -- float16 arithmetic in float32 --------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def round_half(v):
    """float32 v -> the nearest float16 value, as float32 (round to nearest, ties to even; subnormals;
    |v| >= 65520 -> inf; inf and nan kept). On the bits: the 13 low mantissa bits of a normal float16
    result are rounded off; a subnormal one is the nearest multiple q 2^-24 of |v| = m 2^(e - 150)."""
    bits = np.uint32(np.float32(v).view(np.uint32))
    sign = bits & np.uint32(0x80000000)
    mag = bits & np.uint32(0x7FFFFFFF)
    if mag >= np.uint32(0x7F800000):  # inf, nan
        return np.float32(v)
    if mag >= np.uint32(0x477FF000):  # >= 65520: rounds past 65504
        return np.uint32(sign | np.uint32(0x7F800000)).view(np.float32)
    if mag >= np.uint32(0x38800000):  # >= 2^-14: a normal float16
        mag = (mag + np.uint32(0x0FFF) + ((mag >> np.uint32(13)) & np.uint32(1))) & np.uint32(0xFFFFE000)
        return np.uint32(sign | mag).view(np.float32)
    if mag <= np.uint32(0x33000000):  # |v| <= 2^-25: zero (2^-25 is a tie, to the even 0)
        return np.uint32(sign).view(np.float32)
    exponent = np.int64(mag >> np.uint32(23))                     # 102 .. 112
    mantissa = np.int64((mag & np.uint32(0x7FFFFF)) | np.uint32(0x800000))
    shift = 126 - exponent                                        # |v| / 2^-24 = mantissa / 2^shift
    q = mantissa >> shift
    rest = mantissa & ((np.int64(1) << shift) - 1)
    halfway = np.int64(1) << (shift - 1)
    if rest > halfway or (rest == halfway and (q & 1) == 1):
        q += 1
    r = np.float32(q) * np.float32(2.0 ** -24)                    # exact
    return -r if sign else r


@intrinsic
def _fma32(typingctx, x, y, z):
    """x y + z for float32, rounded once (LLVM's fma)."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _lerp_fused(start, end, weight):
    """PyTorch's vectorised lerp in float32: one rounding of start + w (end - start)."""
    diff = end - start
    if abs(weight) < 0.5:
        return _fma32(weight, diff, start)
    return _fma32(weight - np.float32(1.0), diff, end)


@njit(cache=True, nogil=True, error_model="numpy")
def _sum_in_order(rows_t, idx, vals, n, out):
    """out = sum_i rows_t[idx[i]] vals[i], i = 0..n-1 in order, each term added with one fused
    multiply-add in float32: the order of PyTorch's CPU matrix products of several rows with up to
    512 inputs in float16, 256 in float32. Skipped zero terms change no sum."""
    out[:] = 0.0
    for i in range(n):
        row, v = rows_t[idx[i]], vals[i]
        for j in range(out.shape[0]):
            out[j] = _fma32(row[j], v, out[j])


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _lane_tree(slots, base, j):
    """Lane 0 of an 8-lane float32 register (slots[base + l, j]) summed by halves: ((l0 + l4) +
    (l2 + l6)) + ((l1 + l5) + (l3 + l7))."""
    return (((slots[base, j] + slots[base + 4, j]) + (slots[base + 2, j] + slots[base + 6, j]))
            + ((slots[base + 1, j] + slots[base + 5, j]) + (slots[base + 3, j] + slots[base + 7, j])))


@njit(cache=True, nogil=True, error_model="numpy")
def _sum_as_dot(rows_t, idx, n, slots, out):
    """out = sum of rows_t[idx[i]] (binary inputs, idx ascending) in the order of PyTorch's float16
    dot product (one row times a matrix) for a length K = rows_t.shape[0]: element k < K64 = K - K mod
    64 accumulates into register k mod 64 // 8, lane k mod 8, the 8 registers are summed by halves
    (r + r+4, r + r+2, r + r+1) and then the lanes; k in [K64, K16) (K16 = K - K mod 16) into lane
    (k - K64) mod 8 of one more register, lane-summed and added; the last k in order. ``slots``:
    (72, N) work."""
    k64 = rows_t.shape[0] - rows_t.shape[0] % 64
    k16 = rows_t.shape[0] - rows_t.shape[0] % 16
    width = out.shape[0]
    slots[:] = 0.0
    first_scalar = n
    for i in range(n):
        k = idx[i]
        if k >= k16:
            first_scalar = i
            break
        slot = k % 64 if k < k64 else 64 + (k - k64) % 8
        row = rows_t[k]
        for j in range(width):
            slots[slot, j] += row[j]
    for half in (32, 16, 8):
        for s in range(half):
            for j in range(width):
                slots[s, j] += slots[s + half, j]
    for j in range(width):
        out[j] = _lane_tree(slots, 0, j) + _lane_tree(slots, 64, j)
    for i in range(first_scalar, n):
        row = rows_t[idx[i]]
        for j in range(width):
            out[j] += row[j]


# -- one sample ----------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy")
def _inputs(x, substeps, half, x_idx, x_val):
    """The nonzero inputs of one network step, x / substeps (rounded to float16 when ``half``); returns
    how many."""
    n = 0
    for c in range(x.shape[0]):
        v = x[c] / np.float32(substeps) if substeps > 1 else x[c]
        if half:
            v = round_half(v)
        if v != 0.0:
            x_idx[n] = c
            x_val[n] = v
            n += 1
    return n


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _neurons(current, syn, mem, alpha, beta, threshold, half, fired, spikes):
    """One LIF update in place: S = [U > theta], I <- c + alpha I, U <- 0 where S else
    lerp(I_prev, U, beta); every result rounded to float16 when ``half`` (lerp then fused, as
    PyTorch's vectorised float16 kernel). Writes S to ``fired`` and the spiking neurons, ascending,
    to ``spikes``; returns how many."""
    n = 0
    for j in range(syn.shape[0]):
        i_prev, u_prev = syn[j], mem[j]
        syn[j] = round_half(current[j] + alpha[j] * i_prev) if half else current[j] + alpha[j] * i_prev
        if u_prev > threshold:
            mem[j] = 0.0
            fired[j] = 1
            spikes[n] = j
            n += 1
        else:
            mem[j] = round_half(_lerp_fused(i_prev, u_prev, beta[j])) if half else _lerp(i_prev, u_prev, beta[j])
            fired[j] = 0
    return n


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _readout_units(out_current, out_syn, out_mem, a, b, half):
    """The leaky readout in place: J <- W_out S + a J, Y <- lerp(J_prev, Y, b) (float16 as above when ``half``)."""
    for u in range(out_syn.shape[0]):
        j_prev = out_syn[u]
        if half:
            out_syn[u] = round_half(round_half(out_current[u]) + a[u] * j_prev)
            out_mem[u] = round_half(_lerp_fused(j_prev, out_mem[u], b[u]))
        else:
            out_syn[u] = out_current[u] + a[u] * j_prev
            out_mem[u] = _lerp(j_prev, out_mem[u], b[u])


@njit(cache=True, nogil=True, error_model="numpy")
def _sample32(x, substeps, threshold, w_in_t, w_rec_t, w_out_t, alpha, beta, a, b, heads,
              hidden, units, spikes, n_spikes, x_idx, x_val, fired, y):
    """One sample of a float32 RSNN. ``hidden`` (5, H): W x_{t-1} of the last sample, I, U, W x of
    this one, work; ``units`` (3, U): J, Y, work; ``spikes[:n_spikes[0]]``: S_{t-1}, ascending.
    Writes the sub-steps' spikes to ``fired`` (substeps, H) and the velocity to y."""
    n_x = _inputs(x, substeps, False, x_idx, x_val)
    drive_new, syn, mem, current = hidden[3], hidden[1], hidden[2], hidden[4]
    out_syn, out_mem, out_current = units[0], units[1], units[2]
    _sum_in_order(w_in_t, x_idx, x_val, n_x, drive_new)
    size, n_units = syn.shape[0], out_syn.shape[0]
    for sub in range(substeps):
        drive = hidden[0] if sub == 0 else drive_new
        n = n_spikes[0]
        for j in range(size):
            current[j] = drive[j]
        for u in range(n_units):
            out_current[u] = 0.0
        for i in range(n):  # V S and W_out S: one row per spike, in neuron order
            row, out_row = w_rec_t[spikes[i]], w_out_t[spikes[i]]
            for j in range(size):
                current[j] += row[j]
            for u in range(n_units):
                out_current[u] += out_row[u]
        n_spikes[0] = _neurons(current, syn, mem, alpha, beta, threshold, False, fired[sub], spikes)
        _readout_units(out_current, out_syn, out_mem, a, b, False)
    hidden[0, :] = drive_new
    _mean_of_heads(out_mem, heads, False, y)


@njit(cache=True, nogil=True, error_model="numpy")
def _sample16(x, substeps, threshold, w_in_t, w_rec_t, w_out_t, alpha, beta, a, b, heads,
              hidden, units, spikes, n_spikes, x_idx, x_val, fired, y, ones, slots):
    """One sample of a float16 RSNN (values float16, held as float32): as :func:`_sample32` with
    every operation rounded to float16. ``hidden`` (6, H): also V S; ``ones``: H ones (the spikes'
    values); ``slots`` (72, H): work of :func:`_sum_as_dot`."""
    n_x = _inputs(x, substeps, True, x_idx, x_val)
    drive_new, syn, mem, current, recurrent = hidden[3], hidden[1], hidden[2], hidden[4], hidden[5]
    out_syn, out_mem, out_current = units[0], units[1], units[2]
    _sum_in_order(w_in_t, x_idx, x_val, n_x, drive_new)
    size = syn.shape[0]
    for j in range(size):
        drive_new[j] = round_half(drive_new[j])
    for sub in range(substeps):
        drive = hidden[0] if sub == 0 else drive_new
        n = n_spikes[0]
        _sum_as_dot(w_rec_t, spikes, n, slots, recurrent)
        _sum_in_order(w_out_t, spikes, ones, n, out_current)
        for j in range(size):
            current[j] = round_half(drive[j] + round_half(recurrent[j]))
        n_spikes[0] = _neurons(current, syn, mem, alpha, beta, threshold, True, fired[sub], spikes)
        _readout_units(out_current, out_syn, out_mem, a, b, True)
    hidden[0, :] = drive_new
    _mean_of_heads(out_mem, heads, True, y)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _mean_of_heads(out_mem, heads, half, y):
    """y_d = (sum over heads of Y_{head, d}) / heads in float32 (rounded to float16 when ``half``)."""
    n_out = y.shape[0]
    for d in range(n_out):
        total = out_mem[d]
        for head in range(1, heads):
            total += out_mem[head * n_out + d]
        v = total / np.float32(heads) if heads > 1 else total
        y[d] = round_half(v) if half else v


# -- the step ------------------------------------------------------------------------------------------
class RSNNFast(FastStep):
    """The RSNN's state (x's drive W x_{t-1}, S, I, U, J, Y) in NumPy arrays. ``spikes``: the hidden
    spikes of the last sample's sub-steps, (substeps, H) 0/1."""

    def __init__(self, model, n_channels: int):
        lif, readout = model.lif, model.readout
        dtype = lif.input.weight.dtype
        if dtype not in (torch.float16, torch.float32):
            raise ConfigError(f"the RSNN fast step computes in float32 or emulated float16; this model is {dtype}.")
        if lif.input.weight.shape[1] != n_channels:
            raise ConfigError(f"the RSNN takes {lif.input.weight.shape[1]} channels, not {n_channels}.")
        super().__init__(n_channels, readout.n_outputs)
        arr = lambda t: np.ascontiguousarray(t.detach().cpu().float().numpy(), dtype=_F32)  # noqa: E731
        with torch.no_grad():
            (alpha, beta), (a, b) = lif.decays(), readout.decays()
            threshold = torch.tensor(float(lif.threshold), dtype=dtype)  # compared in the model's dtype
        self.half = dtype == torch.float16
        self.substeps, self.heads = int(model.config.substeps), len(readout.heads)
        self.threshold = float(threshold) if self.half else float(lif.threshold)
        hidden, units = lif.n_hidden, readout.fc.weight.shape[0]
        self.weights = (arr(lif.input.weight.t()), arr(lif.recurrent.weight.t()), arr(readout.fc.weight.t()),
                        arr(alpha), arr(beta), arr(a), arr(b))
        self.hidden = np.zeros((6 if self.half else 5, hidden), _F32)
        self.units = np.zeros((3, units), _F32)
        self.spike_list = np.zeros(hidden, np.int32)
        self.n_spikes = np.zeros(1, np.int64)
        self.x_idx, self.x_val = np.zeros(n_channels, np.int32), np.zeros(n_channels, _F32)
        self.spikes = np.zeros((self.substeps, hidden), np.uint8)
        self.half_work = (np.ones(hidden, _F32), np.zeros((72, hidden), _F32))
        self.reset()

    def reset(self) -> None:
        self.hidden[:] = 0.0
        self.units[:] = 0.0
        self.n_spikes[0] = 0
        self.spikes[:] = 0

    def step(self, x: np.ndarray) -> np.ndarray:
        y = np.empty(self.n_outputs, _F32)
        args = (x, self.substeps, self.threshold, *self.weights, self.heads, self.hidden, self.units,
                self.spike_list, self.n_spikes, self.x_idx, self.x_val, self.spikes, y)
        if self.half:
            _sample16(*args, *self.half_work)
        else:
            _sample32(*args)
        return y
