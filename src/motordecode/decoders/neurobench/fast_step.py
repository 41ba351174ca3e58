"""The NeuroBench baselines' fast step (:mod:`motordecode.decoders.fast`): ANN2D, ANN3D, SNN2 and
SNN3D of :mod:`~motordecode.decoders.neurobench.models` on NumPy state, one compiled kernel per
sample, in float32 (eval mode: dropout is the identity).

Input buffer (ANN2D, ANN3D, SNN3D; :mod:`~motordecode.decoders.neurobench.history`): a ring of the
last W rows R_{p-W+1} .. R_p of the row history R_0 = 0, R_{k+1} = x_k (zero rows before R_0),
p = t + 1 after sample t (kept at most W, all that is read). Sums over rows are taken in float64
and rounded to float32, as the module's running sums.

    ANN2D:  f = R_{p-W+1} + ... + R_p = x_{t-W+1} + ... + x_t; y = 0 while p < W (no layer runs)
    ANN3D, SNN3D: bin i = R_{lo+ri} + ... + R_{min(lo+ri+r-1, p)}, r = W // bins, lo = max(0, p-W+1)
            (a full buffer of 50: x_{t-49} .. x_{t-1}, the current sample not used)

    MLP (ANN2D, ANN3D), BN in eval form a h + c, a = gamma / sqrt(var + eps), c = beta - a mean:
        h1 = BN1(relu(W1 f + b1)),  h2 = BN2(relu(W2 h1 + b2)),  y = W3 h2 + b3
        (ANN3D's f is channel-major, index c bins + i; W1's columns are reordered to bin-major)

Leaky neuron (:func:`~motordecode.decoders.neurobench.leaky.leaky_step`), the reset from the
previous membrane, beta clamped to [0, 1], theta and the spike value g (graded_spikes_factor) as float32:

    r = [U > theta];  subtract: U <- beta U + I - r theta;  zero: U <- beta (1 - r) U + I;
    none: U <- beta U + I;  S = g [U - theta > 0]

    SNN3D: z = LN(bins) over (bins, C) (biased variance); U1 = U2 = U3 = 0 at every sample; for
        i = 0 .. bins - 1: LIF1(W1 z_i + b1) -> S1, LIF2(W2 S1 + b2) -> S2, LIF3(W3 S2 + b3);
        y = (v_x U3[0], v_y U3[1])
    SNN2 (U1, U2 kept across samples): LIF1(W1 x) -> S1, LIF2(W2 S1), y = U2
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit

from motordecode.decoders.base import BufferedDecoder
from motordecode.decoders.fast import FastStep
from motordecode.errors import ConfigError

RESET_CODES = (0, 1, 2)  # subtract, zero, none (leaky.RESETS), as _leaky reads them


# -- the input buffer ------------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _append(ring, counters, x):
    """R_{p+1} = x: the ring's newest row (counters = [ring row of R_p, p]); p is kept at most W."""
    window = ring.shape[0]
    pos = (counters[0] + 1) % window
    for c in range(ring.shape[1]):
        ring[pos, c] = x[c]
    counters[0] = pos
    counters[1] = min(counters[1] + 1, window)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _row_sum(ring, pos, start, stop, acc, out, offset):
    """out[offset:offset + C] = the buffer rows start .. stop - 1 (0 the oldest), summed in float64."""
    window, channels = ring.shape
    for c in range(channels):
        acc[c] = 0.0
    for k in range(start, stop):
        row = (pos + 1 + k) % window
        for c in range(channels):
            acc[c] += ring[row, c]
    for c in range(channels):
        out[offset + c] = np.float32(acc[c])


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _bins(ring, counters, n_bins, bin_rows, acc, out):
    """out (bins C,) bin-major <- the bins of the buffer (rows from R_lo, the last ones clipped at R_p)."""
    window, channels = ring.shape
    first = max(window - 1 - counters[1], 0)  # buffer row of R_lo
    for i in range(n_bins):
        start = first + bin_rows * i
        stop = min(start + bin_rows, window)
        _row_sum(ring, counters[0], min(start, stop), stop, acc, out, i * channels)


# -- layers ----------------------------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _linear(u, w_t, b, out):
    """out = W u + b over the nonzero inputs (w_t: (inputs, outputs)); b of size 0: no bias."""
    for j in range(out.shape[0]):
        out[j] = 0.0
    for i in range(u.shape[0]):
        v = u[i]
        if v != 0.0:
            for j in range(out.shape[0]):
                out[j] += w_t[i, j] * v
    if b.shape[0]:
        for j in range(out.shape[0]):
            out[j] += b[j]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _relu_bn(h, a, c):
    """h <- a relu(h) + c (BatchNorm in eval form)."""
    for j in range(h.shape[0]):
        v = h[j]
        if v < 0.0:
            v = np.float32(0.0)
        h[j] = v * a[j] + c[j]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _leaky(current, mem, spikes, beta, theta, gain, reset):
    """One step of the leaky neurons in place (reset from the previous membrane); spikes = g [U > theta]."""
    one, zero = np.float32(1.0), np.float32(0.0)
    for j in range(mem.shape[0]):
        u = mem[j]
        if reset == 2:
            u = beta * u + current[j]
        else:
            fired = one if u > theta else zero
            if reset == 0:
                u = beta * u + current[j] - fired * theta
            else:
                u = beta * (one - fired) * u + current[j]
        mem[j] = u
        spikes[j] = gain if u - theta > zero else zero


# -- one sample of each model ----------------------------------------------------------------------
@njit(cache=True, nogil=True, error_model="numpy")
def _mlp_step(x, ring, counters, n_bins, bin_rows, acc, f, w1, b1, a1, c1, w2, b2, a2, c2, w3, b3, h1, h2, y):
    """ANN2D (n_bins 0: the summed buffer, y = 0 while p < W) or ANN3D (the bins, bin-major)."""
    _append(ring, counters, x)
    if n_bins == 0:
        if counters[1] < ring.shape[0]:
            for d in range(y.shape[0]):
                y[d] = 0.0
            return
        _row_sum(ring, counters[0], 0, ring.shape[0], acc, f, 0)
    else:
        _bins(ring, counters, n_bins, bin_rows, acc, f)
    _linear(f, w1, b1, h1)
    _relu_bn(h1, a1, c1)
    _linear(h1, w2, b2, h2)
    _relu_bn(h2, a2, c2)
    _linear(h2, w3, b3, y)


@njit(cache=True, nogil=True, error_model="numpy")
def _snn3d_step(x, ring, counters, bin_rows, acc, bins, ln_w, ln_b, ln_eps, w1, b1, cur1, w2, b2, w3, b3,
                beta, theta, gain, reset, m1, s1, m2, s2, cur2, m3, s3, cur3, v, y):
    """The bins (n, C) -> LN -> n steps of three leaky layers from rest -> y = v U3[:2]."""
    _append(ring, counters, x)
    n_bins, channels = bins.shape
    flat = bins.reshape(n_bins * channels)
    _bins(ring, counters, n_bins, bin_rows, acc, flat)
    size = n_bins * channels
    mean = 0.0
    for k in range(size):
        mean += flat[k]
    mean /= size
    var = 0.0
    for k in range(size):
        var += (flat[k] - mean) * (flat[k] - mean)
    rstd = np.float32(1.0 / math.sqrt(var / size + ln_eps))
    mean32 = np.float32(mean)
    hidden1 = cur1.shape[1]
    for i in range(n_bins):  # cur1[i] = W1 LN(bins)_i + b1
        for j in range(hidden1):
            cur1[i, j] = 0.0
        for c in range(channels):
            z = (bins[i, c] - mean32) * rstd * ln_w[i, c] + ln_b[i, c]
            for j in range(hidden1):
                cur1[i, j] += w1[c, j] * z
        for j in range(hidden1):
            cur1[i, j] += b1[j]
    m1[:] = 0.0
    m2[:] = 0.0
    m3[:] = 0.0
    for i in range(n_bins):
        _leaky(cur1[i], m1, s1, beta[0], theta[0], gain[0], reset[0])
        _linear(s1, w2, b2, cur2)
        _leaky(cur2, m2, s2, beta[1], theta[1], gain[1], reset[1])
        _linear(s2, w3, b3, cur3)
        _leaky(cur3, m3, s3, beta[2], theta[2], gain[2], reset[2])
    y[0] = v[0] * m3[0]
    y[1] = v[1] * m3[1]


@njit(cache=True, nogil=True, error_model="numpy")
def _snn2_step(x, w1, cur1, m1, s1, w2, cur2, m2, s2, beta, theta, gain, reset, no_bias, y):
    """LIF1(W1 x) -> LIF2(W2 S1); y = U2 (the membranes carry over)."""
    _linear(x, w1, no_bias, cur1)
    _leaky(cur1, m1, s1, beta[0], theta[0], gain[0], reset[0])
    _linear(s1, w2, no_bias, cur2)
    _leaky(cur2, m2, s2, beta[1], theta[1], gain[1], reset[1])
    for d in range(y.shape[0]):
        y[d] = m2[d]


# -- the models' parameters ------------------------------------------------------------------------
def _arr(t) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


def _check_float32(model) -> None:
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        raise ConfigError(f"the NeuroBench fast step computes in float32; this {type(model).__name__} model's "
                          f"weights are {', '.join(sorted(str(d) for d in dtypes))}. Use the PyTorch stream "
                          "(the torch step) or convert the model to float32.", setting="step")


def _batchnorm(bn) -> tuple[np.ndarray, np.ndarray]:
    """(a, c) of the eval-mode BatchNorm a h + c."""
    mean, var = bn.running_mean.double(), bn.running_var.double()
    weight = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(mean)
    bias = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(mean)
    a = weight / torch.sqrt(var + bn.eps)
    return _arr(a), _arr(bias - a * mean)


def _neurons(layers) -> tuple[np.ndarray, ...]:
    """(beta, theta, g) float32 and the reset codes of leaky layers, as their forward reads them."""
    f32 = lambda t: t.detach().to(torch.float32)  # noqa: E731 - the model's .to(currents.dtype)
    beta = np.array([float(f32(m.beta).clamp(0.0, 1.0)) for m in layers], np.float32)
    theta = np.array([float(f32(m.threshold)) for m in layers], np.float32)
    gain = np.array([float(f32(m.graded_spikes_factor)) for m in layers], np.float32)
    reset = np.array([int(m.reset_mechanism_val) for m in layers], np.int64)
    if not set(reset.tolist()) <= set(RESET_CODES):
        raise ConfigError(f"unknown reset mechanism codes {reset.tolist()} in the leaky layers (0, 1, 2 known).")
    return beta, theta, gain, reset


class _BufferFast(FastStep):
    """The W-row input buffer ring and its row count p."""

    def __init__(self, model, n_outputs: int):
        _check_float32(model)
        history = model.history
        super().__init__(model.config.n_channels, n_outputs)
        self.window, self.n_bins, self.bin_rows = history.window, history.bins, history.bin_rows
        self.ring = np.zeros((self.window, self.n_channels), np.float32)
        self.counters = np.zeros(2, np.int64)
        self.acc = np.zeros(self.n_channels, np.float64)
        self.reset()

    def reset(self) -> None:
        """One zero row R_0 (p = 0); the rows before it are zeros too."""
        self.ring[:] = 0.0
        self.counters[0], self.counters[1] = self.window - 1, 0


class MLPFast(_BufferFast):
    """ANN2D (the summed buffer) or ANN3D (its bins)."""

    def __init__(self, model, summed: bool):
        super().__init__(model, model.fc3.out_features)
        w1 = _arr(model.fc1.weight)  # (32, inputs)
        if summed:
            self.step_bins, n_in = 0, self.n_channels
            w1_t = w1.T
        else:  # input c bins + i -> row i C + c
            self.step_bins, n_in = self.n_bins, self.n_bins * self.n_channels
            w1_t = w1.reshape(len(w1), self.n_channels, self.n_bins).transpose(2, 1, 0).reshape(n_in, len(w1))
        self.f = np.zeros(n_in, np.float32)
        self.layers = (np.ascontiguousarray(w1_t), _arr(model.fc1.bias), *_batchnorm(model.batchnorm1),
                       _arr(model.fc2.weight.t()), _arr(model.fc2.bias), *_batchnorm(model.batchnorm2),
                       _arr(model.fc3.weight.t()), _arr(model.fc3.bias),
                       np.zeros(model.fc1.out_features, np.float32), np.zeros(model.fc2.out_features, np.float32))

    def step(self, x: np.ndarray) -> np.ndarray:
        y = np.empty(self.n_outputs, np.float32)
        _mlp_step(x, self.ring, self.counters, self.step_bins, self.bin_rows, self.acc, self.f, *self.layers, y)
        return y


class SNN3DFast(_BufferFast):
    def __init__(self, model):
        super().__init__(model, 2)
        ln, fc1, fc2, fc3 = model.norm_layer, model.fc1, model.fc2, model.fc3
        shape = (self.n_bins, self.n_channels)
        ln_w = _arr(ln.weight) if ln.weight is not None else np.ones(shape, np.float32)
        ln_b = _arr(ln.bias) if ln.bias is not None else np.zeros(shape, np.float32)
        zeros = lambda n: np.zeros(n, np.float32)  # noqa: E731
        h1, h2, d3 = fc1.out_features, fc2.out_features, fc3.out_features
        if d3 < 2:
            raise ConfigError(f"SNN3D reads two output membranes; this model's fc3 has {d3}.")
        self.bins = np.zeros(shape, np.float32)
        self.layers = (ln_w.reshape(shape), ln_b.reshape(shape), float(ln.eps),
                       _arr(fc1.weight.t()), _arr(fc1.bias), np.zeros((self.n_bins, h1), np.float32),
                       _arr(fc2.weight.t()), _arr(fc2.bias), _arr(fc3.weight.t()), _arr(fc3.bias),
                       *_neurons((model.lif1, model.lif2, model.lif3)),
                       zeros(h1), zeros(h1), zeros(h2), zeros(h2), zeros(h2), zeros(d3), zeros(d3), zeros(d3),
                       np.concatenate([_arr(model.v_x).reshape(-1)[:1], _arr(model.v_y).reshape(-1)[:1]]))

    def step(self, x: np.ndarray) -> np.ndarray:
        y = np.empty(2, np.float32)
        _snn3d_step(x, self.ring, self.counters, self.bin_rows, self.acc, self.bins, *self.layers, y)
        return y


class SNN2Fast(FastStep):
    """The membranes U1 (hidden,) and U2 (D,), kept across samples."""

    def __init__(self, model):
        _check_float32(model)
        super().__init__(model.fc1.in_features, model.fc_out.out_features)
        hidden = model.fc1.out_features
        self.m1, self.m2 = np.zeros(hidden, np.float32), np.zeros(self.n_outputs, np.float32)
        zeros = lambda n: np.zeros(n, np.float32)  # noqa: E731
        self.w1, self.w2 = _arr(model.fc1.weight.t()), _arr(model.fc_out.weight.t())
        self.work = (zeros(hidden), zeros(hidden), zeros(self.n_outputs), zeros(self.n_outputs))  # I1, S1, I2, S2
        self.neurons = _neurons((model.lif1, model.lif_out))
        self.no_bias = zeros(0)

    def reset(self) -> None:
        self.m1[:] = 0.0
        self.m2[:] = 0.0

    def step(self, x: np.ndarray) -> np.ndarray:
        y = np.empty(self.n_outputs, np.float32)
        cur1, s1, cur2, s2 = self.work
        _snn2_step(x, self.w1, cur1, self.m1, s1, self.w2, cur2, self.m2, s2, *self.neurons, self.no_bias, y)
        return y


def fast_step_of(model) -> FastStep:
    """The fast step of a NeuroBench baseline."""
    from motordecode.decoders.neurobench.models import ANN2D, ANN3D, SNN2, SNN3D

    if isinstance(model, ANN2D):
        return MLPFast(model, summed=True)
    if isinstance(model, ANN3D):
        return MLPFast(model, summed=False)
    if isinstance(model, SNN3D):
        return SNN3DFast(model)
    if isinstance(model, SNN2):
        return SNN2Fast(model)
    raise ConfigError(f"no NeuroBench fast step for a {type(model).__name__} model.")


class NeuroBenchDecoder(BufferedDecoder):
    """A NeuroBench baseline's streaming face, with its fast step."""

    def fast_step(self):
        return fast_step_of(self.model)
