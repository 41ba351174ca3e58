"""Each decoder's one-sample step written in traceable torch operations, for the ONNX export.

``step_module(run, mode) -> (module, {state name: initial tensor})``; the module maps
(x (1, C), *state) -> (y (1, D), *next state). State tensors:

    GRU windowed:    recent (k w - 1, C)                  the last samples of the input window
    GRU stateful:    recent (w - 1, C), h (s, H)          h[0] is the phase this sample advances;
                                                          the phases rotate, h_out = [h[1:], h_new]
    delta GRU:       recent (w - 1, C), x_ref (C), u_ref (H), h (H), h_ref (H), m (4H)
    Wiener:          recent (L w - 1, C)                  L bins of w samples
    Kalman:          recent (w - 1, C), s (states, float64), steps (1,) int64   (transient gains first)
    SNN2:            mem1 (H), mem_out (D)                membranes
    ANN2D, ANN3D, SNN3D: rows (W, C), p (1,) int64        NeuroBench's buffer R_{p-W+1} .. R_p (zero rows
                                                          before R_0) and the row count p
    RSNN:            x_prev (C), s, syn, mem (H), out_syn, out_mem (heads D), float32 (a float16 model's
                     values rounded to float16 after every operation)

Each is checked against the Python ``Stream`` by the export.
"""

from __future__ import annotations

import torch
from torch import nn

from motordecode.decoders.rsnn import half_arithmetic
from motordecode.errors import ConfigError

ONNX_RECIPES = "every recipe"


class WindowSums(nn.Module):
    """The newest k sub-window features of (recent, x), in torch ops: sum, then log-softplus."""

    def __init__(self, n_sub: int, width: int, transform: str | None):
        super().__init__()
        if transform not in (None, "none", "log_softplus"):
            raise ConfigError(f"the ONNX step has no form of the transform {transform!r}.")
        self.n_sub, self.width, self.log_softplus = n_sub, width, transform == "log_softplus"

    def forward(self, recent: torch.Tensor, x: torch.Tensor):
        window = torch.cat([recent, x], dim=0)                       # (k w, C)
        sums = window.reshape(self.n_sub, self.width, -1).sum(dim=1)  # (k, C)
        features = torch.log(nn.functional.softplus(sums)) if self.log_softplus else sums
        return features, window[1:]


class WindowedStep(nn.Module):
    def __init__(self, model, sums: WindowSums):
        super().__init__()
        self.model, self.sums = model, sums

    def forward(self, x, recent):
        features, recent = self.sums(recent, x)
        return self.model(features[None])[:, -1], recent


class StatefulStep(nn.Module):
    def __init__(self, model, sums: WindowSums):
        super().__init__()
        self.model, self.sums = model, sums

    def forward(self, x, recent, h):
        features, recent = self.sums(recent, x)
        y, h_new = self.model.sequence(features[None], h[:1, None])
        return y[:, 0], recent, torch.cat([h[1:], h_new[0]], dim=0)


class DeltaStep(nn.Module):
    def __init__(self, model, sums: WindowSums):
        super().__init__()
        self.model, self.sums = model, sums

    def forward(self, x, recent, x_ref, u_ref, h, h_ref, m):
        from motordecode.decoders.delta.cell import DeltaState
        from motordecode.decoders.delta.model import DeltaNetState

        features, recent = self.sums(recent, x)
        state = DeltaNetState(x_ref[None], DeltaState(h[None], u_ref[None], h_ref[None], m[None]))
        y, new, _ = self.model(features[None], state)
        return y[:, 0], recent, new.x_ref[0], new.cell.x_ref[0], new.cell.h[0], new.cell.h_ref[0], new.cell.m[0]


class WienerStep(nn.Module):
    """y = W [sums of the last L bins of w samples, oldest first] + b."""

    def __init__(self, model):
        super().__init__()
        self.linear = model.linear
        self.sums = WindowSums(model.window.n_sub, model.window.width, None)

    def forward(self, x, recent):
        sums, recent = self.sums(recent, x)
        return self.linear(sums.reshape(1, -1)), recent


class KalmanStep(nn.Module):
    """s_t = M_k s_{t-1} + K_k n_t + b_k in float64, k = min(steps, last): transient gains first."""

    def __init__(self, model):
        super().__init__()
        self.gain, self.transition, self.offset = (t.double() for t in (model.gain, model.transition, model.offset))
        self.sums = WindowSums(1, model.window.width, None)
        self.n_outputs, self.last = model.n_outputs, model.gain.shape[0] - 1

    def forward(self, x, recent, s, steps):
        counts, recent = self.sums(recent, x)
        k = torch.clamp(steps, max=self.last)
        s = (self.transition.index_select(0, k)[0] @ s + self.gain.index_select(0, k)[0] @ counts[0].double()
             + self.offset.index_select(0, k)[0])
        return s[None, -self.n_outputs:].float(), recent, s, steps + 1


class SNN2Step(nn.Module):
    """NeuroBench's SNN2: U1 = beta1 (1 - [U1 > 1]) U1 + W1 x; S = [U1 > 1]; U2 = beta2 U2 + W2 S; y = U2."""

    def __init__(self, model):
        super().__init__()
        self.fc1, self.fc_out = model.fc1, model.fc_out
        dtype = model.fc1.weight.dtype
        self.beta1, self.beta2 = (m.beta.to(dtype).clamp(0.0, 1.0) for m in (model.lif1, model.lif_out))
        self.threshold = model.lif1.threshold.to(dtype)

    def forward(self, x, mem1, mem_out):
        fired = (mem1 > self.threshold).to(mem1.dtype)
        mem1 = self.beta1 * (1.0 - fired) * mem1 + self.fc1(x)[0]
        spikes = (mem1 - self.threshold > 0).to(mem1.dtype)
        mem_out = self.beta2 * mem_out + self.fc_out(spikes)
        return mem_out[None], mem1, mem_out


class BufferStep(nn.Module):
    """NeuroBench's input buffer (``decoders/neurobench/history.py``) on a fixed W-row window: the
    rows R_{p-W+1} .. R_p (R_0 = 0, R_{k+1} = x_k, zero rows before R_0) and p, the last row's index.

    summed (ANN2D): runs once p >= W, on x_{t-W+1} + ... + x_t; binned (ANN3D, SNN3D): bin i sums
    the rows lo + r i .. min(lo + r i + r - 1, p) of r = W // bins rows, lo = max(0, p - W + 1)."""

    def __init__(self, model):
        super().__init__()
        self.model, history = model, model.history
        self.window, self.bins, self.rows = history.window, history.bins, history.bin_rows
        self.summed = type(model).__name__ == "ANN2D"

    def forward(self, x, rows, p):
        rows = torch.cat([rows[1:], x.to(rows.dtype)], dim=0)
        p = p + 1
        dtype = self.model.fc1.weight.dtype
        if self.summed:
            y = self.model.readout(rows.sum(dim=0, keepdim=True).to(dtype))
            return y * (p >= self.window).to(y.dtype)[:, None], rows, p
        sums = torch.cat([rows.new_zeros(1, rows.shape[1]), rows.cumsum(dim=0)])      # (W + 1, C)
        first = torch.clamp(self.window - 1 - p, min=0)                               # buffer index of R_lo
        start = first + self.rows * torch.arange(self.bins)
        stop = torch.clamp(start + self.rows, max=self.window)
        bins = (sums.index_select(0, stop) - sums.index_select(0, torch.minimum(start, stop)))[None].to(dtype)
        return self.model.readout(self.model.arrange(bins)), rows, p


class RSNNStep(nn.Module):
    """One sample of an RSNN: ``substeps`` network steps (``decoders/rsnn``). float32 models in
    float32 torch operations; a float16 model by :mod:`~motordecode.decoders.rsnn.half_arithmetic`'s
    definition (exact sums in double, every result rounded to float16 and back), bit for bit. State
    ``x_prev``: the previous network step's input (float16: the previous sample's counts)."""

    def __init__(self, model):
        super().__init__()
        lif, readout = model.lif, model.readout
        self.half = lif.input.weight.dtype == torch.float16
        with torch.no_grad():
            self.w_in, self.w_rec, self.w_out = (w.detach().float() for w in (lif.input.weight,
                                                                               lif.recurrent.weight, readout.fc.weight))
            (self.alpha, self.beta), (self.a, self.b) = ((d.float() for d in pair)
                                                         for pair in (lif.decays(), readout.decays()))
            self.gamma, self.g = half_arithmetic.complement(self.beta), half_arithmetic.complement(self.b)
        self.threshold, self.substeps = float(lif.threshold), model.config.substeps
        if self.half:
            self.threshold = float(half_arithmetic.rho(torch.tensor([self.threshold]))[0])
        self.heads, self.n_outputs = len(readout.heads), readout.n_outputs

    @staticmethod
    def lerp(start, end, weight):
        """torch.lerp's formula in operations ONNX has."""
        small = weight.abs() < 0.5
        return torch.where(small, start + weight * (end - start), end - (end - start) * (1.0 - weight))

    def forward(self, x, x_prev, s, syn, mem, out_syn, out_mem):
        if self.half:
            return self._half(x, x_prev, s, syn, mem, out_syn, out_mem)
        x = x[0] / self.substeps
        for _ in range(self.substeps):
            current = self.w_in @ x_prev + self.w_rec @ s
            out_current = self.w_out @ s
            fired = (mem > self.threshold).float()
            syn, mem = current + self.alpha * syn, self.lerp(syn, mem, self.beta) * (1.0 - fired)
            out_syn, out_mem = out_current + self.a * out_syn, self.lerp(out_syn, out_mem, self.b)
            s, x_prev = fired, x
        y = out_mem.reshape(self.heads, self.n_outputs).mean(dim=0)
        return y[None], x_prev, s, syn, mem, out_syn, out_mem

    def _half(self, x, x_prev, s, syn, mem, out_syn, out_mem):
        rho, k = half_arithmetic.rho, self.substeps
        drive, drive_new = (half_arithmetic.drive(c, self.w_in, k) for c in (x_prev, x[0]))
        for _ in range(k):
            current = rho(drive + half_arithmetic.spike_current(s, self.w_rec))
            out_current = half_arithmetic.spike_current(s, self.w_out)
            fired = mem > self.threshold
            syn, mem = rho(current + self.alpha * syn), torch.where(fired, torch.zeros_like(mem),
                                                                    rho(self.beta * mem + self.gamma * syn))
            out_syn, out_mem = rho(out_current + self.a * out_syn), rho(self.b * out_mem + self.g * out_syn)
            s, drive = fired.float(), drive_new
        y = half_arithmetic.mean_of_heads(out_mem.reshape(self.heads, self.n_outputs), self.heads).float()
        return y[None], x[0], s, syn, mem, out_syn, out_mem


def step_module(run, mode: str):
    """(module, {state name: initial tensor}) of the run's one-sample step in ``mode``."""
    from motordecode.decoders.registry import family_of
    from motordecode.runs import step_ms

    family = family_of(run.recipe)
    recipe, model = run.recipe, run.model.eval()
    if recipe.name == "wiener":
        return WienerStep(model), {"recent": torch.zeros_like(model.window.recent)}
    if recipe.name == "kalman":
        return KalmanStep(model), {"recent": torch.zeros_like(model.window.recent),
                                   "s": model.initial.double().clone(), "steps": torch.zeros(1, dtype=torch.int64)}
    if recipe.name == "snn2":
        dtype = model.fc1.weight.dtype
        return SNN2Step(model), {"mem1": torch.zeros(model.fc1.out_features, dtype=dtype),
                                 "mem_out": torch.zeros(model.fc_out.out_features, dtype=dtype)}
    if recipe.name in ("ann2d", "ann3d", "snn3d"):
        rows = torch.zeros(model.history.window, model.config.n_channels, dtype=model.fc1.weight.dtype)
        return BufferStep(model), {"rows": rows, "p": torch.zeros(1, dtype=torch.int64)}
    if family.name == "rsnn":
        hidden, units = model.config.hidden, model.readout.fc.weight.shape[0]
        zeros = torch.zeros
        return RSNNStep(model), {"x_prev": zeros(model.config.n_channels), "s": zeros(hidden), "syn": zeros(hidden),
                                 "mem": zeros(hidden), "out_syn": zeros(units), "out_mem": zeros(units)}
    channels, width = model.config.n_channels, recipe.sub_width(step_ms(run.config))
    hidden = model.config.hidden
    if mode == "windowed":
        sums = WindowSums(recipe.n_sub, width, recipe.transform)
        return WindowedStep(model, sums), {"recent": torch.zeros(recipe.n_sub * width - 1, channels)}
    sums = WindowSums(1, width, recipe.transform)
    recent = torch.zeros(width - 1, channels)
    if mode == "stateful":
        return StatefulStep(model, sums), {"recent": recent, "h": torch.zeros(width, hidden)}
    return DeltaStep(model, sums), {"recent": recent, "x_ref": torch.zeros(channels), "u_ref": torch.zeros(hidden),
                                    "h": torch.zeros(hidden), "h_ref": torch.zeros(hidden),
                                    "m": torch.zeros(4 * hidden)}
