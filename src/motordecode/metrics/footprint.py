"""Model footprint in bytes.

NeuroBench's footprint: every parameter and buffer at its dtype, ``sum(numel * element_size)``.
"""

from __future__ import annotations

import torch


def footprint_bytes(model: torch.nn.Module) -> int:
    """Bytes of all parameters and buffers at their dtype (NeuroBench's Footprint)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return int(sum(t.numel() * t.element_size() for t in tensors))
