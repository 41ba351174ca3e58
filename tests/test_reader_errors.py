"""Every kind of bad input to the session reader raises DataFormatError with a precise message."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import scipy.io

from motordecode.data.load import load_reaching, load_recording
from motordecode.data.synthetic import SynthConfig, write_synthetic
from motordecode.errors import DataFormatError


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("small") / "indy_small.mat",
                           SynthConfig(duration_s=4, seed=5))


def _edited(small_file, tmp_path, edit):
    path = tmp_path / "indy_edited.mat"
    shutil.copy(small_file, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def _replace(name, value):
    def edit(f):
        del f[name]
        f[name] = value
    return edit


def test_the_unedited_file_loads(small_file):
    assert load_reaching(small_file).n_channels == 96


def test_missing_file(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        load_reaching(tmp_path / "indy_missing.mat")


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "indy_text.mat"
    path.write_text("this is not a recording\n")
    with pytest.raises(DataFormatError, match="is not an HDF5 / MATLAB v7.3 file"):
        load_reaching(path)


def test_matlab_v5_file_given_to_the_session_reader(tmp_path):
    path = tmp_path / "indy_v5.mat"
    scipy.io.savemat(path, {"t": np.arange(5.0)})
    with pytest.raises(DataFormatError, match="MATLAB v5 file, not v7.3"):
        load_reaching(path)


def test_truncated_file(small_file, tmp_path):
    path = tmp_path / "indy_truncated.mat"
    data = small_file.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="truncated"):
        load_recording(path)


@pytest.mark.parametrize("name", ["t", "cursor_pos", "target_pos", "spikes"])
def test_missing_variable(small_file, tmp_path, name):
    path = _edited(small_file, tmp_path, lambda f: f.__delitem__(name))
    with pytest.raises(DataFormatError, match=f"missing variable '{name}'"):
        load_reaching(path)


@pytest.mark.parametrize("name,shape,message", [
    ("t", (2, 1000), r"'t' has shape \(2, 1000\), expected \(1, T\)"),
    ("cursor_pos", (3, 1000), r"'cursor_pos' has shape \(3, 1000\), expected \(2, 1000\)"),
    ("target_pos", (2, 999), r"'target_pos' has shape \(2, 999\), expected \(2, 1000\)"),
    ("finger_pos", (4, 1000), r"'finger_pos' has shape \(4, 1000\), expected \(3, 1000\) or \(6, 1000\)"),
])
def test_wrong_shapes(small_file, tmp_path, name, shape, message):
    value = np.zeros(shape)
    if name == "t":
        value = 10 + np.arange(np.prod(shape)).reshape(shape) * 0.004
    path = _edited(small_file, tmp_path, _replace(name, value))
    with pytest.raises(DataFormatError, match=message):
        load_reaching(path)


def test_spikes_not_a_cell_of_references(small_file, tmp_path):
    path = _edited(small_file, tmp_path, _replace("spikes", np.zeros((5, 96))))
    with pytest.raises(DataFormatError, match="'spikes' must be a 2-D cell array of references"):
        load_reaching(path)


def _t_with(edit):
    def apply(f):
        t = f["t"][()]
        edit(t)
        _replace("t", t)(f)
    return apply


def test_nan_in_t(small_file, tmp_path):
    path = _edited(small_file, tmp_path, _t_with(lambda t: t.__setitem__((0, 10), np.nan)))
    with pytest.raises(DataFormatError, match="'t' contains 1 NaN or infinite values"):
        load_reaching(path)


def test_non_increasing_t(small_file, tmp_path):
    path = _edited(small_file, tmp_path, _t_with(lambda t: t.__setitem__((0, 20), t[0, 19])))
    with pytest.raises(DataFormatError, match=r"'t' is not strictly increasing \(t\[19\]"):
        load_reaching(path)


def test_t_not_sampled_every_4_ms(small_file, tmp_path):
    path = _edited(small_file, tmp_path, _replace("t", (10 + np.arange(1000) * 0.001)[None, :]))
    with pytest.raises(DataFormatError, match="sampled every 1.000 ms, expected 4 ms"):
        load_reaching(path)


def test_nan_in_cursor_pos(small_file, tmp_path):
    def edit(f):
        pos = f["cursor_pos"][()]
        pos[1, 5:8] = np.nan
        _replace("cursor_pos", pos)(f)
    path = _edited(small_file, tmp_path, edit)
    with pytest.raises(DataFormatError, match="'cursor_pos' contains NaN or infinite values at 3 time points"):
        load_reaching(path)


def test_unexpected_channel_count(small_file, tmp_path):
    with pytest.raises(DataFormatError, match="96 channels, expected 192"):
        load_reaching(small_file, expected_channels=192)
    # a known benchmark session name implies its channel count
    path = tmp_path / "loco_20170301_05.mat"
    shutil.copy(small_file, path)
    with pytest.raises(DataFormatError, match="96 channels, expected 192"):
        load_reaching(path)


def test_dangling_reference(small_file, tmp_path):
    def edit(f):
        refs = f["spikes"][()]
        refs[0, 3] = h5py.Reference()
        _replace("spikes", refs)(f)
        f["spikes"].attrs["MATLAB_class"] = np.bytes_("cell")
    path = _edited(small_file, tmp_path, edit)
    with pytest.raises(DataFormatError, match=r"spikes\{1,4\} is a null reference"):
        load_reaching(path)


def test_infinite_t(small_file, tmp_path):
    path = _edited(small_file, tmp_path, _t_with(lambda t: t.__setitem__((0, 50), np.inf)))
    with pytest.raises(DataFormatError, match="'t' contains 1 NaN or infinite values"):
        load_reaching(path)


def test_uneven_t(small_file, tmp_path):
    t = 10 + np.arange(1000) * 0.004
    t[600:] = t[599] + np.arange(1, 401) * 0.001  # the last 400 steps are 1 ms: median stays 4 ms
    path = _edited(small_file, tmp_path, _replace("t", t[None, :]))
    with pytest.raises(DataFormatError, match="'t' has uneven steps"):
        load_reaching(path)


def test_variable_of_the_wrong_kind(small_file, tmp_path):
    path = _edited(small_file, tmp_path, lambda f: (f.__delitem__("t"), f.create_group("t")))
    with pytest.raises(DataFormatError, match="'t' is a Group, expected an array"):
        load_reaching(path)
    path = _edited(small_file, tmp_path, _replace("cursor_pos", np.array([[b"a"] * 1000] * 2)))
    with pytest.raises(DataFormatError, match=r"'cursor_pos' holds \|S1 values, expected numbers"):
        load_reaching(path)


def test_damaged_bytes_give_a_data_error_or_load(small_file, tmp_path):
    """Random damage inside the file must never escape as anything but DataFormatError."""
    data = bytearray(small_file.read_bytes())
    rng = np.random.default_rng(0)
    outcomes = {"error": 0, "loaded": 0}
    for trial in range(40):
        damaged = bytearray(data)
        for pos in rng.integers(512, len(data), size=8):
            damaged[pos] ^= 0xFF
        path = tmp_path / f"indy_damaged_{trial}.mat"
        path.write_bytes(bytes(damaged))
        try:
            load_reaching(path)
            outcomes["loaded"] += 1
        except DataFormatError:
            outcomes["error"] += 1
    assert outcomes["error"] > 0, outcomes
