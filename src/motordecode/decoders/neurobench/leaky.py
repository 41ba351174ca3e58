"""The leaky integrate-and-fire neuron of NeuroBench's SNN baselines (snntorch's ``Leaky``, as used there).

Per step, with the reset taken from the previous membrane (snntorch's default ``reset_delay``):

    r_t = H(U_{t-1} - theta)
    subtract: U_t = beta U_{t-1} + I_t - r_t theta
    zero:     U_t = beta (1 - r_t) U_{t-1} + I_t
    none:     U_t = beta U_{t-1} + I_t
    S_t = H(U_t - theta)

beta is clamped to [0, 1]; training uses the fast-sigmoid surrogate dS/dU = 1 / (slope |U - theta| + 1)^2
(SNN2, slope 20) or arctan (SNN3D). ``NBLeaky`` keeps snntorch's buffers (threshold, beta,
graded_spikes_factor, reset_mechanism_val) with their dtypes, so the published state dicts load
as they are and the footprint is counted like NeuroBench's (24 bytes per layer with an integer
threshold, 20 with a float one). The membrane is an attribute (not a buffer), as in snntorch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from motordecode.errors import ConfigError
from motordecode.metrics.activity import register_activation
from motordecode.decoders.rsnn.lif import SuperSpike

RESETS = {"subtract": 0, "zero": 1, "none": 2}


class ArctanSpike(torch.autograd.Function):
    """snntorch's atan surrogate: dS/dv = (alpha / 2) / (1 + (pi alpha v / 2)^2)."""

    @staticmethod
    def forward(ctx, v, alpha: float):
        ctx.save_for_backward(v)
        ctx.alpha = alpha
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad * (ctx.alpha / 2) / (1 + (math.pi * ctx.alpha * v / 2) ** 2), None


SURROGATES = {"fast_sigmoid": (SuperSpike, 20.0), "atan": (ArctanSpike, 2.0)}  # fast sigmoid = SuperSpike


def leaky_step(current, mem, beta, threshold, reset: int):
    """(I_t, U_{t-1}) -> U_t for a reset mechanism code (0 subtract, 1 zero, 2 none); the reset is
    not differentiated."""
    beta = beta.clamp(0.0, 1.0)
    if reset == RESETS["none"]:
        return beta * mem + current
    fired = (mem > threshold).to(mem.dtype).detach()
    if reset == RESETS["subtract"]:
        return beta * mem + current - fired * threshold
    return beta * (1.0 - fired) * mem + current


class NBLeaky(nn.Module):
    """``forward(I (T, ...)) -> S (T, ...)``: T consecutive steps; ``mem`` carries U across calls
    (None after ``reset()``: zeros) and ``membranes`` holds U of every step of the last call."""

    def __init__(self, beta: float, threshold: float | int, reset: str = "subtract", surrogate: str = "fast_sigmoid"):
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(threshold))  # int64 when given as an int
        self.register_buffer("graded_spikes_factor", torch.as_tensor(1.0))
        self.register_buffer("reset_mechanism_val", torch.as_tensor(RESETS[reset]))
        self.register_buffer("beta", torch.as_tensor(float(beta)))
        self.spike, self.surrogate_scale = SURROGATES[surrogate]
        self.mem = None

    def reset(self) -> None:
        self.mem = None

    def forward(self, currents: torch.Tensor) -> torch.Tensor:
        step_shape = currents.shape[1:]
        if self.mem is not None and self.mem.shape != step_shape:
            raise ConfigError(f"the stream changed shape from {tuple(self.mem.shape)} to {tuple(step_shape)} per "
                              "step; call reset() before a new stream.")
        mem = currents.new_zeros(step_shape) if self.mem is None else self.mem
        threshold, beta = self.threshold.to(currents.dtype), self.beta.to(currents.dtype)
        reset, spikes, mems = int(self.reset_mechanism_val), [], []
        for current in currents:
            mem = leaky_step(current, mem, beta, threshold, reset)
            mems.append(mem)
            spikes.append(self.spike.apply(mem - threshold, self.surrogate_scale))
        self.mem, self.membranes = mem, torch.stack(mems)  # U_t of every step (the SNN2 output)
        return torch.stack(spikes) * self.graded_spikes_factor


register_activation(NBLeaky)
