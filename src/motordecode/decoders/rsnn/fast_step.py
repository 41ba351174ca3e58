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

float32 models (bigRSNN): the arithmetic of the fused loops of :mod:`lif_kernels`; W x adds the terms
in index order with one fused multiply-add each (:func:`_sum_in_order`) and W_out S in neuron order,
so outputs equal PyTorch's to float32 rounding (spikes identical).

float16 models (tinyRSNN): the definition of :mod:`~motordecode.decoders.rsnn.half_arithmetic`, bit
for bit: exact sums in float64 (:func:`_exact_sum`) rounded to float32 and then to float16
(:func:`round_half`), and single float32 operations whose products are exact, so neither the
summation order nor a fused multiply-add can change a result.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, types
from numba.extending import intrinsic

from motordecode.decoders.fast import FastStep
from motordecode.decoders.rsnn import half_arithmetic
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


@njit(cache=True, nogil=True, error_model="numpy")
def _sum_in_order(rows_t, idx, vals, n, out):
    """out = sum_i rows_t[idx[i]] vals[i], i = 0..n-1 in order, each term added with one fused
    multiply-add in float32 (a float32 model's W x; its outputs equal PyTorch's to float32 rounding).
    Skipped zero terms change no sum."""
    out[:] = 0.0
    for i in range(n):
        row, v = rows_t[idx[i]], vals[i]
        for j in range(out.shape[0]):
            out[j] = _fma32(row[j], v, out[j])


@njit(cache=True, nogil=True, error_model="numpy")
def _exact_sum(rows_t, idx, vals, n, acc):
    """acc = sum_i rows_t[idx[i]] vals[i] in float64: exact for float16 rows and integer values while
    the sums stay below 2^29 (:mod:`half_arithmetic`), so the order does not matter."""
    acc[:] = 0.0
    for i in range(n):
        row, v = rows_t[idx[i]], np.float64(vals[i])
        for j in range(acc.shape[0]):
            acc[j] += np.float64(row[j]) * v


# -- one sample ----------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy")
def _inputs(x, substeps, x_idx, x_val):
    """The nonzero inputs of one float32 network step, x / substeps; returns how many."""
    n = 0
    for c in range(x.shape[0]):
        v = x[c] / np.float32(substeps) if substeps > 1 else x[c]
        if v != 0.0:
            x_idx[n] = c
            x_val[n] = v
            n += 1
    return n


@njit(cache=True, nogil=True, error_model="numpy")
def _counts(x, w_max, x_idx, x_val):
    """The nonzero counts of one sample for the float16 network; returns how many, -1 when a count is
    not an integer, -2 when the sums could leave the exact range (sum |c| max |W| >= 2^29)."""
    n, total = 0, 0.0
    for c in range(x.shape[0]):
        v = x[c]
        if v != np.floor(v):
            return -1
        total += abs(np.float64(v))
        if v != 0.0:
            x_idx[n] = c
            x_val[n] = v
            n += 1
    if total * w_max >= 2.0 ** 29:
        return -2
    return n


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _neurons(current, syn, mem, alpha, beta, gamma, threshold, half, fired, spikes):
    """One LIF update in place: S = [U > theta], I <- c + alpha I, U <- 0 where S else
    lerp(I_prev, U, beta) (float32) or rho(beta U + gamma I_prev) (``half``, every result rounded to
    float16). Writes S to ``fired`` and the spiking neurons, ascending, to ``spikes``; returns how many."""
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
            mem[j] = round_half(beta[j] * u_prev + gamma[j] * i_prev) if half else _lerp(i_prev, u_prev, beta[j])
            fired[j] = 0
    return n


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _readout_units(out_current, out_syn, out_mem, a, b, g, half):
    """The leaky readout in place: J <- W_out S + a J, Y <- lerp(J_prev, Y, b) (float32) or
    rho(b Y + g J_prev) (``half``, every result rounded to float16)."""
    for u in range(out_syn.shape[0]):
        j_prev = out_syn[u]
        if half:
            out_syn[u] = round_half(out_current[u] + a[u] * j_prev)
            out_mem[u] = round_half(b[u] * out_mem[u] + g[u] * j_prev)
        else:
            out_syn[u] = out_current[u] + a[u] * j_prev
            out_mem[u] = _lerp(j_prev, out_mem[u], b[u])


@njit(cache=True, nogil=True, error_model="numpy")
def _sample32(x, substeps, threshold, w_in_t, w_rec_t, w_out_t, alpha, beta, a, b, heads,
              hidden, units, spikes, n_spikes, x_idx, x_val, fired, y):
    """One sample of a float32 RSNN. ``hidden`` (5, H): W x_{t-1} of the last sample, I, U, W x of
    this one, work; ``units`` (3, U): J, Y, work; ``spikes[:n_spikes[0]]``: S_{t-1}, ascending.
    Writes the sub-steps' spikes to ``fired`` (substeps, H) and the velocity to y."""
    n_x = _inputs(x, substeps, x_idx, x_val)
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
        n_spikes[0] = _neurons(current, syn, mem, alpha, beta, beta, threshold, False, fired[sub], spikes)
        _readout_units(out_current, out_syn, out_mem, a, b, b, False)
    hidden[0, :] = drive_new
    _mean_of_heads(out_mem, heads, False, y)


@njit(cache=True, nogil=True, error_model="numpy")
def _sample16(x, substeps, threshold, w_in_t, w_rec_t, w_out_t, alpha, beta, a, b, heads,
              hidden, units, spikes, n_spikes, x_idx, x_val, fired, y, gamma, g, w_max, ones, acc_h, acc_u):
    """One sample of a float16 RSNN (values float16, held as float32), as :mod:`half_arithmetic`
    defines it. ``hidden`` (5, H): D of the last network step, I, U, D of this sample, work; ``units``
    (3, U): J, Y, work; ``ones``: H ones (the spikes' values); ``acc_h``, ``acc_u``: float64 sums.
    Returns 0, or a negative code of :func:`_counts` before anything is changed."""
    n_x = _counts(x, w_max, x_idx, x_val)
    if n_x < 0:
        return n_x
    drive_new, syn, mem, current = hidden[3], hidden[1], hidden[2], hidden[4]
    out_syn, out_mem, out_current = units[0], units[1], units[2]
    _exact_sum(w_in_t, x_idx, x_val, n_x, acc_h)
    size, n_units = syn.shape[0], out_syn.shape[0]
    for j in range(size):
        total = np.float32(acc_h[j])
        drive_new[j] = round_half(total / np.float32(substeps) if substeps > 1 else total)
    for sub in range(substeps):
        drive = hidden[0] if sub == 0 else drive_new
        n = n_spikes[0]
        _exact_sum(w_rec_t, spikes, ones, n, acc_h)
        _exact_sum(w_out_t, spikes, ones, n, acc_u)
        for j in range(size):
            current[j] = round_half(drive[j] + round_half(np.float32(acc_h[j])))
        for u in range(n_units):
            out_current[u] = round_half(np.float32(acc_u[u]))
        n_spikes[0] = _neurons(current, syn, mem, alpha, beta, gamma, threshold, True, fired[sub], spikes)
        _readout_units(out_current, out_syn, out_mem, a, b, g, True)
    hidden[0, :] = drive_new
    _mean_of_heads(out_mem, heads, True, y)
    return 0


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _mean_of_heads(out_mem, heads, half, y):
    """y_d = (sum over heads of Y_{head, d}) / heads: in float32, or (``half``) the exact sum rounded to
    float32, divided in float32 and rounded to float16."""
    n_out = y.shape[0]
    for d in range(n_out):
        if half:
            exact = np.float64(out_mem[d])
            for head in range(1, heads):
                exact += np.float64(out_mem[head * n_out + d])
            total = np.float32(exact)
            y[d] = round_half(total / np.float32(heads) if heads > 1 else total)
        else:
            total = out_mem[d]
            for head in range(1, heads):
                total += out_mem[head * n_out + d]
            y[d] = total / np.float32(heads) if heads > 1 else total


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
        self.half = dtype == torch.float16
        self.substeps, self.heads = int(model.config.substeps), len(readout.heads)
        # float16: the threshold as a float16 number (half_arithmetic)
        self.threshold = float(half_arithmetic.rho(torch.tensor([lif.threshold]))[0]) if self.half else float(lif.threshold)
        hidden, units = lif.n_hidden, readout.fc.weight.shape[0]
        self.weights = (arr(lif.input.weight.t()), arr(lif.recurrent.weight.t()), arr(readout.fc.weight.t()),
                        arr(alpha), arr(beta), arr(a), arr(b))
        self.hidden = np.zeros((5, hidden), _F32)
        self.units = np.zeros((3, units), _F32)
        self.spike_list = np.zeros(hidden, np.int32)
        self.n_spikes = np.zeros(1, np.int64)
        self.x_idx, self.x_val = np.zeros(n_channels, np.int32), np.zeros(n_channels, _F32)
        self.spikes = np.zeros((self.substeps, hidden), np.uint8)
        if self.half:
            self.half_work = (arr(half_arithmetic.complement(beta)), arr(half_arithmetic.complement(b)),
                              float(lif.input.weight.detach().abs().max()) if lif.input.weight.numel() else 0.0,
                              np.ones(hidden, _F32), np.zeros(hidden, np.float64), np.zeros(units, np.float64))
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
            code = _sample16(*args, *self.half_work)
            if code == -1:
                raise ConfigError("a float16 RSNN decodes integer spike counts; this sample's counts are not "
                                  "integers (round or bin them to counts first).")
            if code == -2:
                raise ConfigError("spike counts this large are beyond what the float16 RSNN computes exactly; "
                                  "check the recording's units.")
        else:
            _sample32(*args)
        return y
