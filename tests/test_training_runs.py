"""Training, resume, compression through fine-tuning, run directories, and the train/evaluate CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from motordecode.cli import main
from motordecode.data.load import load_reaching
from motordecode.data.splits import default_split
from motordecode.recipes import get_recipe, override
from motordecode.runs import MODEL_FILE
from motordecode.decoders.gru.trainer import Trainer
from motordecode.training.epochs import STATE_FILE

SMALL = {"epochs": 2, "batch_size": 64, "finetune_epochs": 2, "window_ms": 80.0, "n_sub": 4, "hidden": 8,
         "logvar_hidden": 8}


@pytest.fixture(scope="module")
def session(indy_file):
    recording = load_reaching(indy_file)
    return recording, default_split(recording)


def _states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("stop_after", [1, 3])  # inside training; inside the fine-tune
def test_resume_equals_an_uninterrupted_run(session, tmp_path, stop_after):
    recording, split = session
    recipe = override(get_recipe("aegru-pruned"), {**SMALL, "dropout": 0.5})
    whole = Trainer(recipe, recording, split, seed=3, progress=False).fit()
    interrupted = Trainer(recipe, recording, split, seed=3, run_dir=tmp_path, progress=False)
    assert interrupted.fit(stop_after_epochs=stop_after) is None
    assert (tmp_path / STATE_FILE).is_file()
    torch.manual_seed(12345)  # whatever happened in between must not matter
    np.random.seed(7)
    resumed = Trainer(recipe, recording, split, seed=3, run_dir=tmp_path, progress=False).fit(resume=True)
    assert _states_equal(whole.model, resumed.model)
    strip = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    assert strip(whole.history) == strip(resumed.history) and whole.val_r2 == resumed.val_r2
    assert all(h["seconds"] > 0 for h in whole.history)  # each epoch's wall time is recorded


def test_masks_stay_zero_through_fine_tuning_and_weights_are_q17(session):
    recording, split = session
    recipe = override(get_recipe("aegru-pruned"), SMALL)
    result = Trainer(recipe, recording, split, seed=0, progress=False).fit()
    weights = result.model.pruned_weights()
    total = sum(w.numel() for w in weights.values())
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    # exactly the pruned half stays zero (quantisation can only add zeros, Q1.7 rounds |w| < 1/256)
    assert zeros >= round(0.5 * total)
    assert [h["stage"] for h in result.history] == ["train", "train", "finetune", "finetune"]
    for w in weights.values():
        assert torch.all(w * 128 == torch.round(w * 128)) and w.min() >= -1 and w.max() <= 127 / 128
    assert result.deployed_bits == dict.fromkeys(weights, 8)
    unquantised = Trainer(override(recipe, {"quant_bits": 0}), recording, split, seed=0, progress=False).fit()
    w = unquantised.model.pruned_weights()
    assert sum(int((t == 0).sum()) for t in w.values()) == round(0.5 * total)  # masks held through 2 epochs


def test_training_learns_the_synthetic_session(session):
    recording, split = session
    recipe = override(get_recipe("aegru"), {"epochs": 4, "window_ms": 200.0})
    result = Trainer(recipe, recording, split, seed=0, progress=False).fit()
    assert result.val_r2 > 0.3
    assert result.val_r2 == max(h["val_r2"] for h in result.history)


def test_cli_train_then_evaluate(indy_file, tmp_path, capsys):
    out = tmp_path / "run"
    sets = [f"--set={k}={v}" for k, v in SMALL.items()]
    assert main(["train", "aegru-pruned", "--data", str(indy_file), "--out", str(out), "--quiet", *sets]) == 0
    printed = capsys.readouterr().out
    assert "(windowed)" in printed and "(stateful)" in printed and "AEGRU pruned 50%" in printed
    for name in ("config.json", MODEL_FILE, STATE_FILE, "metrics.json", "predictions.npz"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["recipe"] == "aegru-pruned" and metrics["seed"] == 0
    # connection sparsity also counts the GRU biases, which are not pruned (hidden 8: 1168 weights, 48 biases)
    assert metrics["connection_sparsity"] >= 584 / (1168 + 48)
    assert metrics["deployed_footprint_bytes"] < metrics["footprint_bytes"]
    assert metrics["stateful"]["effective_macs"] < metrics["effective_macs"]
    assert main(["evaluate", str(out), "--json", "--no-write"]) == 0
    again = json.loads(capsys.readouterr().out)
    for key in ("r2", "r2_x", "r2_y", "effective_macs", "dense_ops", "footprint_bytes", "deployed_footprint_bytes"):
        assert again[key] == pytest.approx(metrics[key], rel=1e-6), key
    assert again["stateful"]["r2"] == pytest.approx(metrics["stateful"]["r2"], rel=1e-6)
    assert main(["evaluate", str(out)]) == 0  # rewrites metrics.json, keeping what training recorded
    rewritten = json.loads((out / "metrics.json").read_text())
    assert rewritten["history"] == metrics["history"] and rewritten["val_r2"] == metrics["val_r2"]
    assert rewritten["r2"] == pytest.approx(metrics["r2"], rel=1e-6)


def test_cli_train_errors_are_one_line(indy_file, tmp_path, capsys):
    def fails(*argv, match):
        assert main(list(argv)) == 2
        err = capsys.readouterr().err
        assert match in err and "Traceback" not in err and err.count("\n") == 1, err

    fails("train", "nope", "--data", str(indy_file), match="unknown recipe")
    fails("train", "aegru", "--data", str(indy_file), "--set", "epochz=3", match="unknown recipe field")
    fails("train", "aegru", "--data", str(indy_file), "--set", "epochs=three", match="expected a value of type int")
    fails("train", "aegru", "--data", str(tmp_path / "missing.mat"), match="does not exist")
    fails("train", "aegru", "--data", str(indy_file), "--out", str(tmp_path / "none"), "--resume", match="cannot resume")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("keep me")
    fails("train", "aegru", "--data", str(indy_file), "--out", str(tmp_path / "busy"), match="not empty")
    assert (tmp_path / "busy" / "x").read_text() == "keep me"
    fails("evaluate", str(tmp_path / "busy"), match="not a run directory")


def test_resume_refuses_a_changed_recipe(indy_file, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["train", "aegru", "--data", str(indy_file), "--out", str(out), "--quiet",
            *[f"--set={k}={v}" for k, v in SMALL.items()]]
    assert main(base) == 0
    capsys.readouterr()
    assert main(base + ["--set", "lr=0.01", "--resume"]) == 2
    assert "different recipe" in capsys.readouterr().err
    assert main(base + ["--resume"]) == 0  # a finished run resumes to the same result


def test_sweep_runs_points_in_parallel_and_continues(indy_file, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "prune", "--data", str(indy_file), "--out", str(out), "--rates", "0,0.5", "--workers", "2",
            *[f"--set={k}={v}" for k, v in SMALL.items()]]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "prune0 " in printed and "prune0.5 " in printed
    rows = json.loads((out / "sweep.json").read_text())["rows"]
    assert [r["point"] for r in rows] == ["prune0", "prune0.5"]
    assert rows[0]["connection_sparsity"] < 0.1 < 0.45 < rows[1]["connection_sparsity"]
    assert rows[1]["effective_macs"] < rows[0]["effective_macs"]
    assert (out / "sweep.png").stat().st_size > 1000 and (out / "sweep.md").is_file()
    record = json.loads((out / "sweep.json").read_text())["provenance"]  # the runs' provenance, as in the footer
    assert record["sessions"]["indy_synth"]["generator"]["seed"] == 1 and record["versions"][0]["cells"] == 2
    variants = record["overrides"]["aegru"]  # each point's settings that differ from the recipe
    assert all(v["epochs"] == 2 for v in variants) and sorted(v.get("prune_rate", 0.0) for v in variants) == [0.0, 0.5]
    stamp = (out / "prune0-seed0" / "metrics.json").stat().st_mtime_ns
    assert main(argv) == 0  # finished points are read back, not retrained
    assert (out / "prune0-seed0" / "metrics.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "sweep.json").read_text())["rows"] == rows


def test_nk_sweep_points_and_errors(indy_file, tmp_path, capsys):
    from motordecode.sweep import nk_points, parse_grid
    assert nk_points(parse_grid("100x5,200x10")) == [("N100-k5", {"window_ms": 400.0, "n_sub": 5}),
                                                    ("N200-k10", {"window_ms": 800.0, "n_sub": 10})]
    assert main(["sweep", "nk", "--data", str(indy_file), "--grid", "100by5"]) == 2
    assert "NxK" in capsys.readouterr().err
    assert main(["sweep", "nk", "--data", str(indy_file), "--rates", "0.5"]) == 2
    assert "belongs to the prune and delta sweeps" in capsys.readouterr().err
    assert main(["sweep", "prune", "--data", str(indy_file), "--seeds", "0,1.5"]) == 2
    assert "--seeds expects comma-separated integers" in capsys.readouterr().err
