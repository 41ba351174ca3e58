"""Magnitude pruning: global (AEGRU paper, Sec. II-F1) or per matrix (tinyRSNN).

Global: over all pruned tensors together, the ``round(rate * n)`` weights of smallest |w| are set
to zero (ties broken by position, so the rate is met exactly). Per matrix: each tensor loses its
``floor(rate * n)`` smallest weights, the counts the published tinyRSNN files show (e.g. 2764 of
6144 input weights at rate 0.45). The masks are kept outside the model (the
NeuroBench footprint counts the model's parameters and buffers; a mask buffer would double it) and
are re-applied after every optimiser step of the fine-tune, so pruned weights stay exactly zero.
"""

from __future__ import annotations

import torch

from motordecode.errors import ConfigError


def global_l1_masks(weights: dict[str, torch.Tensor], rate: float) -> dict[str, torch.Tensor]:
    """Boolean keep-masks (True = kept) that prune a fraction ``rate`` of all weights by magnitude."""
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"pruning rate must be in [0, 1), got {rate}.")
    flat = torch.cat([w.detach().abs().reshape(-1) for w in weights.values()])
    keep = _keep_largest(flat, int(round(rate * flat.numel())))
    masks, start = {}, 0
    for name, w in weights.items():
        masks[name] = keep[start : start + w.numel()].reshape(w.shape)
        start += w.numel()
    return masks


def _keep_largest(magnitudes: torch.Tensor, n_prune: int) -> torch.Tensor:
    keep = torch.ones(magnitudes.numel(), dtype=torch.bool, device=magnitudes.device)
    if n_prune:
        keep[torch.argsort(magnitudes.float(), stable=True)[:n_prune]] = False
    return keep


def per_matrix_masks(weights: dict[str, torch.Tensor], rate: float) -> dict[str, torch.Tensor]:
    """Keep-masks that prune ``floor(rate * n)`` smallest-|w| weights of each tensor separately."""
    if not 0.0 <= rate < 1.0:
        raise ConfigError(f"pruning rate must be in [0, 1), got {rate}.")
    return {name: _keep_largest(w.detach().abs().reshape(-1), int(rate * w.numel())).reshape(w.shape)
            for name, w in weights.items()}


@torch.no_grad()
def apply_masks(weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> None:
    """Zero the pruned weights in place."""
    for name, w in weights.items():
        if name in masks:
            w.mul_(masks[name].to(device=w.device, dtype=w.dtype))


def pruned_fraction(weights: dict[str, torch.Tensor]) -> float:
    total = sum(w.numel() for w in weights.values())
    return sum(int((w == 0).sum()) for w in weights.values()) / total
