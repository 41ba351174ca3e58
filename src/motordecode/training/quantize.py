"""Fixed-point weight quantisation (AEGRU paper, Sec. II-F2): Q1.7 by default.

With f fractional bits out of b (Q1.7: b = 8, f = 7):

    q(w) = clip(round(w * 2^f) / 2^f, -2^(b-1-f), 2^(b-1-f) - 2^-f)    ([-1, 127/128] for Q1.7)

Weights are stored back as float32 values on the grid (exact); biases and normalisation parameters
stay float. ``deployed_bits`` gives the bit width of each parameter for the deployed footprint.
"""

from __future__ import annotations

import torch

from motordecode.errors import ConfigError


def fixed_point(w: torch.Tensor, bits: int = 8, frac_bits: int = 7) -> torch.Tensor:
    if not 0 <= frac_bits < bits:
        raise ConfigError(f"fixed point needs 0 <= fractional bits < bits (got {frac_bits}, {bits}).")
    scale = 2.0 ** frac_bits
    limit = 2.0 ** (bits - 1 - frac_bits)
    return torch.clamp(torch.round(w * scale) / scale, -limit, limit - 1.0 / scale)


@torch.no_grad()
def quantize_weights(weights: dict[str, torch.Tensor], bits: int = 8, frac_bits: int = 7) -> dict[str, int]:
    """Round the given weights in place onto the fixed-point grid; returns {name: bits}."""
    for w in weights.values():
        w.copy_(fixed_point(w, bits, frac_bits))
    return {name: bits for name in weights}
