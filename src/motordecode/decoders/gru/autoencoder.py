"""AEGRU's training-only branch (AEGRU paper, Sec. II-C4): a variational autoencoder on the input FC.

With mu_t = u_t the input FC's output (the latent mean):

    log sigma_t^2 = W_2 ReLU(W_1 x_t + b_1) + b_2      (FC1: C -> 128, FC2: 128 -> H)
    z_t = mu_t + eps * sigma_t,  eps ~ N(0, I)          (fed to the GRU while training)
    lambda_t = exp(W_3 z_t + b_3)                        (FC3: H -> C, the reconstructed firing rate)

The branch is dropped after training: inference feeds mu_t to the GRU.
"""

from __future__ import annotations

import torch
from torch import nn


class AutoencoderBranch(nn.Module):
    def __init__(self, n_channels: int, latent: int, logvar_hidden: int = 128):
        super().__init__()
        self.logvar = nn.Sequential(nn.Linear(n_channels, logvar_hidden), nn.ReLU(),
                                    nn.Linear(logvar_hidden, latent))
        self.fc_rate = nn.Linear(latent, n_channels)

    def sample(self, x: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """z = mu + eps * exp(log_var / 2)."""
        return mu + torch.randn_like(mu) * torch.exp(0.5 * self.logvar(x))

    def log_rate(self, z: torch.Tensor) -> torch.Tensor:
        """log lambda: the log of the reconstructed firing rate (exp of it is the rate)."""
        return self.fc_rate(z)
