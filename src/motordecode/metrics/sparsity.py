"""Connection sparsity (static) and activation sparsity (from recorded activity).

Connection sparsity = zero weights / all weights over the connection layers, counted as NeuroBench
does: Linear and Conv weights (biases excluded); recurrent cells and layers (GRU, LSTM, RNN) with
their biases; custom layers (the Kalman decoder) list theirs in ``connection_weights()``. NeuroBench rounds the value to 4 decimals; motordecode reports it unrounded.

Activation sparsity = zero outputs / all outputs of the activation modules (ReLU, Sigmoid and
spiking neurons) over the whole evaluated stream.
"""

from __future__ import annotations

import torch
from torch import nn

from motordecode.errors import MetricError

STATELESS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
RECURRENT = (nn.RNNCellBase, nn.RNNBase)


def connection_tensors(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) of every weight that connection sparsity counts, in module order."""
    out = []
    for name, module in model.named_modules():
        if isinstance(module, STATELESS):
            out.append((f"{name}.weight", module.weight))
        elif isinstance(module, RECURRENT):
            out += [(f"{name}.{p}", t) for p, t in module.named_parameters(recurse=False)]
        elif hasattr(module, "connection_weights"):  # a custom layer names its own matrices
            out += [(f"{name}.{p}", t) for p, t in module.connection_weights()]
    return out


def connection_sparsity(model: nn.Module) -> float:
    tensors = connection_tensors(model)
    total = sum(t.numel() for _, t in tensors)
    if total == 0:
        raise MetricError(f"connection sparsity: {type(model).__name__} has no Linear, Conv or recurrent layer.")
    zeros = sum(int((t == 0).sum()) for _, t in tensors)
    return zeros / total


def activation_sparsity(outputs: dict[str, list[torch.Tensor]]) -> float | None:
    """Zeros / all over recorded activation outputs; None when the model has no activation module."""
    total = zeros = 0
    for tensors in outputs.values():
        for t in tensors:
            total += t.numel()
            zeros += t.numel() - int(torch.count_nonzero(t))
    return None if total == 0 else zeros / total
