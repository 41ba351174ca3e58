"""Training on a CUDA GPU: every trainable recipe trains two epochs there, its run reads back on the
CPU, and a training started on the GPU resumes on the CPU. Where torch finds no CUDA device every
test here is skipped, with the reason."""

from __future__ import annotations

import json
import math
from dataclasses import fields

import numpy as np
import pytest
import torch

from motordecode.data.splits import default_split
from motordecode.decoders.registry import family_of, recipes
from motordecode.pipeline import load_for_recipe
from motordecode.recipes import get_recipe, override
from motordecode.training.epochs import STATE_FILE

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason=f"no CUDA device: torch {torch.__version__} built with CUDA {torch.version.cuda}")

SHORT = {"epochs": 2, "pretrain_epochs": 0, "finetune_epochs": 1, "prune_epochs": 1, "prune_max": 0.45}
TRAINABLE = sorted(name for name, recipe in recipes().items() if family_of(recipe).name != "classical")


def _short(name: str):
    recipe = get_recipe(name)
    names = {f.name for f in fields(recipe)}
    changes = {k: v for k, v in SHORT.items() if k in names}
    if "prune_start" in names and recipe.prune_start > 0:
        changes["prune_max"] = recipe.prune_start  # one pruning candidate
    elif "prune_max" in changes:
        del changes["prune_max"]
    return override(recipe, changes)


@pytest.mark.parametrize("name", TRAINABLE)
def test_two_epochs_on_cuda_read_back_on_the_cpu(indy_file, tmp_path, name):
    from motordecode.api import load_run
    from motordecode.pipeline import train_run

    row = train_run(_short(name), indy_file, seed=0, out=tmp_path / "run", progress=False, device="cuda")
    assert math.isfinite(row["r2"])
    machine = json.loads((tmp_path / "run" / "metrics.json").read_text())["provenance"]["machine"]
    assert machine["device"].startswith("cuda:") and machine["gpu"] == torch.cuda.get_device_name(0)
    saved = torch.load(tmp_path / "run" / "model.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert all(t.device.type == "cpu" for t in saved.values())
    run = load_run(tmp_path / "run")
    assert all(p.device.type == "cpu" for p in run.model.parameters())
    recording = run.load_recording(indy_file)
    velocity = run.stream()(recording.spikes[:50])
    assert velocity.shape == (50, 2) and np.isfinite(velocity).all()


@pytest.mark.parametrize("name", ["aegru-pruned", "tinyrsnn", "snn2", "deltagru"])
def test_a_cuda_checkpoint_resumes_on_the_cpu(indy_file, tmp_path, name):
    recipe = _short(name)
    recording = load_for_recipe(indy_file, recipe)
    split = default_split(recording)
    family = family_of(recipe)
    started = family.trainer(recipe, recording, split, seed=0, run_dir=tmp_path, progress=False, device="cuda")
    assert started.fit(stop_after_epochs=1) is None
    blob = torch.load(tmp_path / STATE_FILE, map_location="cpu", weights_only=True)
    assert "cuda_rng" in blob
    resumed = family.trainer(recipe, recording, split, seed=0, run_dir=tmp_path, progress=False,
                             device="cpu").fit(resume=True)
    assert all(p.device.type == "cpu" for p in resumed.model.parameters())
    assert math.isfinite(resumed.val_r2) and len(resumed.history) >= 2
