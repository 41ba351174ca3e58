"""Helpers that run neurobench 2.3.0's Benchmark in the task's streaming configuration."""

from __future__ import annotations

import torch
from neurobench.benchmarks import Benchmark
from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
from neurobench.metrics.workload import R2, ActivationSparsity, SynapticOperations
import snntorch
from neurobench.models import TorchModel
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def run_neurobench(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Stream (T, C) inputs one 4 ms step per batch (shape (1, 1, C)); return NeuroBench's results.

    The network keeps its own state across batches (TorchModel; snntorch neurons are added as
    activation modules, as SNNTorchModel does, without its per-batch reset).
    """
    loader = DataLoader(TensorDataset(x[:, None, :].float(), y.float()), batch_size=1, shuffle=False)
    model = TorchModel(net)
    model.add_activation_module(snntorch.SpikingNeuron)
    bench = Benchmark(model, loader, [], [],
                      [[Footprint, ConnectionSparsity, ParameterCount], [R2, ActivationSparsity, SynapticOperations]])
    return bench.run(quiet=True)


class SequenceDecoder(nn.Module):
    """Linear -> GRUCell -> Linear with state carried across calls; the Linear layers see all the
    rows of a call at once (the whole stream for the harness, one step per NeuroBench batch)."""

    def __init__(self, c: int, h: int = 32):
        super().__init__()
        self.fc1, self.cell, self.fc2 = nn.Linear(c, h), nn.GRUCell(h, h), nn.Linear(h, 2)
        self.reset()

    def reset(self):
        self.h = torch.zeros(1, self.cell.hidden_size)

    def forward(self, x):
        a = self.fc1(x.reshape(-1, x.shape[-1]))
        states = []
        for row in a:
            self.h = self.cell(row[None], self.h)
            states.append(self.h)
        return self.fc2(torch.cat(states))
