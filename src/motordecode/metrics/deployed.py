"""Deployed footprint: what the model occupies on a device, reported beside NeuroBench's footprint.

Each parameter is stored at its deployed bit width ``b`` (8 for Q1.7 weights, 16 for fp16, else
its dtype's width). A tensor with zeros is stored in whichever is smaller: dense,
``ceil(numel * b / 8)`` bytes, or as a bitmask plus its nonzero values,
``ceil(numel / 8) + ceil(nnz * b / 8)`` bytes. Buffers (e.g. BatchNorm statistics) count at their dtype.
"""

from __future__ import annotations

import math

from torch import nn

from motordecode.errors import MetricError


def tensor_bytes(numel: int, nnz: int, bits: int) -> int:
    dense = math.ceil(numel * bits / 8)
    bitmask = math.ceil(numel / 8) + math.ceil(nnz * bits / 8)
    return min(dense, bitmask)


def deployed_footprint_bytes(model: nn.Module, bits: dict[str, int] | None = None) -> int:
    """Bytes of parameters (at ``bits[name]`` or their dtype, sparse when that is smaller) + buffers."""
    bits = dict(bits or {})
    names = {name for name, _ in model.named_parameters()}
    unknown = set(bits) - names
    if unknown:
        raise MetricError(f"deployed footprint: no parameter named {', '.join(sorted(unknown))}.")
    total = 0
    for name, p in model.named_parameters():
        width = bits.get(name, p.element_size() * 8)
        if not 1 <= width <= 64:
            raise MetricError(f"deployed footprint: bit width {width} for '{name}' is not in 1..64.")
        total += tensor_bytes(p.numel(), int((p != 0).sum()), width)
    total += sum(b.numel() * b.element_size() for b in model.buffers())
    return int(total)
