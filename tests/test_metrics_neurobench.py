"""Every metric equals neurobench 2.3.0's Benchmark on the same model, weights and input stream."""

from __future__ import annotations

import pytest
import snntorch
import torch
from torch import nn

from motordecode.data.load import load_reaching
from motordecode.data.splits import split_by_reaches
from motordecode.metrics.activity import ActivityRecorder
from motordecode.metrics.footprint import footprint_bytes
from motordecode.metrics.ops import model_ops
from motordecode.metrics.r2 import r2_score
from motordecode.metrics.sparsity import activation_sparsity, connection_sparsity, connection_tensors
from motordecode.decoders.rsnn.model import RSNN, RSNNConfig
from motordecode.decoders.rsnn.snntorch_twin import SnnTorchRSNN
from neurobench_reference import SequenceDecoder, run_neurobench

STEPS = 250


class StreamNet(nn.Module):
    """Calls its layers once per 4 ms step and keeps recurrent state across calls.

    Model (a), Linear -> GRUCell -> Linear, is neurobench_reference.SequenceDecoder."""

    def reset(self):
        pass

    def forward(self, x):
        x = x.reshape(-1, x.shape[-1])
        return torch.cat([self.step(row[None]) for row in x])


class ReluMLP(StreamNet):  # (b) ANN2D-like: Linear-BatchNorm-ReLU x2 -> Linear
    def __init__(self, c):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(c, 64), nn.BatchNorm1d(64), nn.ReLU(),
                                 nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 2))

    def step(self, x):
        return self.net(x)


class LeakyNet(StreamNet):  # (c) snntorch Leaky spiking network with a linear readout
    def __init__(self, c):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(c, 64), nn.Linear(64, 2)
        self.lif = snntorch.Leaky(beta=0.9, threshold=0.5, init_hidden=True)

    def reset(self):
        snntorch.utils.reset(self)

    def step(self, x):
        return self.fc2(self.lif(self.fc1(x)))


def _prune_half(net: nn.Module) -> None:
    """Global magnitude pruning of 50% of the connection weights, in place."""
    tensors = [t for _, t in connection_tensors(net)]
    threshold = torch.cat([t.detach().abs().flatten() for t in tensors]).median()
    with torch.no_grad():
        for t in tensors:
            t[t.abs() <= threshold] = 0


@pytest.fixture(scope="module")
def streams(indy_file):
    rec4, rec28 = load_reaching(indy_file, 0.004), load_reaching(indy_file, 0.028)
    test = split_by_reaches(rec4.reach_bounds).test[:STEPS]
    y = torch.from_numpy(rec4.velocity[test])
    return {"binary": (torch.from_numpy(rec4.spikes[test]).float(), y),
            "counts": (torch.from_numpy(rec28.spikes[test]).float(), y)}


def ours(net: StreamNet, x: torch.Tensor, y: torch.Tensor) -> dict:
    net.eval()
    net.reset()  # (a) is called on the whole stream at once; (b) and (c) step by step
    with torch.no_grad(), ActivityRecorder(net) as rec:
        pred = net(x[:, None, :])
    ops = model_ops(rec.layers, neurobench_gru_slip=True).per_step(len(x))
    return {"ConnectionSparsity": connection_sparsity(net),
            "R2": r2_score(pred.numpy(), y.numpy()), "ActivationSparsity": activation_sparsity(rec.activations),
            "Effective_MACs": ops.effective_macs, "Effective_ACs": ops.effective_acs, "Dense": ops.dense}


@pytest.mark.parametrize("model", [SequenceDecoder, ReluMLP, LeakyNet])
@pytest.mark.parametrize("inputs", ["binary", "counts"])
@pytest.mark.parametrize("pruned", [False, True])
def test_metrics_equal_neurobench(streams, model, inputs, pruned):
    torch.manual_seed(0)
    x, y = streams[inputs]
    net = model(x.shape[1])
    if isinstance(net, ReluMLP):  # give BatchNorm non-trivial statistics
        with torch.no_grad():
            net.train()
            net.net(x)
    if pruned:
        _prune_half(net)
    net.eval().reset()
    footprint = footprint_bytes(net)  # static metrics are measured before any data runs, as NeuroBench does
    ref = run_neurobench(net, x, y)
    mine = ours(net, x, y)
    ref_ops = ref.pop("SynapticOperations")
    ref.update(ref_ops)
    assert footprint == ref["Footprint"]
    assert round(mine["ConnectionSparsity"], 4) == ref["ConnectionSparsity"]  # NeuroBench rounds
    assert mine["ConnectionSparsity"] == pytest.approx(0.5 if pruned else 0.0, abs=1e-3)
    assert mine["R2"] == pytest.approx(ref["R2"], rel=1e-5, abs=1e-6)
    if isinstance(net, SequenceDecoder):
        assert mine["ActivationSparsity"] is None and ref["ActivationSparsity"] == 0.0  # no activation module
    else:
        assert mine["ActivationSparsity"] == pytest.approx(ref["ActivationSparsity"], rel=1e-6)
    for key in ("Effective_MACs", "Effective_ACs", "Dense"):
        assert mine[key] == pytest.approx(ref[key], rel=1e-6), key
    # binary input into the first layer is counted as accumulates, counts as multiply-accumulates
    if inputs == "binary" or isinstance(net, LeakyNet):
        assert mine["Effective_ACs"] > 0
    if inputs == "counts" or not isinstance(net, LeakyNet):
        assert mine["Effective_MACs"] > 0
    if pruned:
        assert mine["Effective_MACs"] + mine["Effective_ACs"] < 0.75 * mine["Dense"]


@pytest.mark.parametrize("inputs", ["binary", "counts"])
@pytest.mark.parametrize("pruned", [False, True])
def test_project_spiking_model_equals_neurobench_on_its_snntorch_twin(streams, inputs, pruned):
    """(c) The project's RSNN through the project harness against NeuroBench's Benchmark on the same
    network written with snntorch neurons (same weights, same stream, one step per batch)."""
    torch.manual_seed(1)
    x, y = streams[inputs]
    model = RSNN(RSNNConfig(x.shape[1], 32))
    with torch.no_grad():
        model.lif.input.weight.normal_(0.0, 1.0)
        model.lif.recurrent.weight.normal_(0.0, 0.3)
    if pruned:
        _prune_half(model)
    model.eval()
    twin = SnnTorchRSNN.from_rsnn(model).eval()
    twin_buffers = sum(b.numel() * b.element_size() for b in twin.buffers())  # snntorch's threshold etc.
    ref = run_neurobench(twin, x, y)
    ref.update(ref.pop("SynapticOperations"))
    with torch.no_grad(), ActivityRecorder(model) as rec:
        pred = model(x)
    ops = model_ops(rec.layers).per_step(len(x))
    assert footprint_bytes(model) == ref["Footprint"] - twin_buffers
    assert round(connection_sparsity(model), 4) == ref["ConnectionSparsity"]
    assert connection_sparsity(model) == pytest.approx(0.5 if pruned else 0.0, abs=1e-3)
    assert r2_score(pred.numpy(), y.numpy()) == pytest.approx(ref["R2"], rel=1e-5, abs=1e-6)
    sparsity = activation_sparsity(rec.activations)
    assert sparsity == pytest.approx(ref["ActivationSparsity"], rel=1e-6)
    assert 0.2 < sparsity < 0.999  # the network spikes
    assert ops.effective_macs == pytest.approx(ref["Effective_MACs"], rel=1e-6)
    assert ops.effective_acs == pytest.approx(ref["Effective_ACs"], rel=1e-6)
    assert ops.dense == pytest.approx(ref["Dense"], rel=1e-6)
    assert ops.dense == x.shape[1] * 32 + 32 * 32 + 32 * 2
    # spikes into the recurrent and readout connections are accumulates; count input is multiplied
    assert ops.effective_acs > 0
    assert (ops.effective_macs > 0) == (inputs == "counts")
