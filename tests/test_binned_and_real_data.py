"""Generic binned recordings (.npz, MATLAB v5) and the real M1 recording in ../shared/data."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from motordecode.data.binned import load_binned
from motordecode.data.features import WindowFeatures
from motordecode.data.load import load_recording
from motordecode.data.splits import default_split
from motordecode.errors import DataFormatError


def test_real_recording_loads_through_the_generic_path(stevenson_file):
    rec = load_recording(stevenson_file)
    raw = scipy.io.loadmat(stevenson_file)
    assert rec.spikes.shape == (15536, 171)
    assert rec.velocity.shape == (15536, 2) and rec.velocity.dtype == np.float32
    assert rec.bin_width_s == pytest.approx(0.05)
    assert rec.duration_s == pytest.approx(776.8)
    assert rec.reach_bounds is None
    np.testing.assert_array_equal(rec.spikes, raw["spikes"].T)
    np.testing.assert_array_equal(rec.velocity, raw["handVel"][:2].T.astype(np.float32))
    split = default_split(rec)
    assert (len(split.train), len(split.val), len(split.test)) == (7768, 3884, 3884)
    assert split.train.max() < split.val.min() and split.val.max() < split.test.min()
    # real spikes carry velocity information: a least-squares fit on train predicts test velocity
    x = WindowFeatures(n_sub=4, sub_width=1)(rec.spikes).reshape(rec.n_samples, -1)
    x = np.hstack([x, np.ones((len(x), 1))])
    w, *_ = np.linalg.lstsq(x[split.train], rec.velocity[split.train], rcond=None)
    pred, true = x[split.test] @ w, rec.velocity[split.test]
    r2 = 1 - ((pred - true) ** 2).sum(0) / ((true - true.mean(0)) ** 2).sum(0)
    assert r2.mean() > 0.3, r2


def test_npz_in_either_orientation(tmp_path):
    rng = np.random.default_rng(0)
    spikes = rng.poisson(2, size=(200, 7))
    vel = rng.normal(size=(200, 2))
    np.savez(tmp_path / "a.npz", spikes=spikes, velocity=vel, bin_width_s=0.02)
    np.savez(tmp_path / "b.npz", spikes=spikes.T, velocity=vel.T, time=np.arange(200) * 0.02)
    for name in ("a.npz", "b.npz"):
        rec = load_recording(tmp_path / name)
        np.testing.assert_array_equal(rec.spikes, spikes)
        np.testing.assert_allclose(rec.velocity, vel.astype(np.float32))
        assert rec.bin_width_s == pytest.approx(0.02) and rec.n_samples == 200


@pytest.mark.parametrize("variables,message", [
    ({"velocity": np.zeros((10, 2)), "bin_width_s": 0.05}, "no spike-count variable"),
    ({"spikes": np.zeros((10, 3)), "bin_width_s": 0.05}, "no velocity variable"),
    ({"spikes": np.zeros((10, 3)), "velocity": np.zeros((10, 2))}, "give the bin width"),
    ({"spikes": np.zeros((9, 3)), "velocity": np.zeros((10, 2)), "bin_width_s": 0.05}, "neither axis has the 10"),
    ({"spikes": np.zeros((10, 3)), "velocity": np.full((10, 2), np.nan), "bin_width_s": 0.05}, "NaN"),
    ({"spikes": -np.ones((10, 3)), "velocity": np.zeros((10, 2)), "bin_width_s": 0.05}, ">= 0"),
    ({"spikes": np.zeros((5, 3)), "velocity": np.zeros((5, 2)), "time": np.array([0, 1, 1.0, 2, 3])},
     "finite and strictly increasing"),
    ({"spikes": np.zeros((5, 3)), "velocity": np.zeros((5, 2)), "time": np.array([0, 1, np.nan, 2, 3])},
     "finite and strictly increasing"),
    ({"spikes": np.zeros((10, 0)), "velocity": np.zeros((10, 2)), "bin_width_s": 0.05}, "non-empty real numeric"),
    ({"spikes": np.zeros((10, 3)) + 1j, "velocity": np.zeros((10, 2)), "bin_width_s": 0.05}, "real numeric"),
    ({"spikes": np.array(["a"] * 10), "velocity": np.zeros((10, 2)), "bin_width_s": 0.05}, "real numeric"),
    ({"spikes": np.zeros((10, 3)), "velocity": np.zeros((10, 2)), "bin_width_s": np.inf}, "positive number"),
    ({"spikes": np.zeros((10, 3)), "velocity": np.zeros((10, 2)), "bin_width_s": "x"}, "real numeric"),
])
def test_binned_errors(tmp_path, variables, message):
    np.savez(tmp_path / "bad.npz", **variables)
    with pytest.raises(DataFormatError, match=message):
        load_binned(tmp_path / "bad.npz")


def test_unreadable_binned_files(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"garbage")
    with pytest.raises(DataFormatError, match="not a readable .npz"):
        load_binned(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(DataFormatError, match="single array, not named variables"):
        load_binned(tmp_path / "single.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(DataFormatError, match="not a readable .npz"):
        load_binned(tmp_path / "empty.npz")
    (tmp_path / "junk.mat").write_bytes(b"MATLAB 5.0 garbage")
    with pytest.raises(DataFormatError, match="not a readable MATLAB v5"):
        load_recording(tmp_path / "junk.mat")
