"""The delta GRU's truncated-BPTT chunk as fused CPU loops (numba): forward pass, loss and
hand-written backward pass, one compiled pass per stream instead of ~40 tensor dispatches per step.

The forward pass is :class:`~motordecode.decoders.delta.model.DeltaGRUNet`'s (equations there and in
:mod:`~motordecode.decoders.delta.cell`), per stream, with k = [|d| > Theta] the threshold masks:

    Dx_t = kx_t (x_t - x^_{t-1}),   x^_t = x^_{t-1} + Dx_t,   u_t = W_u x^_t + b_u
    Du_t = ku_t (u_t - u^_{t-1}),   u^_t = u^_{t-1} + Du_t
    Dh_t = kh_t (h_{t-1} - h^_{t-1}),   h^_t = h^_{t-1} + Dh_t
    M_t = M_{t-1} + [W_ir Du + W_hr Dh;  W_iz Du + W_hz Dh;  W_in Du;  W_hn Dh]
    r, z = sigma(M_r + b_r), sigma(M_z + b_z);   a = M_nh + b_hn;   n = tanh(M_nx + b_in + r a)
    h_t = (1 - z) n + z h_{t-1};   y_t = s (W_y h_t + b_y) + mu

and the trainer's loss L = mean (y - v)^2 + lambda (mean |Dx| + mean |Du| + mean |Dh|).

The masks are constants of the gradient, as autograd treats them (``d * (|d| > Theta)``
differentiates to ``g * k``), and |D| differentiates to sign(D) (0 where the mask is 0). Backward,
for t = T-1..0, with G_h, G_M, G_u^, G_h^ the gradients reaching h_t, M_t, u^_t, h^_t from the later
steps (zero after the chunk's last step: the carried state is detached), N_y = B T D, N_h = B T H:

    gy = s (dL/dy_t + 2 (y_t - v_t) / N_y)            dW_y += gy h_t^T,  db_y += gy
    g_h = G_h + W_y^T gy
    g_n = g_h (1 - z) (1 - n^2),  g_r = g_n a r (1 - r),  g_z = g_h (h_{t-1} - n) z (1 - z)
    G_M += [g_r; g_z; g_n; r g_n]                     db_r, db_z, db_in, db_hn += g_r, g_z, g_n, r g_n
    e_u = ku (W_i^T [G_Mr; G_Mz; G_Mnx] + lambda sign(Du) / N_h + G_u^),   G_u^ <- G_u^ - e_u
    e_h = kh (W_h^T [G_Mr; G_Mz; G_Mnh] + lambda sign(Dh) / N_h + G_h^),   G_h^ <- G_h^ - e_h
    dW_i += [G_Mr; G_Mz; G_Mnx] Du^T,  dW_h += [G_Mr; G_Mz; G_Mnh] Dh^T
    dW_u += e_u x^_t^T,  db_u += e_u,  G_h <- z g_h + e_h

(b_r = b_ir + b_hr and b_z = b_iz + b_hz: both biases get db_r, db_z). The x^ chain takes no
gradient (the inputs are data); the penalty on Dx adds to the loss only.

Every stream runs its whole chunk in turn, the streams in parallel (``prange``); each stream's sums
run in a fixed order, its parameter gradients are summed in float64 and the streams' sums are added
in stream order, with no BLAS and no PyTorch kernel (exp and tanh from the C math library), so the
numbers do not depend on PyTorch's choice of vector kernels or on the number of threads. Only the nonzero deltas cost products in the forward pass
(weights transposed: one row per delta) and in the weight gradients.

Used when every tensor is on the CPU in float32 or float64 (``numba_tensors.usable``); elsewhere
(CUDA) :func:`chunk_loss` and :func:`predict` run the model's PyTorch loop, which autograd
differentiates. ``tests/test_delta_kernels.py`` holds the two to each other.
"""

from __future__ import annotations

import contextlib
import math
import threading

import numpy as np
import torch
from numba import njit, prange

from motordecode.decoders.delta.cell import DeltaState
from motordecode.decoders.delta.model import DeltaNetState
from motordecode.decoders.numba_tensors import arrays, torch_threads_kept, usable

_choice = threading.local()


@contextlib.contextmanager
def torch_loop():
    """In this thread, within the block, :func:`chunk_loss` and :func:`predict` run the PyTorch loop
    on the CPU too (the tests and the benchmark compare the two paths)."""
    previous = getattr(_choice, "torch", False)
    _choice.torch = True
    try:
        yield
    finally:
        _choice.torch = previous


def _fused(model, *tensors: torch.Tensor) -> bool:
    """The fused loops apply: CPU float32/float64 throughout, and no gradient asked of the data or the
    carried state (the loops give gradients to the parameters only)."""
    return (not getattr(_choice, "torch", False) and not any(t.requires_grad for t in tensors)
            and usable(*tensors, *model.parameters(), model.y_scale, model.y_shift))


@njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _sigmoid(v, one):
    return one / (one + math.exp(-v))


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def chunk_forward(x, labels, xr0, ur0, h0, hr0, m0, w_u_t, b_u, w_ih_t, w_hh_t, b_rz, b_in, b_hn, w_y, b_y,
                  y_scale, y_shift, theta_x, theta_u, theta_h, one, ys, xr_end, ur_end, h_end, hr_end, m_end,
                  xrs, hs, rs, zs, ns, ans, dus, dhs, sums):
    """The forward pass over x (B, T, C) from the state (x^, u^, h, h^, M). Writes y (B, T, D), the
    final state, per stream ``sums`` (B, 4) float64 = (sum (y - v)^2, sum |Dx|, sum |Du|, sum |Dh|)
    (the first 0 when ``labels`` has no rows) and, when ``hs`` has B rows, what the backward pass
    reads: x^_t (B, T, C), h_t, r, z, n, a = M_nh + b_hn, Du_t, Dh_t (B, T, H)."""
    batch, steps, channels = x.shape
    hidden = h0.shape[1]
    outputs = ys.shape[2]
    store = hs.shape[0] == batch
    scored = labels.shape[0] == batch
    zero = one - one
    for b in prange(batch):
        xr = xr0[b].copy()
        ur = ur0[b].copy()
        h = h0[b].copy()
        hr = hr0[b].copy()
        m = m0[b].copy()
        u = np.zeros_like(ur)
        du = np.zeros_like(ur)
        dh = np.zeros_like(ur)
        gi = np.zeros(3 * hidden, dtype=ur.dtype)
        gh = np.zeros_like(gi)
        squares, sum_x, sum_u, sum_h = 0.0, 0.0, 0.0, 0.0
        for t in range(steps):
            changed = t == 0
            for c in range(channels):
                d = x[b, t, c] - xr[c]
                if abs(d) > theta_x:
                    xr[c] = xr[c] + d
                    sum_x += abs(d)
                    changed = True
            if changed:  # u = W_u x^ + b_u (unchanged x^: the same u)
                for j in range(hidden):
                    u[j] = zero
                for c in range(channels):
                    value = xr[c]
                    for j in range(hidden):
                        u[j] += w_u_t[c, j] * value
                for j in range(hidden):
                    u[j] = u[j] + b_u[j]
            for j in range(3 * hidden):
                gi[j] = zero
                gh[j] = zero
            for i in range(hidden):
                d = u[i] - ur[i]
                if abs(d) > theta_u:
                    ur[i] = ur[i] + d
                    du[i] = d
                    sum_u += abs(d)
                    for j in range(3 * hidden):
                        gi[j] += w_ih_t[i, j] * d
                else:
                    du[i] = zero
            for i in range(hidden):
                d = h[i] - hr[i]
                if abs(d) > theta_h:
                    hr[i] = hr[i] + d
                    dh[i] = d
                    sum_h += abs(d)
                    for j in range(3 * hidden):
                        gh[j] += w_hh_t[i, j] * d
                else:
                    dh[i] = zero
            for j in range(2 * hidden):
                m[j] = m[j] + (gi[j] + gh[j])
            for j in range(hidden):
                m[2 * hidden + j] = m[2 * hidden + j] + gi[2 * hidden + j]
                m[3 * hidden + j] = m[3 * hidden + j] + gh[2 * hidden + j]
            for j in range(hidden):
                r = _sigmoid(m[j] + b_rz[j], one)
                z = _sigmoid(m[hidden + j] + b_rz[hidden + j], one)
                a = m[3 * hidden + j] + b_hn[j]
                n = math.tanh(m[2 * hidden + j] + b_in[j] + r * a)
                h[j] = (one - z) * n + z * h[j]
                if store:
                    rs[b, t, j] = r
                    zs[b, t, j] = z
                    ns[b, t, j] = n
                    ans[b, t, j] = a
            if store:
                for c in range(channels):
                    xrs[b, t, c] = xr[c]
                for j in range(hidden):
                    hs[b, t, j] = h[j]
                    dus[b, t, j] = du[j]
                    dhs[b, t, j] = dh[j]
            for k in range(outputs):
                acc = zero
                for j in range(hidden):
                    acc += w_y[k, j] * h[j]
                y = (acc + b_y[k]) * y_scale[k] + y_shift[k]
                ys[b, t, k] = y
                if scored:
                    e = y - labels[b, t, k]
                    squares += e * e
        for c in range(channels):
            xr_end[b, c] = xr[c]
        for j in range(hidden):
            ur_end[b, j] = ur[j]
            h_end[b, j] = h[j]
            hr_end[b, j] = hr[j]
        for j in range(4 * hidden):
            m_end[b, j] = m[j]
        sums[b, 0] = squares
        sums[b, 1] = sum_x
        sums[b, 2] = sum_u
        sums[b, 3] = sum_h


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def chunk_backward(grad_y, coef_y, coef_delta, one, labels, ys, y_scale, h0, w_ih, w_hh, w_y, xrs, hs, rs, zs, ns, ans,
                   dus, dhs, part_w_u, part_b_u, part_w_ih_t, part_w_hh_t, part_b_gates, part_w_y, part_b_y):
    """BPTT of :func:`chunk_forward` (equations in the module docstring). With g_L the gradient
    reaching L, ``coef_y`` = 2 g_L / N_y (``labels`` without rows: no loss term), ``coef_delta`` =
    lambda g_L / N_h, ``grad_y`` the gradient reaching y itself (no rows: none). Adds each stream's
    parameter gradients to its row of the float64 ``part_*`` arrays: dW_u (H, C), db_u, dW_i^T and
    dW_h^T (H, 3H), (db_r, db_z, db_in, db_hn) (4H), dW_y (D, H), db_y."""
    batch, steps, hidden = hs.shape
    channels = xrs.shape[2]
    outputs = ys.shape[2]
    given = grad_y.shape[0] == batch
    scored = labels.shape[0] == batch
    zero = one - one
    for b in prange(batch):
        acc_w_u, acc_b_u, acc_w_ih_t, acc_w_hh_t = part_w_u[b], part_b_u[b], part_w_ih_t[b], part_w_hh_t[b]
        acc_gates, acc_w_y, acc_b_y = part_b_gates[b], part_w_y[b], part_b_y[b]
        g_h = np.zeros(hidden, dtype=hs.dtype)
        g_m = np.zeros(4 * hidden, dtype=hs.dtype)
        g_ur = np.zeros_like(g_h)
        g_hr = np.zeros_like(g_h)
        next_h = np.zeros_like(g_h)
        e_u = np.zeros_like(g_h)
        g_du = np.zeros_like(g_h)
        g_dh = np.zeros_like(g_h)
        for t in range(steps - 1, -1, -1):
            for k in range(outputs):
                gy = coef_y * (ys[b, t, k] - labels[b, t, k]) if scored else zero
                if given:
                    gy = gy + grad_y[b, t, k]
                gy = gy * y_scale[k]
                acc_b_y[k] += gy
                for j in range(hidden):
                    acc_w_y[k, j] += gy * hs[b, t, j]
                for j in range(hidden):
                    g_h[j] += w_y[k, j] * gy
            for j in range(hidden):
                previous = hs[b, t - 1, j] if t > 0 else h0[b, j]
                r, z, n = rs[b, t, j], zs[b, t, j], ns[b, t, j]
                g_n = g_h[j] * (one - z) * (one - n * n)
                g_r = g_n * ans[b, t, j] * (r * (one - r))
                g_z = g_h[j] * (previous - n) * (z * (one - z))
                next_h[j] = g_h[j] * z
                acc_gates[j] += g_r
                acc_gates[hidden + j] += g_z
                acc_gates[2 * hidden + j] += g_n
                acc_gates[3 * hidden + j] += r * g_n
                g_m[j] += g_r
                g_m[hidden + j] += g_z
                g_m[2 * hidden + j] += g_n
                g_m[3 * hidden + j] += r * g_n
            for i in range(hidden):
                g_du[i] = zero
                g_dh[i] = zero
            for j in range(3 * hidden):  # W_i^T [G_Mr; G_Mz; G_Mnx] and W_h^T [G_Mr; G_Mz; G_Mnh], rows in order
                g_in = g_m[j]
                g_hid = g_m[j] if j < 2 * hidden else g_m[j + hidden]
                for i in range(hidden):
                    g_du[i] += w_ih[j, i] * g_in
                for i in range(hidden):
                    g_dh[i] += w_hh[j, i] * g_hid
            for i in range(hidden):
                d = dus[b, t, i]
                if d != zero:
                    e = g_du[i] + coef_delta * (one if d > zero else -one) + g_ur[i]
                    g_ur[i] = g_ur[i] - e
                    e_u[i] = e
                    for j in range(3 * hidden):
                        acc_w_ih_t[i, j] += d * g_m[j]
                else:
                    e_u[i] = zero
            for i in range(hidden):
                d = dhs[b, t, i]
                if d != zero:
                    e = g_dh[i] + coef_delta * (one if d > zero else -one) + g_hr[i]
                    g_hr[i] = g_hr[i] - e
                    next_h[i] += e
                    for j in range(2 * hidden):
                        acc_w_hh_t[i, j] += d * g_m[j]
                    for j in range(hidden):
                        acc_w_hh_t[i, 2 * hidden + j] += d * g_m[3 * hidden + j]
            for i in range(hidden):
                e = e_u[i]
                if e != zero:
                    acc_b_u[i] += e
                    for c in range(channels):
                        acc_w_u[i, c] += e * xrs[b, t, c]
            for j in range(hidden):
                g_h[j] = next_h[j]


def _stream_sum(part: np.ndarray) -> np.ndarray:
    """The streams' partial sums (B, ...) added in stream order."""
    total = part[0].copy()
    for row in part[1:]:
        total += row
    return total


def _scalar(like: torch.Tensor, value: float):
    return np.dtype(str(like.dtype).removeprefix("torch.")).type(value)


def _run_forward(x, labels, penalty, thresholds, xr0, ur0, h0, hr0, m0, w_u, b_u, w_ih, w_hh, b_ih, b_hh, w_y, b_y,
                 y_scale, y_shift, keep: bool):
    """:func:`chunk_forward` on tensors: (y, L, the final state, what the backward pass reads (``keep``)
    or empty arrays)."""
    batch, steps, channels = x.shape
    hidden, outputs = h0.shape[1], w_y.shape[0]
    rows = batch if keep else 0
    history = [x.new_empty((rows, steps, n)) for n in (channels,) + (hidden,) * 7]
    ys = x.new_empty((batch, steps, outputs))
    ends = [torch.empty_like(t) for t in (xr0, ur0, h0, hr0, m0)]
    sums = np.zeros((batch, 4))
    theta = tuple(_scalar(x, value) for value in (*thresholds, 1.0))
    b_rz = b_ih[:2 * hidden] + b_hh[:2 * hidden]
    with torch_threads_kept():
        chunk_forward(*arrays(x, labels, xr0, ur0, h0, hr0, m0, w_u.t(), b_u, w_ih.t(), w_hh.t(), b_rz,
                              b_ih[2 * hidden:], b_hh[2 * hidden:], w_y, b_y, y_scale, y_shift), *theta,
                      ys.numpy(), *(t.numpy() for t in ends), *(t.numpy() for t in history), sums)
    total = _stream_sum(sums)
    loss = total[0] / ys.numel()
    if penalty > 0:
        loss = loss + penalty * (total[1] / x.numel() + (total[2] + total[3]) / (batch * steps * hidden))
    return ys, torch.tensor(loss, dtype=x.dtype), ends, history


class DeltaChunk(torch.autograd.Function):
    """(x, v, state, parameters) -> (y, L, final state) by :func:`chunk_forward`, differentiated by
    :func:`chunk_backward` (y and L both take gradients; the state none)."""

    @staticmethod
    def forward(ctx, x, labels, penalty, thresholds, xr0, ur0, h0, hr0, m0, w_u, b_u, w_ih, w_hh, b_ih, b_hh, w_y,
                b_y, y_scale, y_shift):
        ys, loss, ends, history = _run_forward(x, labels, penalty, thresholds, xr0, ur0, h0, hr0, m0, w_u, b_u, w_ih,
                                               w_hh, b_ih, b_hh, w_y, b_y, y_scale, y_shift, keep=True)
        ctx.penalty, ctx.sizes = penalty, (ys.numel(), h0.shape[1] * x.shape[0] * x.shape[1])
        ctx.save_for_backward(labels, ys, y_scale, h0, w_ih, w_hh, w_y, *history)
        ctx.mark_non_differentiable(*ends)
        ctx.set_materialize_grads(False)
        return (ys, loss, *ends)

    @staticmethod
    def backward(ctx, grad_y, grad_loss, *_grad_state):
        labels, ys, y_scale, h0, w_ih, w_hh, w_y, xrs, *history = ctx.saved_tensors
        batch, steps, channels = xrs.shape
        hidden, outputs = h0.shape[1], w_y.shape[0]
        scale = 0.0 if grad_loss is None else float(grad_loss)
        coef_y, coef_delta = (_scalar(ys, scale * 2.0 / ctx.sizes[0]),
                              _scalar(ys, scale * ctx.penalty / ctx.sizes[1] if ctx.penalty > 0 else 0.0))
        grad_y = ys.new_empty((0, steps, outputs)) if grad_y is None else grad_y
        parts = [np.zeros((batch, *shape)) for shape in ((hidden, channels), (hidden,), (hidden, 3 * hidden),
                                                         (hidden, 3 * hidden), (4 * hidden,), (outputs, hidden),
                                                         (outputs,))]
        with torch_threads_kept():
            chunk_backward(*arrays(grad_y), coef_y, coef_delta, _scalar(ys, 1.0),
                           *arrays(labels, ys, y_scale, h0, w_ih, w_hh, w_y, xrs, *history), *parts)
        w_u, b_u, w_ih_t, w_hh_t, gates, g_w_y, g_b_y = (torch.from_numpy(_stream_sum(p)).to(ys.dtype) for p in parts)
        r_z = gates[:2 * hidden]
        grad_b_ih, grad_b_hh = torch.cat([r_z, gates[2 * hidden:3 * hidden]]), torch.cat([r_z, gates[3 * hidden:]])
        return (None, None, None, None, None, None, None, None, None, w_u, b_u, w_ih_t.t().contiguous(),
                w_hh_t.t().contiguous(), grad_b_ih, grad_b_hh, g_w_y, g_b_y, None, None)


def _state_tensors(model, state: DeltaNetState | None, batch: int):
    state = model.initial_state(batch) if state is None else state
    cell = state.cell
    return state.x_ref, cell.x_ref, cell.h, cell.h_ref, cell.m


def _thresholds(model) -> tuple[float, float, float]:
    return float(model.fc_in.theta), float(model.cell.theta_x), float(model.cell.theta_h)


def _parameters(model):
    cell = model.cell
    return (model.fc_in.weight, model.fc_in.bias, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh,
            model.fc_out.weight, model.fc_out.bias, model.y_scale, model.y_shift)


def _net_state(xr, ur, h, hr, m) -> DeltaNetState:
    return DeltaNetState(xr, DeltaState(h, ur, hr, m))


def chunk_loss(model, x: torch.Tensor, labels: torch.Tensor, state: DeltaNetState | None, delta_penalty: float):
    """One truncated-BPTT chunk: x (B, T, C), labels v (B, T, D), the carried state (None: zeros) ->
    (y, L, the state after the chunk), L = mean (y - v)^2 + delta_penalty (mean |Dx| + mean |Du| +
    mean |Dh|); ``L.backward()`` gives every parameter's gradient. The fused loops on the CPU in
    float32/float64, else the model's PyTorch loop."""
    if not _fused(model, x, labels, *([] if state is None else _state_tensors(model, state, len(x)))):
        pred, state, deltas = model(x, state)
        loss = torch.mean((pred - labels) ** 2)
        if delta_penalty > 0:
            loss = loss + delta_penalty * sum(d.abs().mean() for d in deltas)
        return pred, loss, state
    start = _state_tensors(model, state, len(x))
    ys, loss, *end = DeltaChunk.apply(x, labels, float(delta_penalty), _thresholds(model), *start,
                                      *_parameters(model))
    return ys, loss, _net_state(*end)


def predict(model, x: torch.Tensor) -> torch.Tensor:
    """y (B, T, D) of x (B, T, C) streamed from the zero state, without gradients."""
    with torch.no_grad():
        if not _fused(model, x):
            return model(x)[0]
        empty = x.new_empty((0, x.shape[1], model.config.n_outputs))
        return _run_forward(x, empty, 0.0, _thresholds(model), *_state_tensors(model, None, len(x)),
                            *_parameters(model), keep=False)[0]
