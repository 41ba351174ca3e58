"""SMORMS3 against its published update rule, step by step, in plain Python floats."""

from __future__ import annotations

import math

import pytest
import torch

from motordecode.training.smorms3 import SMORMS3


def _reference(p: float, grads: list[float], lr: float, eps: float = 1e-16) -> list[float]:
    """Funk's rule for one scalar weight."""
    mem, g, g2, out = 1.0, 0.0, 0.0, []
    for grad in grads:
        r = 1.0 / (mem + 1.0)
        g = (1 - r) * g + r * grad
        g2 = (1 - r) * g2 + r * grad * grad
        x = g * g / (g2 + eps)
        p -= grad * min(lr, x) / (math.sqrt(g2) + eps)
        mem = 1 + mem * (1 - x)
        out.append(p)
    return out


def test_matches_published_rule_elementwise():
    torch.manual_seed(0)
    grads = torch.randn(12, 5, dtype=torch.float64)
    grads[:, 0] = 0.7  # a constant gradient: x -> 1, the step is capped by lr
    grads[4:, 1] = 0.0  # a gradient that vanishes
    start = torch.randn(5, dtype=torch.float64)
    w = torch.nn.Parameter(start.clone())
    opt = SMORMS3([w], lr=2e-3)
    trace = []
    for step_grad in grads:
        w.grad = step_grad.clone()
        opt.step()
        trace.append(w.detach().clone())
    trace = torch.stack(trace)
    for i in range(5):
        expected = _reference(float(start[i]), grads[:, i].tolist(), lr=2e-3)
        assert trace[:, i].tolist() == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # a constant gradient: g2 -> grad^2 and x -> 1 > lr, so the step tends to lr * sign(grad)
    assert float(trace[-1, 0] - trace[-2, 0]) == pytest.approx(-2e-3, rel=1e-2)
    assert float(trace[1, 0] - trace[0, 0]) < -2e-3  # early steps are larger: sqrt(g2) < |grad|


def test_minimises_a_quadratic_and_skips_missing_grads():
    w = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
    frozen = torch.nn.Parameter(torch.tensor([1.0]))
    opt = SMORMS3([w, frozen], lr=0.05)
    for _ in range(400):
        opt.zero_grad()
        (w - torch.tensor([0.5, 1.0])).square().sum().backward()
        opt.step()
    assert torch.allclose(w.detach(), torch.tensor([0.5, 1.0]), atol=1e-2)
    assert frozen.item() == 1.0 and not opt.state[frozen]
    with pytest.raises(ValueError, match="lr > 0"):
        SMORMS3([w], lr=0.0)
