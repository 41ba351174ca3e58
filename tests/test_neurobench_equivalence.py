"""Samples, labels and split indices equal those of neurobench 2.3.0's PrimateReaching."""

from __future__ import annotations

import numpy as np
import pytest
from neurobench.datasets.primate_reaching import PrimateReaching

from motordecode.data.binning import width_in_steps
from motordecode.data.features import WindowFeatures
from motordecode.data.load import load_reaching
from motordecode.data.splits import reach_bounds, split_by_reaches
from motordecode.decoders.gru.inference import window_features
from motordecode.recipes import get_recipe, override


def _neurobench(path, bin_width_s, num_steps=1):
    return PrimateReaching(str(path.parent), path.name, num_steps=num_steps, train_ratio=0.5,
                           bin_width=bin_width_s, download=False)


@pytest.mark.parametrize("monkey", ["indy", "loco", "indy_realistic"])
@pytest.mark.parametrize("bin_ms", [4, 28, 80])
def test_samples_labels_and_splits_match(monkey, bin_ms, request):
    path = request.getfixturevalue(f"{monkey}_file")
    ours = load_reaching(path, bin_ms / 1e3)
    ref = _neurobench(path, bin_ms / 1e3)
    samples = ref.samples.numpy()
    # NeuroBench's float arange can make one extra trailing sample that no label belongs to
    assert samples.shape[1] in (ours.n_samples, ours.n_samples + 1)
    assert samples.shape[0] == ours.n_channels == {"indy": 96, "loco": 192, "indy_realistic": 96}[monkey]
    np.testing.assert_array_equal(samples[:, : ours.n_samples], ours.spikes.T.astype(np.float32))
    np.testing.assert_array_equal(ref.labels.numpy(), ours.velocity.T)
    split = split_by_reaches(ours.reach_bounds, train_ratio=0.5)
    np.testing.assert_array_equal(np.asarray(ref.ind_train), split.train)
    np.testing.assert_array_equal(np.asarray(ref.ind_val), split.val)
    np.testing.assert_array_equal(np.asarray(ref.ind_test), split.test)
    assert ours.spikes.max() <= width_in_steps(bin_ms / 1e3)
    assert ours.spikes.sum() > 0


@pytest.mark.parametrize("bin_ms,num_steps", [(4, 7), (28, 5), (80, 5)])
def test_wrapped_windows_reproduce_neurobench_getitem(indy_file, bin_ms, num_steps):
    ours = load_reaching(indy_file, bin_ms / 1e3)
    ref = _neurobench(indy_file, bin_ms / 1e3, num_steps=num_steps)
    # NeuroBench may append one label-less sample (float arange) that its wrap-around reads
    np.testing.assert_array_equal(ref.samples.numpy(), ours.samples_with_tail.T.astype(np.float32))
    ratio = width_in_steps(bin_ms / 1e3)
    windows = WindowFeatures(n_sub=num_steps, sub_width=1, spacing=ratio, wrap=True)
    ends = np.concatenate([np.arange(0, 3 * ratio * num_steps), ref.ind_test[:50]])
    feats = windows(ours.samples_with_tail, ends)
    for row, idx in zip(feats, ends):
        window, _ = ref[int(idx)]
        np.testing.assert_array_equal(window.numpy()[::-1], row)  # NeuroBench is newest-first


def test_windows_do_not_wrap_by_default(indy_file):
    ours = load_reaching(indy_file, 0.028)
    feats = WindowFeatures(n_sub=5, sub_width=1, spacing=7)(ours.spikes, np.arange(10))
    # sub-windows that would start before the session are zero, not data from its end
    assert not feats[0, :4].any()
    np.testing.assert_array_equal(feats[:, -1], ours.spikes[:10].astype(np.float32))


def test_summed_subwindows_equal_neurobench_windows_of_wider_bins(indy_file):
    """Fig. 2 of the AEGRU paper: N=100 4 ms samples in k=5 sums == NeuroBench 5 steps of 80 ms."""
    base = load_reaching(indy_file, 0.004)
    wide = load_reaching(indy_file, 0.080)
    # NeuroBench's 4 ms sample 0 is always empty (its histogram never writes the first bin), while an
    # 80 ms sample at j=19 also counts the 4 ms before t[0]; from j = 100 on, every window agrees.
    assert not base.spikes[0].any()
    ends = np.arange(100, base.n_samples)
    summed = WindowFeatures.summed(100, 5)(base.spikes, ends)
    gathered = WindowFeatures(n_sub=5, sub_width=1, spacing=20)(wide.spikes, ends)
    np.testing.assert_array_equal(summed, gathered)
    # the AEGRU recipe's windowed decoder (400 ms in 5 sub-windows, set in ms) cuts the same windows
    recipe = override(get_recipe("aegru"), {"transform": "none"})
    np.testing.assert_array_equal(window_features(recipe, base.step_ms)(base.spikes, ends), gathered)


def test_reach_bounds_follow_neurobench_with_nan_and_inf_targets():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 40))
        target = rng.integers(0, 3, size=(n, 2)).astype(float)
        bad = rng.random((n, 2)) < 0.1
        target[bad] = rng.choice([np.nan, np.inf, -np.inf], size=int(bad.sum()))
        with np.errstate(invalid="ignore"):
            flags = PrimateReaching.get_flag_index(target.T)
        expected = PrimateReaching.split_into_segments(flags, n)
        np.testing.assert_array_equal(reach_bounds(target), expected)
