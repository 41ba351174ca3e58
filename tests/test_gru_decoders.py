"""AEGRU and vanilla GRU: shapes, loss terms, pruning, quantisation, the two inference modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motordecode.inference import StatefulInference, WindowedInference
from motordecode.metrics.footprint import footprint_bytes
from motordecode.models.build import build_branch, build_decoder
from motordecode.recipes import get_recipe, override
from motordecode.training.batches import TransformTable, poisson_jitter
from motordecode.training.losses import decoder_loss
from motordecode.training.prune import apply_masks, global_l1_masks, pruned_fraction
from motordecode.training.quantize import fixed_point, quantize_weights


def _aegru(n_channels=96, **changes):
    torch.manual_seed(0)
    return build_decoder(override(get_recipe("aegru"), changes), n_channels)


def test_shapes_and_parameter_counts():
    model, branch = _aegru(), build_branch(get_recipe("aegru"), 96)
    x = torch.rand(7, 5, 96)
    assert model(x).shape == (7, 5, 2)
    z = branch.sample(x, model.encode(x))
    assert z.shape == (7, 5, 32) and branch.log_rate(z).shape == (7, 5, 96)
    # FC(96->32) + GRU(32, 32) + FC(32->2), float32: 4 * (96*32+32 + 3*32*(32+32)+2*3*32 + 32*2+2),
    # plus the label scale and shift buffers (2 + 2)
    assert footprint_bytes(model) == 4 * (3104 + 6336 + 66 + 4)
    assert footprint_bytes(_aegru(standardize_labels=False)) == 4 * (3104 + 6336 + 66)
    gru = build_decoder(get_recipe("gru"), 96)
    assert gru.fc_in is None and gru.gru.input_size == 96 and gru(x).shape == (7, 5, 2)
    assert build_branch(get_recipe("gru"), 96) is None
    extras = _aegru(batchnorm=True, layernorm=True, dropout=0.5)
    assert extras.bn is not None and extras.ln is not None and extras.dropout.p == 0.5
    assert extras.eval()(x).shape == (7, 5, 2)


def test_loss_terms_by_hand():
    pred, target = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])
    log_rate, counts = torch.tensor([0.0, np.log(2.0)]), torch.tensor([1.0, 3.0])
    total, terms = decoder_loss(pred, target, log_rate, counts, mse_weight=10.0, pnll_weight=1.0)
    mse = (1 + 4) / 2
    pnll = ((1 - 0) + (2 - 3 * np.log(2.0))) / 2  # mean(lambda - n log lambda)
    assert terms["mse"] == pytest.approx(mse) and terms["pnll"] == pytest.approx(pnll)
    assert float(total) == pytest.approx(10 * mse + pnll)
    total, terms = decoder_loss(pred, target, mse_weight=3.0)
    assert "pnll" not in terms and float(total) == pytest.approx(3 * mse)


def test_poisson_jitter_and_transform_table():
    rng = np.random.default_rng(0)
    counts = np.full((200, 50), 4, dtype=np.int64)
    jittered = poisson_jitter(counts, 0.5, rng)
    changed = (jittered != counts).mean()
    assert 0.3 < changed < 0.5  # half are redrawn, and a Poisson(4) draw equals 4 with p ~ 0.2
    assert jittered.mean() == pytest.approx(4.0, abs=0.1)
    assert (poisson_jitter(counts, 0.0, rng) == counts).all()
    table = TransformTable(16)
    values = np.arange(40).reshape(4, 10)
    from motordecode.data.features import log_softplus
    np.testing.assert_array_equal(table(values), log_softplus(values.astype(np.float32)))


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.5, 0.9])
def test_global_pruning_meets_its_rate_and_removes_the_smallest(rate):
    model = _aegru()
    weights = model.pruned_weights()
    before = torch.cat([w.detach().abs().reshape(-1) for w in weights.values()])
    masks = global_l1_masks(weights, rate)
    apply_masks(weights, masks)
    assert pruned_fraction(weights) == pytest.approx(round(rate * before.numel()) / before.numel(), abs=1e-12)
    keep = torch.cat([m.reshape(-1) for m in masks.values()])
    if 0 < rate:
        assert before[~keep].max() <= before[keep].min()
    assert set(weights) == {"fc_in.weight", "gru.weight_ih_l0", "gru.weight_hh_l0", "fc_out.weight"}


def test_q17_grid_range_and_biases_untouched():
    w = torch.tensor([-3.0, -1.0, -0.5004, 0.0, 0.00390625, 0.3, 0.99, 2.0])
    q = fixed_point(w)
    assert torch.all(q * 128 == torch.round(q * 128))
    assert q.min() >= -1.0 and q.max() <= 127 / 128
    assert q.tolist() == pytest.approx([-1.0, -1.0, -64 / 128, 0.0, 0.0, 38 / 128, 127 / 128, 127 / 128])
    model = _aegru()
    bias = model.fc_in.bias.detach().clone()
    bits = quantize_weights(model.pruned_weights())
    assert bits == dict.fromkeys(model.pruned_weights(), 8)
    for w in model.pruned_weights().values():
        assert torch.all(w * 128 == torch.round(w * 128)) and w.min() >= -1 and w.max() <= 127 / 128
    assert torch.equal(model.fc_in.bias, bias)


def _stream(inference, model, spikes):
    decoder = inference.stream(model, spikes.shape[1])
    return np.stack([decoder.push(s) for s in spikes])


@pytest.mark.parametrize("n", [37, 40, 3])
def test_inference_modes_batch_equal_streaming(n):
    rng = np.random.default_rng(1)
    spikes = rng.poisson(0.3, size=(n, 12)).astype(np.uint8)
    model = _aegru(12, batchnorm=True, layernorm=True, dropout=0.5).eval()
    for inference in (WindowedInference(5, 4), StatefulInference(4)):
        ends = np.arange(n)
        with torch.no_grad():
            batch = inference.run(model, inference.inputs(spikes, ends)).numpy()
        np.testing.assert_allclose(batch, _stream(inference, model, spikes), rtol=1e-5, atol=1e-6)


def test_stateful_phases_are_separate_gru_streams():
    """Sample j continues the GRU of phase j mod s, fed the sub-windows ending at j, j - s, j - 2s, ..."""
    rng = np.random.default_rng(2)
    spikes = rng.poisson(0.5, size=(23, 6)).astype(np.uint8)
    model = _aegru(6).eval()
    inference = StatefulInference(3)
    x = inference.inputs(spikes, np.arange(23))
    with torch.no_grad():
        got = inference.run(model, x)
        for j in (0, 4, 21, 22):
            own = x[j % 3 :: 3][: j // 3 + 1]
            np.testing.assert_allclose(got[j], model(own[None])[0, -1], rtol=1e-5, atol=1e-6)
    # the windowed decoder is the same GRU restarted at every sample over the last k sub-windows
    windowed = WindowedInference(4, 3)
    with torch.no_grad():
        w = windowed.run(model, windowed.inputs(spikes, np.arange(23)))
        np.testing.assert_allclose(w[22], model(x[[13, 16, 19, 22]][None])[0, -1], rtol=1e-5, atol=1e-6)


def test_stateful_inference_needs_contiguous_samples():
    from motordecode.errors import ConfigError
    with pytest.raises(ConfigError, match="contiguous"):
        StatefulInference(2).inputs(np.zeros((10, 3), np.uint8), np.array([1, 2, 5]))
