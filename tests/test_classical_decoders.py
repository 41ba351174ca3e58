"""Wiener and Kalman filters: recovery of known linear models, streaming modules, common commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from motordecode.cli import main
from motordecode.data.features import WindowFeatures
from motordecode.errors import ConfigError, MetricError
from motordecode.metrics.r2 import r2_per_axis
from motordecode.decoders.classical.kalman import KalmanDecoder, KalmanFilter
from motordecode.decoders.classical.wiener import WienerFilter


def _history_data(seed=0, T=6000, C=30, history=3, bin_samples=2):
    rng = np.random.default_rng(seed)
    X = rng.poisson(2.0, size=(T, C))
    true = rng.normal(size=(2, history * C)) * 0.1
    F = WindowFeatures(history, bin_samples).table(X).sums(np.arange(T)).reshape(T, -1)
    y = F @ true.T + np.array([0.5, -1.0]) + rng.normal(size=(T, 2)) * 0.01
    return X, y, true


def test_wiener_recovers_a_known_linear_map_and_streams():
    X, y, true = _history_data()
    w = WienerFilter(history=3, bin_samples=2).fit(X, y, index=np.arange(4000), val_index=np.arange(4000, 5000))
    assert np.abs(w.coef_ - true).max() < 2e-3
    assert w.intercept_ == pytest.approx([0.5, -1.0], abs=0.02)
    assert w.alpha_ <= 1e-2  # nearly noise-free data: a weak ridge wins on validation
    assert r2_per_axis(w.predict(X)[5000:], y[5000:]).min() > 0.999
    module = w.to_module().eval()
    x = torch.as_tensor(X[:900], dtype=torch.float32)
    with torch.no_grad():
        whole = module(x)
        module.reset()
        parts = torch.cat([module(x[:301]), module(x[301:])])  # the buffer carries the history
    assert torch.allclose(whole, parts, atol=1e-5)
    assert np.allclose(whole.numpy(), w.predict(X[:900]), atol=1e-4)


def test_wiener_strong_ridge_is_chosen_when_the_labels_are_noise():
    rng = np.random.default_rng(1)
    X = rng.poisson(2.0, size=(3000, 20))
    y = rng.normal(size=(3000, 2))
    w = WienerFilter(history=5).fit(X, y, index=np.arange(2000), val_index=np.arange(2000, 3000))
    assert w.alpha_ >= 10.0 and np.abs(w.coef_).max() < 0.01


def test_wiener_and_kalman_input_errors():
    with pytest.raises(ConfigError, match="history"):
        WienerFilter(history=0)
    with pytest.raises(ConfigError, match="val_index"):
        WienerFilter().fit(np.zeros((10, 3)), np.zeros((10, 2)))
    for unfitted in (WienerFilter().predict, WienerFilter().to_module, KalmanFilter().to_module):
        with pytest.raises(ConfigError, match="not fitted"):
            unfitted(np.zeros((10, 3))) if unfitted.__name__ == "predict" else unfitted()
    rng = np.random.default_rng(0)
    X, y = rng.poisson(1.0, (40, 3)).astype(float), rng.normal(size=(40, 2))
    X[35] = np.nan  # validation features that are not numbers: no ridge strength can be chosen
    with pytest.raises(ConfigError, match="finite validation R2"):
        WienerFilter(alphas=[0.0, 1.0]).fit(X, y, np.arange(30), np.arange(30, 40))
    with pytest.raises(MetricError, match="constant"):  # R2 is undefined on constant labels
        WienerFilter().fit(X[:30], np.ones((30, 2)), np.arange(20), np.arange(20, 30))
    Z, v, _, _ = _kalman_data(T=400)
    with pytest.raises(ConfigError, match="consecutive"):  # every other sample: no transitions to fit
        KalmanFilter().fit(Z, v, index=np.arange(0, 300, 2))


def _kalman_data(seed=0, T=8000, C=30):
    """Velocity AR(1), position its running sum, counts linear in both: the filter's own model."""
    rng = np.random.default_rng(seed)
    v = np.zeros((T, 2))
    for t in range(1, T):
        v[t] = 0.95 * v[t - 1] + rng.normal(size=2) * 0.3
    p = np.cumsum(v, axis=0)
    state = np.concatenate([p, v], axis=1)
    H = rng.normal(size=(C, 4)) * np.array([0.05, 0.05, 1.0, 1.0])
    Z = state @ H.T + 5.0 + rng.normal(size=(T, C)) * 0.5
    A = np.array([[1, 0, 0.95, 0], [0, 1, 0, 0.95], [0, 0, 0.95, 0], [0, 0, 0, 0.95]])
    return Z, v, A, H


def test_kalman_recovers_the_generating_model():
    Z, v, A, H = _kalman_data()
    k = KalmanFilter().fit(Z, v, index=np.arange(6000))
    assert np.abs(k.A_ - A).max() < 0.02
    assert np.abs(k.H_ - H).max() < 0.05 and np.abs(k.c_ - 5.0).max() < 0.5
    assert np.allclose(k.W_[2:, 2:], np.eye(2) * 0.09, atol=0.01)
    pred = k.predict(Z)
    assert r2_per_axis(pred[6000:], v[6000:]).min() > 0.9
    # the transient gains converge to the steady-state one
    transient = KalmanFilter(steady_state=False).fit(Z, v, index=np.arange(6000))
    assert len(transient.gains_) > 2 and np.allclose(transient.gains_[-1], k.gains_[-1], rtol=1e-5, atol=1e-9)
    assert not np.allclose(transient.predict(Z)[:3], pred[:3])
    assert np.allclose(transient.predict(Z)[2000:], pred[2000:], atol=1e-6)  # the start is forgotten


def test_kalman_module_streams_across_calls_and_reloads():
    Z, v, _, _ = _kalman_data(T=3000)
    k = KalmanFilter(bin_samples=3, steady_state=False).fit(np.round(np.abs(Z)), v, index=np.arange(2000))
    module = k.to_module()
    x = torch.as_tensor(np.round(np.abs(Z[:500])), dtype=torch.float32)
    with torch.no_grad():
        module.reset()
        whole = module(x)
        module.reset()
        parts = torch.cat([module(x[:7]), module(x[7:])])
    assert torch.allclose(whole, parts, atol=1e-5)
    assert np.allclose(whole.numpy(), k.predict(np.round(np.abs(Z[:500]))), atol=1e-4)  # both from s0
    # operations are counted on the counts of bins that are zero-padded before the stream starts
    (gain, counts), _ = KalmanDecoder.synaptic_inputs(module, (x,), whole)
    expected = WindowFeatures(1, 3).table(np.round(np.abs(Z[:500]))).sums(np.arange(500))[:, 0]
    assert gain.shape == (4, Z.shape[1]) and np.allclose(counts.numpy(), expected)
    fresh = KalmanDecoder(Z.shape[1], 4, 2, bin_samples=3)  # one stage; the saved one has more
    fresh.load_state_dict(module.state_dict())
    with torch.no_grad():
        fresh.reset()
        assert torch.allclose(fresh(x), whole)


@pytest.mark.parametrize("recipe", ["wiener", "kalman"])
def test_classical_recipes_train_and_evaluate_through_the_cli(recipe, indy_file, tmp_path, capsys):
    out = tmp_path / recipe
    assert main(["train", recipe, "--data", str(indy_file), "--out", str(out), "--quiet", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["mode"] == "stream" and np.isfinite(row["r2"])
    channels = json.loads((out / "config.json").read_text())["n_channels"]
    count = round(50 / 4)
    assert row["features"]["count_samples"] == count
    if recipe == "wiener":  # one Linear layer over 10 bins of history
        assert row["dense_ops"] == 10 * channels * 2
        assert row["footprint_bytes"] == 4 * (10 * channels * 2 + 2 + (10 * count - 1) * channels)
    else:  # K n_t and M s_{t-1}
        assert row["dense_ops"] == 4 * channels + 4 * 4
    # count features are MACs; a step whose inputs are all 0/1 counts as ACs (NeuroBench's rule)
    assert 0 < row["effective_acs"] < row["effective_macs"] <= row["dense_ops"]
    assert main(["evaluate", str(out), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["r2"] == pytest.approx(row["r2"], abs=1e-6)
