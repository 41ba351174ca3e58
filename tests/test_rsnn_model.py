"""The spiking layer, the readout and the RSNN: hand-computed steps, surrogate, streaming, snntorch twin."""

from __future__ import annotations

import math

import pytest
import torch

from motordecode.decoders.rsnn import lif_kernels
from motordecode.decoders.rsnn.lif import (RecurrentLIF, decay, fluctuation_driven_init, hashed_dropout, lif_step, psp_energy,
                                    superspike)
from motordecode.decoders.rsnn.readout import LeakyReadout, readout_step
from motordecode.decoders.rsnn.model import RSNN, RSNNConfig
from motordecode.decoders.rsnn.recipe import HEADS
from motordecode.decoders.rsnn.snntorch_twin import SnnTorchRSNN


def test_lif_step_by_hand():
    alpha, beta = torch.tensor([0.5, 0.5, 0.8]), torch.tensor([0.9, 0.9, 0.25])
    syn = torch.tensor([[2.0, -1.0, 0.4]])
    mem = torch.tensor([[1.5, 0.2, 1.0]])     # neuron 0 is above threshold, neuron 2 exactly at it
    drive = torch.tensor([[0.3, 0.7, -0.2]])
    spikes, new_syn, new_mem = lif_step(drive, syn, mem, alpha, beta)
    assert spikes.tolist() == [[1.0, 0.0, 0.0]]  # H(U - 1) with H(0) = 0
    assert new_syn[0].tolist() == pytest.approx([0.5 * 2.0 + 0.3, 0.5 * -1.0 + 0.7, 0.8 * 0.4 - 0.2])
    # U_t = (beta U + (1 - beta) I_{t-1}) (1 - S_t): the old current, reset to zero where it spiked
    assert new_mem[0].tolist() == pytest.approx([0.0, 0.9 * 0.2 + 0.1 * -1.0, 0.25 * 1.0 + 0.75 * 0.4])


def test_superspike_surrogate_gradient():
    v = torch.tensor([-0.5, -0.01, 0.0, 0.02, 1.3], requires_grad=True)
    out = superspike(v, 20.0)
    assert out.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    out.sum().backward()
    expected = [1.0 / (20.0 * abs(x) + 1.0) ** 2 for x in v.detach().tolist()]
    assert v.grad.tolist() == pytest.approx(expected)


def test_reset_is_not_differentiated():
    mem = torch.tensor([[1.2]], requires_grad=True)
    spikes, _, new_mem = lif_step(torch.zeros(1, 1), torch.zeros(1, 1), mem, torch.tensor([0.5]), torch.tensor([0.5]))
    new_mem.sum().backward()
    # U_t = 0.5 U (1 - S): with S = 1 the reset factor is a constant 0, so dU_t/dU = 0 (no path through S)
    assert mem.grad.item() == 0.0 and spikes.item() == 1.0


def test_time_constants_from_softplus_and_dt():
    layer = RecurrentLIF(3, 4, tau_mem_ms=20.0, tau_syn_ms=10.0, dt_ms=50.0)
    alpha, beta = layer.decays()
    tau_syn, tau_mem = layer.time_constants_ms()
    assert torch.allclose(tau_mem, 20.0 * torch.log1p(torch.exp(layer.mem_param)))
    assert torch.allclose(beta, torch.exp(-50.0 / tau_mem)) and torch.allclose(alpha, torch.exp(-50.0 / tau_syn))
    assert ((layer.mem_param >= 0) & (layer.mem_param < 1)).all()  # p ~ U(0, 1)
    assert torch.allclose(decay(20.0, torch.zeros(1), 4.0), torch.tensor(math.exp(-4.0 / (20.0 * math.log(2)))))


def _loop_reference(layer: RecurrentLIF, x: torch.Tensor) -> torch.Tensor:
    """The equations of the module docstring, one step at a time."""
    b, t, _ = x.shape
    h = layer.n_hidden
    alpha, beta = layer.decays()
    x_prev, s, syn, mem = torch.zeros(b, x.shape[2]), torch.zeros(b, h), torch.zeros(b, h), torch.zeros(b, h)
    out = []
    for step in range(t):
        drive = x_prev @ layer.input.weight.T + s @ layer.recurrent.weight.T
        s, syn, mem = lif_step(drive, syn, mem, alpha, beta)
        out.append(s)
        x_prev = x[:, step]
    return torch.stack(out, 1)


def _active_rsnn(heads=((10.0, 50.0),), channels=20, hidden=16, seed=0) -> RSNN:
    torch.manual_seed(seed)
    model = RSNN(RSNNConfig(channels, hidden, readout_heads=heads))
    with torch.no_grad():
        model.lif.input.weight.normal_(0, 1.5)
        model.lif.recurrent.weight.normal_(0, 0.5)
    return model


def test_sequence_matches_step_loop_and_streams_across_calls():
    model = _active_rsnn()
    x = (torch.rand(3, 120, 20) < 0.2).float()
    y, _, spikes = model.sequence(x)
    assert torch.equal(spikes, _loop_reference(model.lif, x))
    assert 0.01 < spikes.mean() < 0.9
    y1, state, s1 = model.sequence(x[:, :47])
    y2, _, s2 = model.sequence(x[:, 47:], state)
    assert torch.equal(torch.cat([s1, s2], 1), spikes)
    assert torch.allclose(torch.cat([y1, y2], 1), y, atol=1e-6)


def test_readout_by_hand_and_heads_average():
    readout = LeakyReadout(2, 1, heads=((10.0, 50.0), (5.0, 20.0)), dt_ms=4.0)
    with torch.no_grad():
        readout.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    a, b = readout.decays()
    spikes = torch.tensor([[[1.0, 1.0], [0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])
    first = torch.tensor([[0.0, 1.0]])  # S_{-1}, the last spikes of a previous call
    y, _ = readout(spikes, first)
    syn, mem, expected = torch.zeros(2), torch.zeros(2), []
    for t in range(4):
        pre = first[0] if t == 0 else spikes[0, t - 1]  # step t sees S_{t-1}
        syn, mem = readout_step(torch.tensor([pre[0], 2.0 * pre[1]]), syn, mem, a, b)
        expected.append(mem.mean().item())
    assert y[0, :, 0].tolist() == pytest.approx(expected)
    assert y[0, 0, 0].item() == 0.0 and y[0, 1, 0].item() > 0  # Y_t sees I_{t-1}: one more step of delay
    assert readout(spikes)[0][0, 1, 0].item() == 0.0  # without ``first``, S_{-1} = 0


def test_snntorch_twin_gives_identical_outputs_and_gradients():
    for heads in (((10.0, 50.0),), HEADS["big"]):
        model = _active_rsnn(heads, seed=3)
        twin = SnnTorchRSNN.from_rsnn(model)
        x = (torch.rand(2, 80, 20) < 0.2).float()
        y_ours, y_twin = model(x), twin.sequence(x)
        assert torch.allclose(y_ours, y_twin, rtol=1e-5, atol=1e-6)  # fused loops: other summation order
        y_ours.square().sum().backward()
        y_twin.square().sum().backward()
        pairs = [(model.lif.input.weight, twin.fc_in.weight), (model.lif.recurrent.weight, twin.lif.recurrent.weight),
                 (model.lif.mem_param, twin.lif.mem_param), (model.readout.fc.weight, twin.fc_out.weight),
                 (model.readout.syn_param, twin.readout.syn_param)]
        for ours, theirs in pairs:
            assert ours.grad.abs().sum() > 0
            assert torch.allclose(ours.grad, theirs.grad, rtol=1e-4, atol=1e-6)


def _run_and_grads(model: RSNN, x: torch.Tensor):
    torch.manual_seed(7)  # the dropout seed
    model.zero_grad()
    y, _, spikes = model.sequence(x)
    (y.square().mean() + spikes.mean()).backward()
    return y.detach(), spikes.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_fused_cpu_loops_equal_the_pytorch_loops(monkeypatch, dtype, dropout):
    """The numba loops (lif_kernels) and the step-by-step PyTorch loops: same spikes, outputs and
    gradients, with the same hashed spike-dropout masks."""
    model = _active_rsnn(HEADS["big"], channels=20, hidden=24, seed=5).to(dtype)
    model.lif.dropout = dropout
    model.train()
    x = (torch.rand(37, 90, 20) < 0.2).to(dtype)  # 37 samples: blocks of 16 plus a partial one
    y, spikes, grads = _run_and_grads(model, x)
    assert 0.01 < (spikes > 0).float().mean() < 0.9
    if dropout:
        assert spikes.unique().tolist() == [0.0, pytest.approx(1 / 0.7)]
    monkeypatch.setattr(lif_kernels, "usable", lambda *tensors: False)
    y_ref, spikes_ref, grads_ref = _run_and_grads(model, x)
    assert torch.equal(spikes, spikes_ref)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(y, y_ref, rtol=tol, atol=tol)
    for name, grad in grads.items():
        assert grad.abs().sum() > 0, name
        assert torch.allclose(grad, grads_ref[name], rtol=100 * tol, atol=tol * grad.abs().max()), name


def test_hashed_dropout_keeps_the_right_share_independently():
    like = torch.zeros(1)
    masks = torch.stack([hashed_dropout(123, t, 250, 64, 0.3, like) for t in range(40)])
    kept = masks > 0
    assert abs(kept.float().mean().item() - 0.7) < 0.003  # 640,000 draws: std 0.0006
    assert masks[kept].unique().tolist() == [pytest.approx(1 / 0.7)]
    assert torch.equal(masks[5], hashed_dropout(123, 5, 250, 64, 0.3, like))  # a function of (seed, step)
    assert not torch.equal(masks[5], masks[6])
    assert not torch.equal(masks[5], hashed_dropout(124, 5, 250, 64, 0.3, like))
    # neighbouring neurons and steps are uncorrelated
    a, b = kept[:, :, :-1].flatten().float(), kept[:, :, 1:].flatten().float()
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < 0.01
    a, b = kept[:-1].flatten().float(), kept[1:].flatten().float()
    assert abs(torch.corrcoef(torch.stack([a, b]))[0, 1].item()) < 0.01


def test_output_scale_folds_into_readout_weights():
    model = _active_rsnn()
    x = (torch.rand(1, 60, 20) < 0.2).float()
    before = model(x).detach()
    model.set_output_scale([2.0, -0.5])
    after = model(x).detach()
    assert torch.allclose(after, before * torch.tensor([2.0, -0.5]), atol=1e-6)
    with pytest.raises(ValueError, match="bias"):
        model.set_output_scale([1.0, 1.0], shift=[0.1, 0.0])


def test_psp_energy_closed_form_without_synaptic_filter():
    # tau_syn -> 0 leaves U_{t+1} = beta U_t + (1 - beta) delta_{t,0}: sum of (1-beta)^2 beta^(2t) dt
    beta = math.exp(-4.0 / 20.0)
    expected = (1 - beta) ** 2 / (1 - beta ** 2) * 0.004
    assert psp_energy(20.0, 1e-6, 4.0) == pytest.approx(expected, rel=1e-6)


def test_fluctuation_driven_init_gives_target_membrane_fluctuations():
    """Poisson input at the assumed rate and no spiking: std(U) = sigma_u sqrt(feed-forward share)."""
    torch.manual_seed(0)
    layer = RecurrentLIF(200, 400, dt_ms=4.0)
    with torch.no_grad():
        layer.mem_param.fill_(math.log(math.e - 1))  # softplus = 1: nominal time constants
        layer.syn_param.fill_(math.log(math.e - 1))
    rate_hz = 10.0
    fluctuation_driven_init(layer, rate_hz, sigma_u=0.5, feedforward_share=0.9)
    layer.threshold = float("inf")  # measure the free membrane
    x = (torch.rand(4, 1500, 200) < rate_hz * 0.004).float()
    alpha, beta = layer.decays()
    drive = x @ layer.input.weight.T
    syn = mem = torch.zeros(4, 400)
    mems = []
    for t in range(x.shape[1]):
        _, syn, mem = lif_step(drive[:, t], syn, mem, alpha, beta, threshold=float("inf"))
        mems.append(mem)
    u = torch.stack(mems[300:], 1) - torch.stack(mems[300:], 1).mean(dim=1, keepdim=True)
    assert u.std().item() == pytest.approx(0.5 * math.sqrt(0.9), rel=0.05)
    with pytest.raises(ValueError, match="positive input rate"):
        fluctuation_driven_init(layer, 0.0)
