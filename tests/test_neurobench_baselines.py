"""NeuroBench baselines (ANN2D, ANN3D, SNN2, SNN3D): published weights, buffers, neurons, recipes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import snntorch
import torch

from motordecode.cli import main
from motordecode.data.load import load_recording
from motordecode.metrics.harness import evaluate_stream
from motordecode.decoders.neurobench.checkpoint import load_neurobench_checkpoint
from motordecode.decoders.neurobench.models import BaselineConfig, build_baseline
from motordecode.decoders.neurobench.history import SampleHistory, history_table
from motordecode.decoders.neurobench.leaky import NBLeaky

WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "weights" / "neurobench"
SESSIONS = ["indy_20160622_01", "indy_20160630_01", "indy_20170131_02",
            "loco_20170210_03", "loco_20170215_02", "loco_20170301_05"]
FILES = {"ann2d": "2D_ANN_Weight/{}_model_state_dict.pth", "ann3d": "3D_ANN_Weight/{}_model_state_dict.pth",
         "snn3d": "SNN3_Weight/{}_model_state_dict.pth", "snn2": "SNN2_{}.pt"}
# footprint (bytes) and dense operations per step that runs its layers: Indy, Loco. ANN2D and SNN2
# are the published leaderboard figures; ANN3D and SNN3D follow from NeuroBench's same accounting.
FIGURES = {"ann2d": ((20824, 4704), (33496, 7776)), "snn2": ((19648, 4900), (38848, 9700)),
           "ann3d": ((94552, 23136), (180952, 44640)), "snn3d": ((24972, 32928), (43020, 54432))}
WARMUP = {"ann2d": 49}  # ANN2D outputs 0 and runs no layer for the first 49 samples


def _file(kind: str, session: str) -> Path:
    path = WEIGHTS / FILES[kind].format(session)
    assert path.is_file(), f"published weights missing: {path} (the tests need ../shared)"
    return path


@pytest.mark.parametrize("kind", sorted(FILES))
def test_every_published_file_loads_and_gives_the_published_figures(kind, indy_file, loco_file):
    recordings = {"indy": load_recording(indy_file), "loco": load_recording(loco_file)}
    for session in SESSIONS:
        monkey = session[:4]
        model = load_neurobench_checkpoint(kind, _file(kind, session))
        rec = recordings[monkey]
        steps = 1500
        row, pred = evaluate_stream(model, rec.spikes[:steps], rec.velocity[:steps])
        footprint, dense = FIGURES[kind][monkey == "loco"]
        assert row["footprint_bytes"] == footprint, session
        ran = steps - WARMUP.get(kind, 0)
        assert row["dense_ops"] * steps / ran == pytest.approx(dense, rel=1e-12), session
        assert np.isfinite(pred).all() and np.abs(pred).max() > 0
        if kind == "ann2d":
            assert np.all(pred[:49] == 0) and np.all(pred[49:].any(axis=1))
        if kind == "snn2":  # binary input and spikes: accumulates only
            assert row["effective_macs"] == 0 and row["effective_acs"] > 0
            assert 0.95 < row["activation_sparsity"] < 1.0


def _reference_buffer(x: np.ndarray, window: int = 50, bins: int = 7):
    """NeuroBench's buffer, literally: start with a zero row, append, cut to the last ``window`` rows."""
    buffer, summed, binned = np.zeros((1, x.shape[1])), [], []
    rows = window // bins
    for sample in x:
        buffer = np.vstack([buffer, sample])
        summed.append(None if len(buffer) <= window else buffer[-window:].sum(0))
        buffer = buffer[-window:]
        binned.append(np.stack([buffer[i * rows:(i + 1) * rows].sum(0) for i in range(bins)]))
    return summed, binned


def test_sample_history_follows_the_neurobench_buffer_and_streams():
    rng = np.random.default_rng(0)
    x = (rng.random((130, 5)) < 0.3).astype(np.float32)
    summed, binned = _reference_buffer(x)
    history = SampleHistory(5)
    sums, runs = history.summed(torch.as_tensor(x))
    assert runs.tolist() == [s is not None for s in summed] and int(runs.sum()) == 130 - 49
    assert np.allclose(sums.numpy(), np.stack([s for s in summed if s is not None]))
    history.reset()
    assert np.allclose(history.binned(torch.as_tensor(x)).numpy(), np.stack(binned))
    history.reset()  # in pieces: the buffer carries the recent rows across calls
    pieces = [history.binned(torch.as_tensor(x[a:b])) for a, b in ((0, 3), (3, 60), (60, 130))]
    assert np.allclose(torch.cat(pieces).numpy(), np.stack(binned))
    assert history.data_buffer.shape == (50, 5)
    # the training features, cut from running sums, equal the stream's once the buffer is full
    table, offset = history_table(x, 50, 7, "binned")
    ends = np.arange(49, 130)
    assert np.allclose(table(ends - offset), np.stack(binned)[49:])
    table, offset = history_table(x, 50, 7, "summed")
    assert np.allclose(table(ends - offset)[:, 0], sums.numpy())


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_nb_leaky_equals_snntorch_leaky(reset):
    torch.manual_seed(0)
    currents = torch.randn(60, 4, 8) * 0.8
    ours = NBLeaky(beta=0.9, threshold=0.7, reset=reset)
    theirs = snntorch.Leaky(beta=0.9, threshold=0.7, reset_mechanism=reset)
    mem = theirs.init_leaky()
    spikes_theirs, mems_theirs = [], []
    for current in currents:
        spike, mem = theirs(current, mem)
        spikes_theirs.append(spike)
        mems_theirs.append(mem)
    spikes = ours(currents)
    assert torch.equal(spikes, torch.stack(spikes_theirs))
    assert torch.allclose(ours.membranes, torch.stack(mems_theirs), atol=1e-6)
    assert 0 < spikes.mean() < 1
    # buffers as snntorch keeps them (what the published files and footprints contain)
    assert set(dict(ours.named_buffers())) == {"threshold", "graded_spikes_factor", "reset_mechanism_val", "beta"}


def test_import_checkpoint_and_evaluate_baselines(indy_file, tmp_path, capsys):
    for kind in ("ann2d", "snn2"):
        out = tmp_path / kind
        assert main(["import-checkpoint", kind, str(_file(kind, "indy_20160622_01")), "--out", str(out)]) == 0
        capsys.readouterr()
        assert main(["evaluate", str(out), "--data", str(indy_file), "--json"]) == 0
        row = json.loads(capsys.readouterr().out)
        assert row["footprint_bytes"] == FIGURES[kind][0][0] and np.isfinite(row["r2"])
    assert main(["import-checkpoint", "ann3d", str(_file("ann2d", "indy_20160622_01")), "--out",
                 str(tmp_path / "wrong")]) == 2  # a 2D file is not a 3D network: a clear error
    assert "not 7 bins" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["ann2d", "ann3d", "snn2", "snn3d"])
def test_baseline_recipes_train_and_evaluate_through_the_cli(kind, indy_file, tmp_path, capsys):
    out = tmp_path / kind
    assert main(["train", kind, "--data", str(indy_file), "--out", str(out), "--quiet", "--json",
                 "--set", "epochs=2"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["mode"] == "stream" and np.isfinite(row["r2"]) and len(row["history"]) == 2
    assert row["features"] == {"window_samples": 50, "bins": 7}
    assert main(["evaluate", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["r2"] == pytest.approx(row["r2"], abs=1e-6)


def test_snn2_streams_one_step_at_a_time_like_one_call():
    model = build_baseline(BaselineConfig("snn2", 12)).eval()
    with torch.no_grad():
        model.fc1.weight.normal_(0, 1.0)
        x = (torch.rand(80, 12) < 0.3).float()
        whole = model(x)
        model.reset()
        steps = torch.cat([model(x[t:t + 1]) for t in range(80)])
    assert torch.allclose(whole, steps, atol=1e-6)
