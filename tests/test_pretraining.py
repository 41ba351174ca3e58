"""Multi-session pre-training for every trainable family: the pooled recordings, the pre-trained
network as the target run's starting point, recorded in config.json, and the refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from motordecode.data.load import load_recording
from motordecode.data.splits import default_split
from motordecode.data.synthetic import SynthConfig, write_synthetic
from motordecode.decoders.registry import family_of
from motordecode.errors import ConfigError
from motordecode.pipeline import train_run
from motordecode.pretraining import pooled, pretrain_run
from motordecode.recipes import get_recipe, override

SHORT = {"aegru": {"epochs": 1, "pretrain_epochs": 1},
         "deltagru": {"epochs": 1, "pretrain_epochs": 1, "hidden": 8, "finetune_epochs": 1, "tbptt_ms": 400.0},
         "ann2d": {"epochs": 1, "pretrain_epochs": 1}}


@pytest.fixture(scope="module")
def monkey_sessions(tmp_path_factory):
    """Two sessions of one monkey (other seeds, other units) and a short target session."""
    folder = tmp_path_factory.mktemp("monkey")
    others = [write_synthetic(folder / f"indy_other{k}.mat", SynthConfig(monkey="indy", duration_s=40, seed=20 + k))
              for k in range(2)]
    target = write_synthetic(folder / "indy_target.mat", SynthConfig(monkey="indy", duration_s=30, seed=30))
    return others, target


def test_pooled_recordings_keep_each_sessions_parts_apart(monkey_sessions):
    others, _ = monkey_sessions
    recordings = [load_recording(f, bin_width_s=0.004) for f in others]
    joined, split = pooled(recordings, gap_s=1.0)
    gap = 250
    assert joined.n_samples == sum(r.n_samples for r in recordings) + 2 * gap
    second = recordings[0].n_samples + gap
    np.testing.assert_array_equal(joined.spikes[second:second + recordings[1].n_samples], recordings[1].spikes)
    assert not joined.spikes[recordings[0].n_samples:second].any()  # zeros between the sessions
    first_split = default_split(recordings[1])
    np.testing.assert_array_equal(split.val[-len(first_split.val):], first_split.val + second)
    assert len(split.test) == 0 and not np.isin(np.arange(recordings[0].n_samples, second), split.train).any()


@pytest.mark.parametrize("name", sorted(SHORT))
def test_pretraining_starts_the_target_run_and_is_recorded(tmp_path, monkey_sessions, name):
    others, target = monkey_sessions
    recipe = override(get_recipe(name), SHORT[name])
    train_run(recipe, target, seed=0, out=tmp_path / "run", progress=False, pretrain=others)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["pretrain"] == [str(f.resolve()) for f in others]
    blob = torch.load(config["pretrained"], weights_only=True)
    assert [h["stage"] for h in blob["history"]] == ["train"]  # the pre-training's one epoch
    rec = load_recording(target, bin_width_s=0.004)
    family = family_of(recipe)
    started = family.trainer(recipe, rec, default_split(rec), seed=0, progress=False,
                             initial=blob["state_dict"])._fresh_state()["model"].state_dict()
    scratch = family.trainer(recipe, rec, default_split(rec), seed=0, progress=False)._fresh_state()["model"].state_dict()
    assert all(torch.equal(started[k], v) for k, v in blob["state_dict"].items())
    assert any(not torch.equal(scratch[k], v) for k, v in blob["state_dict"].items())


def test_pretraining_refuses_sessions_with_other_channels(tmp_path, monkey_sessions, loco_file):
    others, target = monkey_sessions
    with pytest.raises(ConfigError, match="192 channels"):
        train_run(override(get_recipe("aegru"), SHORT["aegru"]), target, out=tmp_path / "run", progress=False,
                  pretrain=[others[0], loco_file])
    assert not (tmp_path / "run").exists()  # refused before anything was written
    with pytest.raises(ConfigError, match="192 channels"):
        pretrain_run(override(get_recipe("ann2d"), SHORT["ann2d"]), [others[0], loco_file], seed=0,
                     out=tmp_path / "pre")
