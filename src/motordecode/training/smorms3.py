"""SMORMS3 (Simon Funk, 2015): RMSprop with a per-weight adaptive averaging window.

Per parameter element, with memory m (starts at 1) and moments g, g2 (start at 0):

    r  = 1 / (m + 1)
    g  = (1 - r) g  + r grad
    g2 = (1 - r) g2 + r grad^2
    x  = g^2 / (g2 + eps)
    p  = p - grad * min(lr, x) / (sqrt(g2) + eps)
    m  = 1 + m (1 - x)
"""

from __future__ import annotations

import torch


class SMORMS3(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-3, eps: float = 1e-16):
        if lr <= 0 or eps <= 0:
            raise ValueError(f"SMORMS3 needs lr > 0 and eps > 0, got lr={lr}, eps={eps}.")
        super().__init__(params, dict(lr=lr, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, eps = group["lr"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["mem"] = torch.ones_like(p)
                    state["g"] = torch.zeros_like(p)
                    state["g2"] = torch.zeros_like(p)
                mem, g, g2 = state["mem"], state["g"], state["g2"]
                r = 1.0 / (mem + 1.0)
                g.mul_(1.0 - r).add_(r * grad)
                g2.mul_(1.0 - r).add_(r * grad * grad)
                x = g * g / (g2 + eps)
                p.sub_(grad * torch.clamp(x, max=lr) / (g2.sqrt() + eps))
                mem.mul_(1.0 - x).add_(1.0)
        return loss
