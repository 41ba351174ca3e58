"""A decoder family defined here, registered at run time, trains, evaluates and streams through the
command line and the public API with no change to the package (docs/architecture.md shows it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pytest
import torch
from torch import nn

import motordecode
from motordecode.cli import main
from motordecode.decoders import Decoder, Family, register, unregister
from motordecode.errors import ConfigError
from motordecode.metrics.r2 import r2_score
from motordecode.recipes import RecipeFields, check
from motordecode.training.epochs import TrainResult


@dataclass(frozen=True)
class RidgeRecipe(RecipeFields):
    name: str
    model: str = "ridge-now"
    bin_ms: float = 4.0        # sample width when reading a session .mat
    alpha: float = 1.0         # ridge strength (x samples)

    def __post_init__(self):
        check(self.name, [(self.alpha >= 0, "alpha must be >= 0")])


class RidgeReadout(nn.Module):
    """v_t = W x_t + b: the velocity from the current sample's counts."""

    def __init__(self, n_channels: int, n_outputs: int):
        super().__init__()
        self.linear = nn.Linear(n_channels, n_outputs)

    def forward(self, x):
        return self.linear(x)


class NoState(NamedTuple):
    pass


class RidgeDecoder(Decoder):
    def initial_state(self, batch=1):
        return NoState()

    def sequence(self, x, state):
        return self.model(x), state


class RidgeTrainer:
    def __init__(self, recipe, recording, split, **_options):
        self.recipe, self.recording, self.split = recipe, recording, split

    def fit(self, resume=False):
        x = np.c_[self.recording.spikes.astype(np.float64), np.ones(self.recording.n_samples)]
        y = self.recording.velocity.astype(np.float64)
        train = self.split.train
        w = np.linalg.solve(x[train].T @ x[train] + self.recipe.alpha * len(train) * np.eye(x.shape[1]),
                            x[train].T @ y[train])
        model = RidgeReadout(self.recording.n_channels, y.shape[1])
        with torch.no_grad():
            model.linear.weight.copy_(torch.as_tensor(w[:-1].T))
            model.linear.bias.copy_(torch.as_tensor(w[-1]))
        val_r2 = r2_score(x[self.split.val] @ w, y[self.split.val])
        return TrainResult(model=model.eval(), val_r2=val_r2, history=[{"stage": "fit", "val_r2": val_r2}])


class RidgeFamily(Family):
    name = "ridge-now"
    recipe_type = RidgeRecipe
    recipes = {"ridge-now": RidgeRecipe("ridge-now")}

    def build(self, recipe, n_channels, n_outputs, step_ms):
        return RidgeReadout(n_channels, n_outputs)

    def decoder(self, model, recipe, step_ms, mode=None):
        self.resolve_mode(mode)
        return RidgeDecoder(model, model.linear.in_features)

    def trainer(self, recipe, recording, split, **options):
        return RidgeTrainer(recipe, recording, split, **options)


@pytest.fixture
def ridge_family():
    family = register(RidgeFamily())
    yield family
    unregister(family.name)


def test_a_registered_family_trains_evaluates_and_streams_through_the_cli(ridge_family, indy_file, tmp_path, capsys):
    run_dir = tmp_path / "ridge"
    assert main(["train", "ridge-now", "--data", str(indy_file), "--out", str(run_dir), "--set", "alpha=0.01",
                 "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert trained["recipe"] == "ridge-now" and saved["r2"] == trained["r2"] and trained["mode"] == "stream"
    assert 0.03 < trained["r2"] < 1.0  # measured 0.057: one binary 4 ms sample carries little velocity
    assert trained["effective_acs"] > 0  # binary spikes times weights: accumulates
    assert trained["footprint_bytes"] == 4 * (96 * 2 + 2)
    assert main(["evaluate", str(run_dir), "--json", "--no-write"]) == 0
    assert json.loads(capsys.readouterr().out)["r2"] == pytest.approx(trained["r2"], abs=1e-12)
    assert main(["train", "ridge-now", "--data", str(indy_file), "--out", str(tmp_path / "bad"),
                 "--set", "alpha=-1"]) == 2
    assert "alpha must be >= 0" in capsys.readouterr().err
    # the public API reads the same run and streams it
    run = motordecode.load_run(run_dir)
    assert run.recipe.alpha == 0.01 and run.metrics["r2"] == trained["r2"]
    predictions = np.load(run_dir / "predictions.npz")
    rec = motordecode.load_recording(indy_file)
    stream = run.stream()
    pushed = np.stack([stream.push(s) for s in rec.spikes[predictions["test_index"][:50]]])
    np.testing.assert_allclose(pushed, predictions["stream"][:50], rtol=1e-5, atol=1e-6)


def test_registry_refuses_taken_names(ridge_family):
    with pytest.raises(ConfigError, match="already registered"):
        register(RidgeFamily())
    clash = RidgeFamily()
    clash.name = "other"
    clash.recipes = {"aegru": RidgeRecipe("aegru")}
    with pytest.raises(ConfigError, match="taken"):
        register(clash)


def test_the_example_in_docs_architecture_runs(indy_file, tmp_path):
    """The 'how to add a decoder' example, executed as written, registers a family that trains."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace = {}
    try:
        exec(compile(code, "docs/architecture.md", "exec"), namespace)
        run = motordecode.train("ridge-now", indy_file, out=tmp_path / "doc", alpha=0.01)
        assert 0.03 < run.metrics["r2"] < 1.0 and np.isfinite(run.metrics["val_r2"])
        assert run.stream().push(np.zeros(96, np.uint8)).shape == (2,)
    finally:
        unregister("ridge-now")


def test_registry_refuses_a_model_name_of_another_family(ridge_family):
    clash = RidgeFamily()
    clash.name = "other"
    clash.recipes = {"other-ridge": RidgeRecipe("other-ridge", model="rsnn")}
    with pytest.raises(ConfigError, match="model names rsnn are taken by rsnn"):
        register(clash)
