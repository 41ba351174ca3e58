"""An independent NumPy reading of the float16 RSNN arithmetic (decoders/rsnn/half_arithmetic.py),
written from its docstring: exact sums with math.fsum, every rounding with NumPy's float16 cast.
The PyTorch model, the fast step, ONNX and the C export must equal it bit for bit."""

from __future__ import annotations

import math

import numpy as np


def rho(v) -> np.ndarray:
    """float32 -> nearest float16 (NumPy's cast rounds to nearest, ties to even), as float32."""
    return np.asarray(v, dtype=np.float32).astype(np.float16).astype(np.float32)


def f32(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).astype(np.float32)


def exact_sums(weight: np.ndarray, values: np.ndarray) -> np.ndarray:
    """sum_j weight[o, j] values[j] per output o, exactly (math.fsum of the exact float64 products),
    then rounded to float32."""
    nz = np.flatnonzero(values)
    return f32([math.fsum((weight[o, nz] * values[nz]).tolist()) for o in range(weight.shape[0])])


def decays(taus, params, dt_ms: float) -> np.ndarray:
    softplus = [p if p > 20 else math.log1p(math.exp(p)) for p in params]
    return rho(np.array([math.exp(-dt_ms / (t * s)) for t, s in zip(taus, softplus)]).astype(np.float16))


def reference_stream(model, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(outputs (T, D) float32, spikes (T k, H)) of a float16 RSNN from the zero state."""
    lif, readout, k = model.lif, model.readout, model.config.substeps
    w = lambda t: t.detach().double().numpy()  # noqa: E731
    w_in, w_rec, w_out = w(lif.input.weight), w(lif.recurrent.weight), w(readout.fc.weight)
    hidden, units, heads, n_out = w_rec.shape[0], w_out.shape[0], len(readout.heads), readout.n_outputs
    alpha = decays([lif.tau_syn_ms] * hidden, w(lif.syn_param), lif.dt_ms)
    beta = decays([lif.tau_mem_ms] * hidden, w(lif.mem_param), lif.dt_ms)
    nominal = [head for head in readout.heads for _ in range(n_out)]
    a = decays([h[0] for h in nominal], w(readout.syn_param), readout.dt_ms)
    b = decays([h[1] for h in nominal], w(readout.mem_param), readout.dt_ms)
    gamma, g = rho(f32(1.0) - beta), rho(f32(1.0) - b)
    theta = rho(lif.threshold)
    s, syn, mem = (np.zeros(hidden, np.float32) for _ in range(3))
    j, y_units = np.zeros(units, np.float32), np.zeros(units, np.float32)
    d_prev = np.zeros(hidden, np.float32)
    outputs, spikes = [], []
    for c in np.asarray(counts, dtype=np.float64):
        d_new = rho(exact_sums(w_in, c) / np.float32(k)) if k > 1 else rho(exact_sums(w_in, c))
        for _ in range(k):
            current = rho(d_prev + rho(exact_sums(w_rec, s)))
            out_current = rho(exact_sums(w_out, s))
            fired = mem > theta
            syn, mem = rho(current + alpha * syn), np.where(fired, np.float32(0), rho(beta * mem + gamma * syn))
            j, y_units = rho(out_current + a * j), rho(b * y_units + g * j)
            s, d_prev = fired.astype(np.float32), d_new
            spikes.append(s)
        per_head = y_units.reshape(heads, n_out).astype(np.float64)
        total = f32([math.fsum(per_head[:, d].tolist()) for d in range(n_out)])
        outputs.append(rho(total / np.float32(heads)) if heads > 1 else rho(total))
    return np.stack(outputs), np.stack(spikes)
