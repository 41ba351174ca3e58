"""Recording what a model's layers see while it runs, for counting operations afterwards.

``ActivityRecorder`` registers forward hooks on the connection layers (Linear, Conv, recurrent
cells and layers, and custom layers that declare their connections through a
``synaptic_inputs(module, inputs, output)`` method, see :mod:`motordecode.metrics.ops`) and on the
activation modules (ReLU, Sigmoid, spiking neurons; a module can be both). Each hook keeps
the call's inputs and outputs, detached. Run the model over the whole stream once (a sequence
forward, or a loop of steps); the operation counts are then computed from the stacked activity and
the weight masks in a few vectorised passes, never per step.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch
from torch import nn

from motordecode.metrics.sparsity import RECURRENT, STATELESS

ACTIVATIONS: tuple[type, ...] = (nn.ReLU, nn.Sigmoid)
try:  # snntorch's spiking neurons count as activation modules, as in NeuroBench
    from snntorch import SpikingNeuron
    ACTIVATIONS = ACTIVATIONS + (SpikingNeuron,)
except ImportError:  # pragma: no cover - snntorch is optional at run time
    SpikingNeuron = None


def register_activation(module_type: type) -> None:
    """Count the outputs of ``module_type`` in activation sparsity (e.g. a custom spiking layer)."""
    global ACTIVATIONS
    if module_type not in ACTIVATIONS:
        ACTIVATIONS = ACTIVATIONS + (module_type,)


def _detach(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if hasattr(value, "_fields"):  # a NamedTuple state
        return type(value)(*(_detach(v) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_detach(v) for v in value)
    return value


def _spike_output(output):
    """The spike tensor of an activation module's output (snntorch returns (spk, mem) tuples)."""
    if isinstance(output, tuple):
        return output[0]
    return output


@dataclass
class LayerCalls:
    module: nn.Module
    inputs: list = field(default_factory=list)   # one tuple of inputs per call
    outputs: list = field(default_factory=list)


class ActivityRecorder:
    """Context manager: ``with ActivityRecorder(model) as rec: model(...)``."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers: dict[str, LayerCalls] = {}
        self.activations: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._handles = []

    def __enter__(self) -> "ActivityRecorder":
        for name, module in self.model.named_modules():
            if isinstance(module, STATELESS + RECURRENT) or hasattr(module, "synaptic_inputs"):
                self.layers[name] = LayerCalls(module)
                self._handles.append(module.register_forward_hook(self._layer_hook(name)))
            if isinstance(module, ACTIVATIONS):
                self._handles.append(module.register_forward_hook(self._activation_hook(name)))
        return self

    def _layer_hook(self, name: str):
        def hook(module, inputs, output):
            self.layers[name].inputs.append(_detach(inputs))
            self.layers[name].outputs.append(_detach(output))
        return hook

    def _activation_hook(self, name: str):
        def hook(module, inputs, output):
            self.activations[name].append(_detach(_spike_output(output)))
        return hook

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
