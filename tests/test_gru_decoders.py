"""AEGRU and vanilla GRU: shapes, loss terms, pruning, quantisation, the two inference modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motordecode.data.features import WindowFeatures
from motordecode.decoders.base import Stream
from motordecode.decoders.gru import FAMILY
from motordecode.decoders.gru.batches import TransformTable, poisson_jitter
from motordecode.decoders.gru.inference import StatefulGRU, WindowedGRU
from motordecode.decoders.gru.trainer import build_branch
from motordecode.metrics.footprint import footprint_bytes
from motordecode.recipes import get_recipe, override
from motordecode.training.losses import decoder_loss
from motordecode.training.prune import apply_masks, global_l1_masks, pruned_fraction
from motordecode.training.quantize import fixed_point, quantize_weights


def _aegru(n_channels=96, **changes):
    torch.manual_seed(0)
    return FAMILY.build(override(get_recipe("aegru"), changes), n_channels, 2, 4.0)


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
    gru = FAMILY.build(get_recipe("gru"), 96, 2, 4.0)
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


def _windowed(model, channels, n_sub, width):
    return WindowedGRU(model, channels, WindowFeatures(n_sub, width, transform="log_softplus"))


def _stateful(model, channels, width):
    return StatefulGRU(model, channels, WindowFeatures(1, width, transform="log_softplus"))


def _pushed(decoder, spikes):
    stream = Stream(decoder)
    return np.stack([stream.push(s) for s in spikes])


def _sequence(decoder, x, state=None):
    with torch.no_grad():
        y, state = decoder.sequence(torch.as_tensor(x, dtype=torch.float32), state or decoder.initial_state(x.shape[1]))
    return y.numpy(), state


@pytest.mark.parametrize("n", [37, 40, 3])
def test_inference_modes_sequence_equal_steps(n):
    rng = np.random.default_rng(1)
    spikes = rng.poisson(0.3, size=(n, 12)).astype(np.uint8)
    model = _aegru(12, batchnorm=True, layernorm=True, dropout=0.5).eval()
    for decoder in (_windowed(model, 12, 5, 4), _stateful(model, 12, 4)):
        whole, _ = _sequence(decoder, spikes[:, None])
        np.testing.assert_allclose(whole[:, 0], _pushed(decoder, spikes), rtol=1e-5, atol=1e-6)
        # the same stream in pieces that start at every phase carries the state across calls
        state, parts = None, []
        for lo, hi in ((0, 1), (1, 6), (6, 7), (7, n)):
            y, state = _sequence(decoder, spikes[lo:hi, None], state)
            parts.append(y)
        np.testing.assert_allclose(np.concatenate(parts)[:, 0], whole[:, 0], rtol=1e-5, atol=1e-6)


def test_inference_batch_rows_are_independent_streams():
    rng = np.random.default_rng(3)
    spikes = rng.poisson(0.4, size=(29, 3, 8)).astype(np.uint8)
    model = _aegru(8).eval()
    for decoder in (_windowed(model, 8, 3, 2), _stateful(model, 8, 3)):
        together, state = _sequence(decoder, spikes)
        assert state.recent.shape[1] == 3
        for b in range(3):
            alone, _ = _sequence(decoder, spikes[:, b:b + 1])
            np.testing.assert_allclose(together[:, b], alone[:, 0], rtol=1e-5, atol=1e-6)


def test_stateful_phases_are_separate_gru_streams():
    """Sample j continues the GRU of phase j mod s, fed the sub-windows ending at j, j - s, j - 2s, ..."""
    rng = np.random.default_rng(2)
    spikes = rng.poisson(0.5, size=(23, 6)).astype(np.uint8)
    model = _aegru(6).eval()
    x = torch.from_numpy(WindowFeatures(1, 3, transform="log_softplus")(spikes)[:, 0])
    got, _ = _sequence(_stateful(model, 6, 3), spikes[:, None])
    with torch.no_grad():
        for j in (0, 4, 21, 22):
            own = x[j % 3 :: 3][: j // 3 + 1]
            np.testing.assert_allclose(got[j, 0], model(own[None])[0, -1], rtol=1e-5, atol=1e-6)
        # the windowed decoder is the same GRU restarted at every sample over the last k sub-windows
        w, _ = _sequence(_windowed(model, 6, 4, 3), spikes[:, None])
        np.testing.assert_allclose(w[22, 0], model(x[[13, 16, 19, 22]][None])[0, -1], rtol=1e-5, atol=1e-6)


def test_stream_started_mid_recording_reads_the_history():
    """A stream warmed with the samples before it sees the windows a stream running all along sees."""
    rng = np.random.default_rng(4)
    spikes = rng.poisson(0.4, size=(50, 5)).astype(np.uint8)
    model = _aegru(5).eval()
    decoder = _windowed(model, 5, 4, 3)
    full = Stream(decoder)(spikes)
    late = Stream(decoder)
    late.reset(history=spikes[:30])
    np.testing.assert_allclose(late(spikes[30:]), full[30:], rtol=1e-5, atol=1e-6)
    cold = Stream(decoder)(spikes[30:])
    assert not np.allclose(cold[:3], full[30:33])  # without the history the first windows are zero-padded
