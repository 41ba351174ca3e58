"""tinyRSNN training end to end on generated sessions: stages, pruning, fp16, resume, run directories."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from motordecode.data.load import load_recording
from motordecode.data.splits import Split, default_split
from motordecode.data.synthetic import SynthConfig, write_synthetic
from motordecode.errors import ConfigError
from motordecode.pipeline import evaluate_run, train_run
from motordecode.recipes import get_recipe, override
from motordecode.training.prune import per_matrix_masks
from motordecode.decoders.rsnn.pretrainer import SpikingPretrainer
from motordecode.decoders.rsnn.trainer import SpikingTrainer
from motordecode.training.sequences import time_split, window_starts

SMALL = {"hidden": 16, "batch_size": 16, "epochs": 2, "pretrain_epochs": 1, "prune_epochs": 1,
         "prune_steps": "0.1", "prune_max": 0.6, "prune_tolerance": 0.9}


def test_per_matrix_masks_prune_floor_of_each_matrix():
    weights = {"a": torch.randn(64, 96), "b": torch.randn(2, 64)}
    masks = per_matrix_masks(weights, 0.45)
    assert int((~masks["a"]).sum()) == 2764 and int((~masks["b"]).sum()) == 57  # floor(0.45 n), as published
    kept_min = weights["a"].abs()[masks["a"]].min()
    assert kept_min >= weights["a"].abs()[~masks["a"]].max()


def test_time_split_and_window_starts():
    split = Split(np.arange(0, 600), np.arange(600, 800), np.arange(800, 1000))
    train, val = time_split(split, 0.25)
    assert train[-1] + 1 == val[0] and len(val) == 200 and len(train) == 600
    starts = window_starts(np.concatenate([np.arange(0, 250), np.arange(300, 420)]), 100, 40)
    assert starts.tolist() == [0, 40, 80, 120, 300]
    with pytest.raises(ConfigError, match="val_fraction"):
        time_split(split, 0.9999)


@pytest.fixture(scope="module")
def second_indy(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("pre") / "indy_other.mat",
                           SynthConfig(monkey="indy", duration_s=40, seed=5, difficulty="easy"))


def test_train_prune_fp16_and_evaluate_round_trip(tmp_path, indy_file, second_indy):
    recipe = override(get_recipe("tinyrsnn"), SMALL)
    row = train_run(recipe, indy_file, seed=0, out=tmp_path / "run", progress=False, pretrain=[second_indy])
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["pretrain"] == [str(second_indy.resolve())]
    pretrained = tmp_path / "run" / "pretrain" / "pretrained.pt"
    assert config["pretrained"] == str(pretrained.resolve()) and row["pretraining"]["file"] == str(pretrained)
    assert [h["stage"] for h in torch.load(pretrained, weights_only=True)["history"]] == ["pretrain"]
    stages = [h["stage"] for h in history]
    assert stages[:2] == ["train", "train"] and "prune" in stages
    decisions = [h for h in history if h["stage"] == "prune-decision"]
    assert decisions[0]["rate"] == 0.4 and all("train_r2" in d for d in decisions)
    accepted = max([d["rate"] for d in decisions if d["accepted"]], default=0.0)
    recipe_state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    assert all(t.dtype == torch.float16 for t in recipe_state.values())
    for key in ("lif.input.weight", "lif.recurrent.weight", "readout.fc.weight"):
        w = recipe_state[key]
        assert int((w == 0).sum()) == int(accepted * w.numel())  # the masks held through retraining
    n_weights = 96 * 16 + 16 * 16 + 16 * 2
    assert row["footprint_bytes"] == 2 * (n_weights + 2 * 16 + 2 * 2)  # float16 weights and time constants
    assert row["dense_ops"] == n_weights and row["mode"] == "stream"
    assert np.isfinite(row["r2"]) and row["effective_macs"] == 0 and row["effective_acs"] > 0
    again = evaluate_run(tmp_path / "run", write=False)
    assert again["r2"] == row["r2"] and again["effective_acs"] == row["effective_acs"]


def test_resume_continues_exactly(tmp_path, indy_file):
    recipe = override(get_recipe("tinyrsnn"), {**SMALL, "pretrain_epochs": 0, "epochs": 3})
    rec = load_recording(indy_file, bin_width_s=0.004)
    split = default_split(rec)
    whole = SpikingTrainer(recipe, rec, split, seed=3, progress=False).fit()
    (tmp_path / "r").mkdir()
    first = SpikingTrainer(recipe, rec, split, seed=3, run_dir=tmp_path / "r", progress=False)
    assert first.fit(stop_after_epochs=4) is None  # stops inside the pruning stage
    resumed = SpikingTrainer(recipe, rec, split, seed=3, run_dir=tmp_path / "r", progress=False).fit(resume=True)
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert [h.get("val_r2") for h in whole.history] == [h.get("val_r2") for h in resumed.history]


def test_pretraining_inputs_are_checked(tmp_path, indy_file, loco_file):
    recipe = override(get_recipe("tinyrsnn"), SMALL)
    with pytest.raises(ConfigError, match="channels"):
        train_run(recipe, indy_file, out=tmp_path / "a", progress=False, pretrain=[loco_file])
    with pytest.raises(ConfigError, match="no pre-training stage"):
        train_run(get_recipe("wiener"), indy_file, out=tmp_path / "b", progress=False, pretrain=[indy_file])
    with pytest.raises(ConfigError, match="pretrain_epochs=N"):
        train_run(get_recipe("aegru"), indy_file, out=tmp_path / "c", progress=False, pretrain=[indy_file])
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_pretraining_survives_a_validation_r2_that_is_never_finite(tmp_path, indy_file, second_indy, monkeypatch):
    """No pre-training epoch is 'best' when every validation R2 is NaN; the network of the last one is kept."""
    monkeypatch.setattr(SpikingPretrainer, "r2", staticmethod(lambda model, windows: float("nan")))
    recipe = override(get_recipe("tinyrsnn"), {**SMALL, "pretrain_epochs": 2})
    pretrainer = SpikingPretrainer(recipe, [load_recording(indy_file), load_recording(second_indy)], seed=0,
                                   progress=False)
    result = pretrainer.fit()
    assert [h["stage"] for h in result.history] == ["pretrain", "pretrain"]
    assert all(np.isnan(h["val_r2"]) for h in result.history)
    assert any(not torch.equal(a, b) for a, b in zip(result.model.state_dict().values(),
                                                    pretrainer._fresh_state()["model"].state_dict().values()))


def test_one_pretraining_starts_every_fine_tuning(tmp_path, indy_file, second_indy):
    """A pre-training depends on the recipe, files and seed only; the fine-tunings start from its
    weights (not from the initialisation) and record it; one made from other files is refused."""
    from motordecode.pretraining import pretrain_run

    recipe = override(get_recipe("tinyrsnn"), {**SMALL, "prune_start": 0.0, "epochs": 1})
    files = [indy_file, second_indy]
    path = pretrain_run(recipe, files, seed=1, out=tmp_path / "pre")
    assert pretrain_run(recipe, files, seed=1, out=tmp_path / "pre") == path  # read, not trained again
    weights = torch.load(path, weights_only=True)["state_dict"]
    rec = load_recording(indy_file)
    start = SpikingTrainer(recipe, rec, default_split(rec), seed=1, progress=False, initial=weights)._fresh_state()
    scratch = SpikingTrainer(recipe, rec, default_split(rec), seed=1, progress=False)._fresh_state()
    for key, value in weights.items():
        assert torch.equal(start["model"].state_dict()[key], value), key
    assert not torch.equal(scratch["model"].state_dict()["lif.input.weight"], weights["lif.input.weight"])
    for target in files:
        train_run(recipe, target, seed=1, out=tmp_path / target.stem, progress=False, pretrain=files, pretrained=path)
        config = json.loads((tmp_path / target.stem / "config.json").read_text())
        assert config["pretrained"] == str(path.resolve()) and not (tmp_path / target.stem / "pretrain").exists()
    with pytest.raises(ConfigError, match="was pre-trained on"):
        train_run(recipe, indy_file, out=tmp_path / "other", progress=False, pretrain=[second_indy], pretrained=path)
    with pytest.raises(ConfigError, match="no pre-training stage"):
        train_run(get_recipe("kalman"), indy_file, out=tmp_path / "kalman", progress=False, pretrained=path)


def test_the_session_itself_is_read_once_when_it_is_also_pre_trained_on(tmp_path, indy_file, second_indy,
                                                                        monkeypatch):
    import motordecode.pipeline as pipeline

    reads = []
    original = pipeline.load_for_recipe
    monkeypatch.setattr(pipeline, "load_for_recipe", lambda path, recipe, heldout="include":
                        reads.append(str(path)) or original(path, recipe, heldout))
    recipe = override(get_recipe("tinyrsnn"), {**SMALL, "prune_start": 0.0, "epochs": 1})
    train_run(recipe, indy_file, out=tmp_path / "run", progress=False, pretrain=[indy_file, second_indy])
    assert reads.count(str(indy_file)) == 1 and reads.count(str(second_indy.resolve())) == 1
