"""Model footprint in bytes.

NeuroBench's footprint: every parameter and buffer at its dtype, ``sum(numel * element_size)``;
its parameter count: every parameter's ``numel`` (pruned zeros included, buffers excluded).
"""

from __future__ import annotations

import torch


def footprint_bytes(model: torch.nn.Module) -> int:
    """Bytes of all parameters and buffers at their dtype (NeuroBench's Footprint)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return int(sum(t.numel() * t.element_size() for t in tensors))


def parameter_count(model: torch.nn.Module) -> int:
    """Number of parameters, zeros included (NeuroBench's ParameterCount)."""
    return int(sum(p.numel() for p in model.parameters()))
