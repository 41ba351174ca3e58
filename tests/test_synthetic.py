"""The synthetic generator: real layout, task structure, tuned units, determinism."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from motordecode.data.load import load_reaching
from motordecode.data.read_mat import ReachingFile
from motordecode.data.synthetic import SynthConfig, generate_session, write_synthetic
from motordecode.errors import ConfigError


@pytest.fixture(scope="module")
def session():
    return generate_session(SynthConfig(duration_s=120, seed=11, difficulty="easy"))


def test_layout_matches_the_zenodo_files(indy_file):
    with open(indy_file, "rb") as fh:
        assert fh.read(19) == b"MATLAB 7.3 MAT-file"
    with h5py.File(indy_file, "r") as f:
        assert f["t"].shape == (1, 10000) and f["cursor_pos"].shape == (2, 10000)
        assert f["target_pos"].shape == (2, 10000) and f["finger_pos"].shape == (3, 10000)
        assert f["spikes"].shape == (5, 96) and f["wf"].shape == (5, 96) and f["chan_names"].shape == (1, 96)
        assert f["spikes"].attrs["MATLAB_class"] == b"cell" and f["t"].attrs["MATLAB_class"] == b"double"
        kinds = {"empty": 0, "times": 0}
        for ref in f["spikes"][()].ravel():
            node = f[ref]
            if node.attrs.get("MATLAB_empty", 0):
                assert node.dtype == np.uint64 and node[()].tolist() == [0, 0]
                kinds["empty"] += 1
            else:
                assert node.shape[0] == 1 and node.shape[1] > 0
                kinds["times"] += 1
        assert kinds["empty"] > 0 and kinds["times"] > 0
        name = f[f["chan_names"][0, 0]][()]
        assert "".join(map(chr, name.ravel())) == "elec1"


def test_continuous_reaching_without_gaps(session):
    pos, target = session.cursor_pos, session.target_pos
    assert np.isfinite(target).all()  # every sample has a target
    switches = np.nonzero(np.any(target[1:] != target[:-1], axis=1))[0]
    assert len(switches) > 60
    # a new target appears when the cursor has reached the current one
    assert np.linalg.norm(pos[switches] - target[switches], axis=1).max() < 6.0
    speed = np.linalg.norm(np.gradient(pos, axis=0) / 0.004, axis=1)
    assert 100 < np.percentile(speed, 99) < 1000  # mm/s, hand-like
    accel = np.abs(np.diff(speed)) / 0.004
    assert np.percentile(accel, 99) < 1e4  # smooth profiles, no jumps


def test_units_channels_and_tuning(session):
    units = session.units
    per_channel = np.bincount(units["channel"], minlength=96)
    assert per_channel.max() <= 5 and (per_channel == 0).sum() >= 1 and (per_channel >= 1).sum() > 80
    assert len(session.spike_times) == 96
    rates = np.array([len(times) / 120.0 for units in session.spike_times for times in units])
    assert 2 < np.median(rates) < 30 and rates.std() > 1
    # spike counts of a unit follow the velocity along its preferred direction
    vel = np.gradient(session.cursor_pos, axis=0) / 0.004
    u = int(np.argmax(units["kappa"] * units["baseline_hz"]))
    ch = units["channel"][u]
    times = session.spike_times[ch][int(np.sum(units["channel"][:u] == ch))]
    counts = np.histogram(times, bins=np.append(session.t, session.t[-1] + 0.004) - 0.004)[0]
    lead = units["lag_steps"][u]
    d = np.array([np.cos(units["direction"][u]), np.sin(units["direction"][u])])
    smooth = np.convolve(counts, np.ones(25), "same")
    assert np.corrcoef(smooth[:-lead], (vel @ d)[lead:])[0, 1] > 0.3


def test_deterministic_by_seed(tmp_path):
    a = load_reaching(write_synthetic(tmp_path / "indy_a.mat", SynthConfig(duration_s=8, seed=4)))
    b = load_reaching(write_synthetic(tmp_path / "indy_b.mat", SynthConfig(duration_s=8, seed=4)))
    c = load_reaching(write_synthetic(tmp_path / "indy_c.mat", SynthConfig(duration_s=8, seed=5)))
    np.testing.assert_array_equal(a.spikes, b.spikes)
    np.testing.assert_array_equal(a.velocity, b.velocity)
    assert not np.array_equal(a.spikes, c.spikes)


def test_easy_sessions_are_the_generator_before_realistic_sessions_existed():
    """SHA-256 of a 20 s session (times, positions, every spike time), computed with the generator
    of commit 567998a, before the difficulty existed."""
    import hashlib

    s = generate_session(SynthConfig(duration_s=20, seed=0, difficulty="easy"))
    digest = hashlib.sha256()
    for array in (s.t, s.cursor_pos, s.target_pos, s.finger_pos, *(t for ch in s.spike_times for t in ch)):
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    assert digest.hexdigest() == "f89acf9f85e72f1cdb8660e14ebffb51692747b95bb7993659d9905b97da9cb5"


def test_realistic_sessions_are_deterministic_and_differ_from_easy():
    a, b = (generate_session(SynthConfig(duration_s=20, seed=9)) for _ in range(2))
    easy = generate_session(SynthConfig(duration_s=20, seed=9, difficulty="easy"))
    assert a.units.keys() == b.units.keys() and all(np.array_equal(a.units[k], b.units[k]) for k in a.units)
    for ua, ub in zip(a.spike_times, b.spike_times):
        assert all(np.array_equal(x, y) for x, y in zip(ua, ub))
    np.testing.assert_array_equal(a.cursor_pos, b.cursor_pos)
    assert not np.array_equal(a.cursor_pos, easy.cursor_pos)  # pauses and speeds differ


def test_realistic_sessions_have_untuned_units_drift_shared_variability_and_pauses():
    from motordecode.data.synthetic import REALISTIC

    s = generate_session(SynthConfig(duration_s=240, seed=3))
    kappa = s.units["kappa"]
    untuned = np.mean(kappa == 0)
    assert abs(untuned - REALISTIC.untuned) < 0.08 and np.mean((kappa > 0) & (kappa < 0.3)) > 0.25
    assert s.units["loadings"].shape == (len(kappa), REALISTIC.latents)
    # slow drift: an untuned unit's rate changes between the first and the last quarter
    ratios = []
    for u in np.nonzero(kappa == 0)[0][:40]:
        ch = s.units["channel"][u]
        times = s.spike_times[ch][int(np.sum(s.units["channel"][:u] == ch))]
        early = np.sum(times < s.t[0] + 60) / 60
        late = np.sum(times > s.t[-1] - 60) / 60
        ratios.append(np.log((late + 0.1) / (early + 0.1)))
    assert np.std(ratios) > 0.15
    # shared variability: untuned units co-fluctuate (loadings have either sign: mean |correlation|)
    edges = np.arange(s.t[0], s.t[-1], 0.1)
    counts = np.array([np.histogram(s.spike_times[s.units["channel"][u]][
        int(np.sum(s.units["channel"][:u] == s.units["channel"][u]))], edges)[0]
        for u in np.nonzero(kappa == 0)[0][:30]], dtype=float)
    corr = np.corrcoef(counts)
    assert np.abs(corr[np.triu_indices(len(corr), 1)]).mean() > 0.05
    # holds of 0.3 s or more at rest before a reach, and a spread of reach durations beyond easy's
    speed = np.linalg.norm(np.gradient(s.cursor_pos, axis=0) / 0.004, axis=1)
    still = np.convolve(speed < 20, np.ones(75), "valid") == 75  # 300 ms below 20 mm/s
    assert still.any()
    easy = generate_session(SynthConfig(duration_s=240, seed=3, difficulty="easy"))

    def spread(session):
        switches = np.nonzero(np.any(np.diff(session.target_pos, axis=0) != 0, axis=1))[0]
        return np.std(np.log(np.diff(switches)))
    assert spread(s) > spread(easy) + 0.1


def test_loco_has_192_channels(loco_file):
    with ReachingFile(loco_file) as f:
        assert f.n_channels == 192 and f.n_unit_rows == 5


def test_bad_configuration():
    for kwargs, message in [({"monkey": "bob"}, "monkey must be"), ({"duration_s": 0.5}, "between 1 s and 1 day"),
                            ({"units_per_channel": (0, 5)}, "units per channel"),
                            ({"rate_hz": (5, 1)}, "rate range"), ({"difficulty": "hard"}, "difficulty must be")]:
        with pytest.raises(ConfigError, match=message):
            SynthConfig(**kwargs)


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    from motordecode.data import write_mat

    calls = {"n": 0}
    original = write_mat._Refs.array

    def failing(self, data, matlab_class):
        calls["n"] += 1
        if calls["n"] > 50:
            raise OSError(28, "No space left on device")
        return original(self, data, matlab_class)

    monkeypatch.setattr(write_mat._Refs, "array", failing)
    with pytest.raises(OSError, match="No space left"):
        write_synthetic(tmp_path / "indy_fail.mat", SynthConfig(duration_s=5, seed=1))
    assert list(tmp_path.iterdir()) == []


def test_written_files_have_ordinary_permissions(indy_file):
    import os
    import stat

    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(indy_file).st_mode) == 0o666 & ~mask
