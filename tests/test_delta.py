"""The delta GRU: the cell against PyTorch's GRU, the stream against the batch, its operation
count against a brute-force count on the actual deltas, training on the stream and its resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from motordecode.data.load import load_recording
from motordecode.data.splits import default_split
from motordecode.decoders.base import Stream
from motordecode.decoders.delta import FAMILY
from motordecode.decoders.delta.cell import DeltaGRU
from motordecode.decoders.delta.trainer import DeltaTrainer
from motordecode.metrics.harness import evaluate_decoder
from motordecode.pipeline import train_run
from motordecode.recipes import get_recipe, override

TINY = {"hidden": 8, "epochs": 3, "batch_size": 4, "tbptt_ms": 400.0, "anneal_epochs": 2, "finetune_epochs": 1}


def _delta_cell(c: int, h: int, theta_x: float, theta_h: float, seed: int = 0) -> DeltaGRU:
    torch.manual_seed(seed)
    return DeltaGRU(c, h, theta_x, theta_h).double()


def test_with_zero_thresholds_the_cell_is_pytorchs_gru():
    cell = _delta_cell(5, 7, 0.0, 0.0)
    gru = nn.GRU(5, 7, batch_first=True).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(gru, f"{name}_l0").copy_(getattr(cell, name))
    x = torch.randn(3, 40, 5, dtype=torch.float64)
    with torch.no_grad():
        h, state, dx, dh = cell(x)
        reference, h_n = gru(x)
    torch.testing.assert_close(h, reference, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(state.h, h_n[0], rtol=1e-12, atol=1e-12)
    assert bool((dx != 0).any(dim=2).all())  # every step propagated its change


def _brute_force(cell: DeltaGRU, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The delta recurrence written out step by step in numpy, float64; (h, delta counts per step, MACs)."""
    w_ih, w_hh, b_ih, b_hh = (p.detach().double().numpy() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih,
                                                                   cell.bias_hh))
    tx, th = float(cell.theta_x), float(cell.theta_h)
    H = cell.hidden
    h = np.zeros(H)
    x_ref, h_ref, m = np.zeros(x.shape[1]), np.zeros(H), np.zeros(4 * H)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    hs, macs = [], 0.0
    for x_t in x:
        dx = np.where(np.abs(x_t - x_ref) > tx, x_t - x_ref, 0.0)
        dh = np.where(np.abs(h - h_ref) > th, h - h_ref, 0.0)
        x_ref, h_ref = x_ref + dx, h_ref + dh
        macs += sum(np.count_nonzero(w_ih[:, j]) for j in np.flatnonzero(dx))
        macs += sum(np.count_nonzero(w_hh[:, j]) for j in np.flatnonzero(dh)) + 3 * H
        gi, gh = w_ih @ dx, w_hh @ dh
        m += np.concatenate([gi[:2 * H] + gh[:2 * H], gi[2 * H:], gh[2 * H:]])
        r = sigmoid(m[:H] + b_ih[:H] + b_hh[:H])
        z = sigmoid(m[H:2 * H] + b_ih[H:2 * H] + b_hh[H:2 * H])
        n = np.tanh(m[2 * H:3 * H] + b_ih[2 * H:] + r * (m[3 * H:] + b_hh[2 * H:]))
        h = (1 - z) * n + z * h
        hs.append(h)
    return np.array(hs), macs


def test_with_thresholds_the_cell_follows_the_recurrence_written_out():
    cell = _delta_cell(6, 5, 0.3, 0.05, seed=2)
    x = np.cumsum(np.random.default_rng(0).normal(0, 0.2, (60, 6)), axis=0)  # slowly drifting inputs
    with torch.no_grad():
        h, _, dx, dh = cell(torch.from_numpy(x)[None])
    expected, _ = _brute_force(cell, x)
    np.testing.assert_allclose(h[0].numpy(), expected, rtol=1e-10, atol=1e-12)
    assert 0 < int((dx != 0).sum()) < dx.numel() and 0 < int((dh != 0).sum()) < dh.numel()


def _decoder(n_channels=12, hidden=6, seed=0, **recipe):
    recipe = override(get_recipe("deltagru"), {"hidden": hidden, "bin_ms": 4.0, **recipe})
    torch.manual_seed(seed)
    model = FAMILY.build(recipe, n_channels, 2, 4.0)
    with torch.no_grad():  # pruned matrices, so the count must read the weight masks
        model.fc_in.weight[:, ::4] = 0.0
        model.cell.weight_ih[:, ::3] = 0.0
    return FAMILY.decoder(model, recipe, 4.0), recipe


def test_streaming_step_by_step_equals_the_batch_sequence():
    decoder, _ = _decoder(theta_x=0.3, theta_u=0.1, theta_h=0.05)
    spikes = np.random.default_rng(1).poisson(0.3, (300, 12)).astype(np.float32)
    history = np.random.default_rng(2).poisson(0.3, (50, 12)).astype(np.float32)
    stream = Stream(decoder)
    stream.reset(history=history)
    pushed = np.stack([stream.push(s) for s in spikes])
    stream.reset(history=history)
    whole = stream(spikes)
    np.testing.assert_allclose(pushed, whole, rtol=1e-5, atol=1e-6)
    stream.reset(history=history)
    halves = np.concatenate([stream(spikes[:137]), stream(spikes[137:])])
    np.testing.assert_allclose(halves, whole, rtol=1e-5, atol=1e-6)


def test_operation_count_equals_a_brute_force_count_on_the_actual_deltas():
    decoder, recipe = _decoder(theta_x=0.3, theta_u=0.1, theta_h=0.05)
    spikes = np.random.default_rng(3).poisson(0.3, (400, 12)).astype(np.float32)
    row, _ = evaluate_decoder(decoder, [(None, spikes)], np.random.default_rng(4).normal(size=(400, 2)))
    model = decoder.model.double()
    x = decoder.features(spikes)[:, 0].astype(np.float64)  # what the input layer reads at each step
    w_u, b_u = model.fc_in.weight.detach().numpy(), model.fc_in.bias.detach().numpy()
    x_ref, macs, u = np.zeros(12), 0.0, []
    for x_t in x:  # the input layer's deltas, written out
        dx = np.where(np.abs(x_t - x_ref) > recipe.theta_x, x_t - x_ref, 0.0)
        x_ref = x_ref + dx
        macs += sum(np.count_nonzero(w_u[:, j]) for j in np.flatnonzero(dx))
        u.append(w_u @ x_ref + b_u)
    h, cell_macs = _brute_force(model.cell, np.array(u))
    w_out = model.fc_out.weight.detach().numpy()
    macs += cell_macs + sum(np.count_nonzero(w_out[:, j]) for t in range(len(h)) for j in np.flatnonzero(h[t]))
    assert row["effective_macs"] == pytest.approx(macs / 400, rel=1e-9)
    dense = 12 * 6 + 3 * 6 * (6 + 6) + 3 * 6 + 2 * 6
    assert row["dense_ops"] == dense and row["effective_macs"] < 0.8 * dense and row["effective_acs"] == 0


def test_training_on_the_stream_prunes_quantises_and_reports_its_counts(tmp_path, indy_file):
    recipe = override(get_recipe("deltagru"), TINY)
    row = train_run(recipe, indy_file, seed=0, out=tmp_path / "run", progress=False)
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    assert [h["stage"] for h in history] == ["train"] * 3 + ["finetune"]
    assert [h["threshold_share"] for h in history[:3]] == [0.5, 1.0, 1.0]
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    weights = torch.cat([state[k].reshape(-1) for k in ("fc_in.weight", "cell.weight_ih", "cell.weight_hh",
                                                        "fc_out.weight")])
    assert int((weights == 0).sum()) >= int(0.5 * weights.numel())
    assert torch.equal(weights * 128, torch.round(weights * 128))  # on the Q1.7 grid
    thresholds = (state["fc_in.theta"], state["cell.theta_x"], state["cell.theta_h"])
    assert [float(t) for t in thresholds] == pytest.approx([recipe.theta_x, recipe.theta_u, recipe.theta_h])
    assert np.isfinite(row["r2"])
    assert 0 < row["effective_macs"] < row["dense_ops"] and row["mode"] == "stream"


def test_resume_equals_an_uninterrupted_run(tmp_path, indy_file):
    recipe = override(get_recipe("deltagru"), TINY)
    rec = load_recording(indy_file, bin_width_s=0.004)
    split = default_split(rec)
    whole = DeltaTrainer(recipe, rec, split, seed=5, progress=False).fit()
    first = DeltaTrainer(recipe, rec, split, seed=5, run_dir=tmp_path, progress=False)
    assert first.fit(stop_after_epochs=2) is None
    resumed = DeltaTrainer(recipe, rec, split, seed=5, run_dir=tmp_path, progress=False).fit(resume=True)
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert [h["val_r2"] for h in whole.history] == [h["val_r2"] for h in resumed.history]


def test_delta_sweep_draws_thresholds_beside_aegru_pruned(tmp_path, indy_file, capsys):
    from motordecode.cli import main

    out = tmp_path / "sweep"
    argv = ["sweep", "delta", "--data", str(indy_file), "--out", str(out), "--thetas", "0,0.3", "--workers", "2",
            "--set", "epochs=1", "--set", "finetune_epochs=1", "--set", "hidden=8", "--set", "tbptt_ms=400"]
    assert main(argv) == 0
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert [r["point"] for r in rows] == ["theta0", "theta0.3", "aegru-pruned"]
    assert rows[2]["recipe"] == "aegru-pruned" and "stateful_r2" in rows[2] and "stateful_r2" not in rows[0]
    assert rows[1]["effective_macs"] < rows[0]["effective_macs"]  # higher thresholds, fewer products
    assert (out / "sweep.png").stat().st_size > 1000 and "aegru-pruned" in (out / "sweep.md").read_text()
    assert main(["sweep", "nk", "--data", str(indy_file), "--thetas", "0.1"]) == 2
    assert "belongs to the delta sweep" in capsys.readouterr().err
