"""Training loss (AEGRU challenge code): weighted velocity MSE plus Poisson NLL of the reconstruction.

    L = w_mse * mean_{b,t,d} (y_hat - y)^2 + w_pnll * mean_{b,t,c} (lambda - n log lambda)

with lambda = exp(log_rate) the reconstructed firing rate and n the input spike counts of each
sub-window (the constant log n! is dropped). Labels of all L steps are used.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def velocity_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, target)


def poisson_nll(log_rate: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """mean(exp(log_rate) - counts * log_rate)."""
    return F.poisson_nll_loss(log_rate, counts, log_input=True, full=False)


def decoder_loss(pred, target, log_rate=None, counts=None, mse_weight: float = 10.0,
                 pnll_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """(total loss, {term: value}) for one batch; the PNLL term only when a reconstruction is given."""
    mse = velocity_mse(pred, target)
    total = mse_weight * mse
    terms = {"mse": float(mse.detach())}
    if log_rate is not None and pnll_weight:
        pnll = poisson_nll(log_rate, counts)
        total = total + pnll_weight * pnll
        terms["pnll"] = float(pnll.detach())
    return total, terms
