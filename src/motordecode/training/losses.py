"""Training losses.

AEGRU (challenge code): weighted velocity MSE plus Poisson NLL of the reconstruction,

    L = w_mse * mean_{b,t,d} (y_hat - y)^2 + w_pnll * mean_{b,t,c} (lambda - n log lambda)

with lambda = exp(log_rate) the reconstructed firing rate and n the input spike counts of each
sub-window (the constant log n! is dropped). Labels of all L steps are used.

RSNN (tinyRSNN / bigRSNN): RMSE of the velocity plus the firing-rate bounds of
:func:`firing_regularisers`.
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


def rmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sqrt(mean((y - v)^2)) over all windows, steps and axes (RSNN loss)."""
    return torch.sqrt(torch.mean((pred - target) ** 2))


def firing_regularisers(spikes: torch.Tensor, lb_strength: float, lb_threshold: float, ub_strength: float,
                        ub_threshold: float) -> torch.Tensor:
    """Activity bounds on the spike counts n_bh = sum_t S_bth of each window b and neuron h:

        lower = lb_strength * mean_h relu(lb_threshold - mean_b n_bh)^2    (no silent neuron)
        upper = ub_strength * mean_b relu(mean_h n_bh - ub_threshold)^2    (population rate cap)
    """
    counts = spikes.sum(dim=1)
    lower = lb_strength * torch.relu(lb_threshold - counts.mean(dim=0)).square().mean()
    upper = ub_strength * torch.relu(counts.mean(dim=1) - ub_threshold).square().mean()
    return lower + upper
