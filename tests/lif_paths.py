"""Shared by the fused-loop tests: one RSNN run (outputs, spikes, gradients) on a chosen loop path."""

from __future__ import annotations

import torch

from motordecode.decoders.rsnn import loops
from motordecode.decoders.rsnn.model import RSNN, RSNNConfig


def active_rsnn(hidden: int, heads, channels: int = 20, dropout: float = 0.0, seed: int = 5) -> RSNN:
    """An RSNN whose neurons fire a few percent of the time on Bernoulli(0.2) input."""
    torch.manual_seed(seed)
    model = RSNN(RSNNConfig(channels, hidden, readout_heads=heads, dropout=dropout))
    with torch.no_grad():
        model.lif.input.weight.normal_(0, 1.5)
        model.lif.recurrent.weight.normal_(0, 0.5 * (16 / hidden) ** 0.5)
    return model


def run_on_path(monkeypatch, path: str | None, model: RSNN, x: torch.Tensor, warmup: int = 7):
    """Stream ``warmup`` steps without gradients (non-zero initial states), then the rest with them; the
    loss weights the outputs and spikes. ``path`` forces loops.choose (None: its own choice).
    Returns (outputs, spikes, final states, {parameter: gradient})."""
    with monkeypatch.context() as patch:
        if path is not None:
            patch.setattr(loops, "choose", lambda *tensors: path)
        torch.manual_seed(7)  # the input- and spike-dropout seeds
        model.zero_grad()
        with torch.no_grad():
            _, state, _ = model.sequence(x[:, :warmup])
        y, state, spikes = model.sequence(x[:, warmup:], state)
        weights = torch.linspace(-1.0, 2.0, y.numel(), dtype=y.dtype, device=y.device).reshape(y.shape)
        ((y * weights).mean() + spikes.mean()).backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    return y.detach(), spikes.detach(), state, grads


def tensors(nested) -> list[torch.Tensor]:
    """The tensors of a nested state, in order."""
    if isinstance(nested, torch.Tensor):
        return [nested]
    return [t for item in nested for t in tensors(item)]


def assert_same_run(run, reference, tol: float = 1e-5) -> None:
    """Spikes equal; outputs, states and gradients equal to float32 rounding (relative ``tol``)."""
    y, spikes, state, grads = run
    y_ref, spikes_ref, state_ref, grads_ref = reference
    assert torch.equal(spikes, spikes_ref)
    assert torch.allclose(y, y_ref, rtol=tol, atol=tol * y_ref.abs().max())
    for got, want in zip(tensors(state), tensors(state_ref), strict=True):
        assert torch.allclose(got, want, rtol=tol, atol=tol * max(1.0, want.abs().max().item()))
    for name, grad in grads.items():
        want = grads_ref[name]
        assert want.abs().sum() > 0, name
        assert torch.allclose(grad, want, rtol=100 * tol, atol=tol * want.abs().max()), name
