"""The public API at the package top: load_recording, train, load_run, evaluate, Run.stream."""

from __future__ import annotations

import json

import numpy as np
import pytest

import motordecode as md
from motordecode.decoders.neurobench.trainer import BaselineTrainer
from motordecode.data.splits import default_split
from motordecode.errors import ConfigError
from motordecode.recipes import get_recipe, override


def test_train_load_evaluate_and_stream_a_run(indy_file, tmp_path):
    rec = md.load_recording(indy_file)
    run = md.train("aegru", indy_file, out=tmp_path / "aegru", seed=1, epochs=1, n_sub=2, window_ms=80)
    assert run.recipe.epochs == 1 and run.recipe.n_sub == 2 and run.config["seed"] == 1
    assert set(run.metrics) >= {"r2", "effective_macs", "stateful", "window"}
    saved = (tmp_path / "aegru" / "metrics.json").read_text()
    again = md.evaluate(tmp_path / "aegru")
    assert again["r2"] == pytest.approx(run.metrics["r2"], abs=1e-12)
    assert (tmp_path / "aegru" / "metrics.json").read_text() == saved  # write=False leaves it
    predictions = np.load(tmp_path / "aegru" / "predictions.npz")
    test = predictions["test_index"]
    for mode in ("windowed", "stateful"):
        stream = md.load_run(tmp_path / "aegru").stream(mode)
        assert stream.mode == mode
        stream.reset(history=rec.spikes[:test[0]])
        pushed = np.stack([stream.push(s) for s in rec.spikes[test[:30]]])
        np.testing.assert_allclose(pushed, predictions[mode][:30], rtol=1e-5, atol=1e-6)
    assert run.stream().mode == "windowed"  # the published mode by default
    with pytest.raises(ConfigError, match="inference mode"):
        run.stream("sideways")
    with pytest.raises(ConfigError, match="unknown recipe field"):
        md.train("aegru", indy_file, out=tmp_path / "x", epoch=3)


def test_evaluate_on_another_recording_needs_the_same_channels(indy_file, loco_file, tmp_path):
    md.train("wiener", indy_file, out=tmp_path / "w")
    with pytest.raises(ConfigError, match="192 channels, but the run was trained on 96"):
        md.evaluate(tmp_path / "w", data=loco_file)


@pytest.mark.parametrize("kind", ["ann3d", "snn2"])
def test_baselines_resume_exactly(kind, indy_file, tmp_path):
    rec = md.load_recording(indy_file)
    split = default_split(rec)
    recipe = override(get_recipe(kind), {"epochs": 3})
    whole = BaselineTrainer(recipe, rec, split, seed=2, threads=1).fit()
    first = BaselineTrainer(recipe, rec, split, seed=2, run_dir=tmp_path, threads=1)
    assert first.fit(stop_after_epochs=2) is None
    resumed = BaselineTrainer(recipe, rec, split, seed=2, run_dir=tmp_path, threads=1).fit(resume=True)
    strip = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]  # noqa: E731
    assert strip(resumed.history) == strip(whole.history) and len(whole.history) == 3
    for key, value in whole.model.state_dict().items():
        assert np.array_equal(value.numpy(), resumed.model.state_dict()[key].numpy()), key


def test_cli_resume_of_a_baseline_run(indy_file, tmp_path, capsys):
    from motordecode.cli import main

    out = tmp_path / "run"
    args = ["train", "ann2d", "--data", str(indy_file), "--out", str(out), "--set", "epochs=2", "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args + ["--resume"]) == 0  # a finished run resumes to the same result
    assert json.loads(capsys.readouterr().out)["r2"] == first["r2"]


def test_label_scale_guards_a_constant_axis():
    from motordecode.training.labels import LabelScale

    labels = np.c_[np.arange(10.0), np.full(10, 3.0)].astype(np.float32)
    scale = LabelScale.fit(labels, np.arange(10))
    assert scale.scale[1] == 1.0 and scale.shift[1] == 3.0
    assert np.all(np.isfinite(scale.apply(labels))) and scale.apply(labels)[:, 1].tolist() == [0.0] * 10
    assert LabelScale.fit(labels, np.arange(10), center=False).shift.tolist() == [0.0, 0.0]


def test_bad_runs_and_inputs_give_one_line_errors(indy_file, tmp_path, capsys):
    from motordecode.cli import main
    from motordecode.metrics.results import metrics_record

    run = md.train("wiener", indy_file, out=tmp_path / "w")
    rng = np.random.default_rng(0)
    coarse = tmp_path / "coarse.npz"
    np.savez(coarse, spikes=rng.poisson(1.0, (400, 96)), velocity=rng.normal(size=(400, 2)), bin_width_s=0.05)
    assert main(["evaluate", str(tmp_path / "w"), "--data", str(coarse), "--no-write"]) == 2
    assert "samples of 50 ms, but the run decodes samples of 4 ms" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="samples of 50 ms"):
        run.load_recording(coarse)
    for name, text in (("metrics.json", "{not json"), ("config.json", "[1, 2]")):
        broken = tmp_path / f"broken-{name}"
        import shutil
        shutil.copytree(tmp_path / "w", broken)
        (broken / name).write_text(text)
        assert main(["evaluate", str(broken)]) == 2
        err = capsys.readouterr().err
        assert name in err and err.count("\n") == 1 and "internal error" not in err
    stream = run.stream()
    with pytest.raises(ConfigError, match="spike counts"):
        stream.push("abc")
    with pytest.raises(ConfigError, match="no samples"):
        stream(np.zeros((0, 96)))
    assert stream.push(np.ones(96, dtype=bool)).shape == (2,)
    # a diverged epoch's NaN R2 is written as null: metrics.json stays valid JSON
    row = {k: 0.5 for k in ("r2", "r2_x", "r2_y", "footprint_bytes", "deployed_footprint_bytes",
                            "connection_sparsity", "activation_sparsity", "dense_ops", "effective_macs",
                            "effective_acs", "parameter_count", "synaptic_operations", "ops_step_ms")}
    record = metrics_record({**row, "history": [{"val_r2": float("nan")}]}, recipe="x", session="s", seed=0,
                            val_r2=float("-inf"))
    assert record["val_r2"] is None and record["history"][0]["val_r2"] is None


def test_a_float16_gru_streams(indy_file, tmp_path):
    run = md.train("gru", indy_file, out=tmp_path / "g", epochs=1, n_sub=2, window_ms=40)
    rec = md.load_recording(indy_file)
    run.model.half()
    for mode in ("windowed", "stateful"):
        pushed = np.stack([run.stream(mode).push(s) for s in rec.spikes[:5]])
        assert pushed.shape == (5, 2) and np.isfinite(pushed).all()
