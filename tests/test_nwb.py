"""NWB recordings: a generated session round-trips through NWB, the Neural Latents MC_RTT layout
(held-out units, 1 kHz behaviour, trials, observation gaps, a test file without behaviour) loads,
trains and evaluates, and bad files give clear errors."""

from __future__ import annotations

import datetime
import json
import warnings

import numpy as np
import pytest

from motordecode.cli import main
from motordecode.data.binning import velocity_labels
from motordecode.data.load import load_recording
from motordecode.data.splits import contiguous_runs, default_split
from motordecode.data.synthetic import SynthConfig, write_synthetic
from motordecode.errors import DataFormatError

import pynwb  # noqa: F401,E402 - a test dependency (motordecode[nwb]); missing, the tests fail loudly


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nwb")
    cfg = SynthConfig(monkey="indy", duration_s=30, seed=4)
    return write_synthetic(folder / "indy_twin.mat", cfg), write_synthetic(folder / "indy_twin.nwb", cfg, fmt="nwb")


@pytest.mark.parametrize("bin_width_s", [0.004, 0.02])
def test_a_generated_session_reads_the_same_from_nwb_and_mat(twins, bin_width_s):
    mat, nwb = (load_recording(path, bin_width_s=bin_width_s) for path in twins)
    assert nwb.meta["format"] == "nwb" and nwb.valid is None
    for field in ("spikes", "velocity", "t", "reach_bounds"):
        np.testing.assert_array_equal(getattr(nwb, field), getattr(mat, field), err_msg=field)
    for a, b in zip(default_split(mat).__dict__.values(), default_split(nwb).__dict__.values()):
        np.testing.assert_array_equal(a, b)


def _mc_rtt(path, *, behaviour=True, units=True, obs_shift=0.0, reversed_interval=False, seed=0, position=True,
            electrodes=True):
    """A file in the MC_RTT layout: 24 electrodes, 30 units (the last 6 held out), cursor_pos and
    finger_vel at 1 kHz (rate, not timestamps), a NaN gap at 17.0-17.5 s that the obs_intervals
    leave out, 600 ms trials with a split column."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import SpatialSeries

    rng = np.random.default_rng(seed)
    nwbfile = NWBFile(session_description="MC_RTT-like", identifier="mc-rtt-test",
                      session_start_time=datetime.datetime(2017, 2, 2, tzinfo=datetime.timezone.utc))
    device = nwbfile.create_device(name="array", description="Utah array")
    group = nwbfile.create_electrode_group(name="M1", description="M1", location="M1", device=device)
    for e in range(24 if electrodes else 0):
        nwbfile.add_electrode(group=group, location="M1", id=100 + 7 * e)  # ids are not row numbers
    t = np.arange(20000) / 1000.0
    velocity = np.stack([np.sin(2 * np.pi * t / 3.1), np.cos(2 * np.pi * t / 4.3)], axis=1) * 100.0  # mm/s
    position_mm = np.cumsum(velocity, axis=0) / 1000.0
    gap = (t >= 17.0) & (t < 17.5)
    position_mm[gap] = np.nan
    velocity = velocity.copy()
    velocity[gap] = np.nan
    if units:
        nwbfile.add_unit_column(name="heldout", description="held out in the test data")
        intervals = [[0.0 + obs_shift, 17.0 + obs_shift], [17.5 + obs_shift, 20.0 + obs_shift]]
        if reversed_interval:
            intervals[1] = [19.0, 18.0]
        for u in range(30):
            angle = 2 * np.pi * u / 30
            rate = 20.0 * np.exp(0.01 * (velocity @ [np.cos(angle), np.sin(angle)]))
            spikes = t[rng.random(len(t)) < rate / 1000.0] + rng.uniform(0, 1e-3)
            where = {"electrodes": [u % 24]} if electrodes else {}
            nwbfile.add_unit(spike_times=spikes, obs_intervals=intervals, heldout=u >= 24, **where)
    if behaviour:
        module = nwbfile.create_processing_module(name="behavior", description="behaviour")
        if position:
            module.add(SpatialSeries(name="cursor_pos", data=position_mm, rate=1000.0, starting_time=0.0,
                                     reference_frame="screen", unit="mm"))
        module.add(TimeSeries(name="finger_vel", data=velocity, rate=1000.0, starting_time=0.0, unit="mm/s"))
        nwbfile.add_trial_column(name="split", description="train, val or test")
        for k, start in enumerate(np.arange(0.0, 19.4, 0.6)):
            nwbfile.add_trial(start_time=start, stop_time=start + 0.6, split=("train", "val", "test")[k % 3])
    with warnings.catch_warnings(), NWBHDF5IO(str(path), "w") as io:
        warnings.simplefilter("ignore")
        io.write(nwbfile)
    return path


def test_the_mc_rtt_layout_loads_with_and_without_held_out_units(tmp_path):
    path = _mc_rtt(tmp_path / "sub-Indy_desc-train_behavior+ecephys.nwb")
    rec = load_recording(path)
    held_in = load_recording(path, heldout="exclude")
    assert rec.n_channels == held_in.n_channels == 24
    assert rec.meta["units_per_channel"].sum() == 30 and held_in.meta["units_per_channel"].sum() == 24
    assert (rec.spikes.sum(0) >= held_in.spikes.sum(0)).all() and rec.spikes.sum() > held_in.spikes.sum()
    # 1 kHz behaviour on 4 ms points: position interpolated, then differentiated like the Zenodo files
    assert rec.n_samples == 5000 and np.allclose(np.diff(rec.t), 0.004)
    assert rec.meta["behaviour"] == "cursor_pos"
    # sample t counts the spikes in [t - 8 ms, t - 4 ms) (4 ms bins): observed from 8 ms after an
    # interval starts to 4 ms after it stops; the NaN position also spoils the labels next to it
    unobserved = (rec.t < 0.008) | ((rec.t > 17.004) & (rec.t < 17.508))
    gap = (rec.t < 0.008) | ((rec.t >= 16.996) & (rec.t <= 17.512))
    assert not rec.valid[unobserved].any() and rec.valid[~gap].all()
    t_1khz = np.arange(20000) / 1000.0
    x = np.cumsum(np.sin(2 * np.pi * t_1khz / 3.1) * 100.0) / 1000.0  # the cursor x the file holds
    expected = velocity_labels(np.stack([np.interp(rec.t, t_1khz, x)] * 2, axis=1))[:, 0]
    np.testing.assert_allclose(rec.velocity[~gap, 0], expected[~gap], rtol=1e-5, atol=1e-7)
    # reaches from the trials, gaps out of the splits: the test split is two streams around the gap
    assert len(rec.reach_bounds) == 33
    split = default_split(rec)
    assert not np.isin(np.nonzero(~rec.valid)[0], np.concatenate([split.train, split.val, split.test])).any()
    assert len(contiguous_runs(split.test)) == 2


def test_mc_rtt_files_train_and_evaluate_through_the_cli(tmp_path, capsys):
    path = _mc_rtt(tmp_path / "sub-Indy_desc-train_behavior+ecephys.nwb")
    out = tmp_path / "run"
    assert main(["train", "wiener", "--data", str(path), "--out", str(out), "--heldout", "exclude", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["r2"] > 0.3  # units tuned to velocity; measured 0.5
    assert json.loads((out / "config.json").read_text())["heldout"] == "exclude"
    assert main(["evaluate", str(out), "--json", "--no-write"]) == 0
    assert json.loads(capsys.readouterr().out)["r2"] == row["r2"]
    assert main(["data", "info", str(path), "--heldout", "exclude"]) == 0
    assert "24 units" in capsys.readouterr().out
    test_file = _mc_rtt(tmp_path / "sub-Indy_desc-test_ecephys.nwb", behaviour=False)
    assert main(["train", "wiener", "--data", str(test_file), "--out", str(tmp_path / "t")]) == 2
    assert "no behaviour" in capsys.readouterr().err


def test_velocity_only_files_and_units_without_electrodes(tmp_path):
    rec = load_recording(_mc_rtt(tmp_path / "velocity.nwb", position=False))
    assert rec.meta["behaviour"] == "finger_vel" and rec.meta["label_units"] == "as stored"
    valid = rec.valid
    assert np.allclose(rec.velocity[valid, 0], np.sin(2 * np.pi * rec.t[valid] / 3.1) * 100.0, atol=1e-3)
    flat = load_recording(_mc_rtt(tmp_path / "no-electrodes.nwb", electrodes=False))
    assert flat.n_channels == 30 and flat.meta["units_per_channel"].tolist() == [1] * 30
    assert load_recording(tmp_path / "no-electrodes.nwb", heldout="exclude").n_channels == 24


def test_heldout_needs_a_heldout_column_and_an_nwb_file(twins):
    from motordecode.errors import ConfigError

    with pytest.raises(ConfigError, match="no 'heldout' column"):
        load_recording(twins[1], heldout="exclude")
    with pytest.raises(ConfigError, match="NWB notion"):
        load_recording(twins[0], heldout="exclude")


@pytest.mark.parametrize("problem, message", [
    ({"units": False}, "no units table"),
    ({"behaviour": False}, "no behaviour"),
    ({"obs_shift": 1000.0}, "do not overlap"),
    ({"reversed_interval": True}, "empty or reversed obs_interval"),
])
def test_bad_nwb_files_give_clear_errors(tmp_path, problem, message):
    path = _mc_rtt(tmp_path / "bad.nwb", **problem)
    with pytest.raises(DataFormatError, match=message):
        load_recording(path)


def test_a_truncated_nwb_file_is_refused(twins, tmp_path):
    broken = tmp_path / "broken.nwb"
    broken.write_bytes(twins[1].read_bytes()[:5000])
    with pytest.raises(DataFormatError):
        load_recording(broken)
