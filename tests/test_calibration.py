"""The realistic synthetic default is about as hard as the real sessions (docs/data.md has the full
calibration on the default 300 s session); on a shorter session the cheap part of the ranking holds."""

from __future__ import annotations

import pytest

from motordecode.data.synthetic import SynthConfig, write_synthetic
from motordecode.pipeline import train_run
from motordecode.recipes import get_recipe, override


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration")
    return {d: write_synthetic(folder / f"indy_{d}.mat", SynthConfig(duration_s=120, seed=0, difficulty=d))
            for d in ("easy", "realistic")}


def test_realistic_sessions_are_hard_and_keep_the_published_order(sessions, tmp_path):
    wiener = {d: train_run(get_recipe("wiener"), path, out=tmp_path / f"w-{d}", progress=False)["r2"]
              for d, path in sessions.items()}
    assert wiener["easy"] > 0.85 and wiener["realistic"] < wiener["easy"] - 0.2  # measured 0.93 / 0.45
    ann2d = train_run(get_recipe("ann2d"), sessions["realistic"], out=tmp_path / "ann2d", progress=False)["r2"]
    aegru = train_run(override(get_recipe("aegru-pruned"), {"epochs": 20, "finetune_epochs": 3}),
                      sessions["realistic"], out=tmp_path / "aegru", progress=False)["r2"]
    # measured 0.465 and 0.544: both near their published 0.58 and 0.71, AEGRU ahead of ANN2D
    assert 0.35 < ann2d < aegru < 0.75
