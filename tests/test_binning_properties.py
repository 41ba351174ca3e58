"""Properties of binning and labels against their definitions (hypothesis)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from motordecode.data.binning import STEP_S, bin_edges, box_sum, mark_spikes, velocity_labels, width_in_steps

spike_lists = st.lists(st.floats(min_value=9.9, max_value=10.5, allow_nan=False), max_size=60)


@settings(max_examples=150, deadline=None)
@given(spike_lists, st.sampled_from([0.004, 0.028, 0.08]))
def test_mark_spikes_equals_histogram_definition(times, width):
    t = 10.0 + np.arange(100) * STEP_S
    edges = bin_edges(t[0], t[-1], width)
    times = np.array(times + [edges[-1]] if times else [edges[0]])  # include both edge cases
    train = np.zeros((len(edges), 1), dtype=np.uint8)
    mark_spikes(train, 0, times, edges)
    counts, _ = np.histogram(times, bins=edges)
    expected = np.zeros(len(edges), dtype=np.uint8)
    expected[np.nonzero(counts)[0] + 1] = 1
    np.testing.assert_array_equal(train[:, 0], expected)
    assert train[0, 0] == 0


@settings(max_examples=100, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(30, 80), st.integers(1, 4)), elements=st.integers(0, 1)),
       st.integers(1, 25))
def test_box_sum_is_a_trailing_window_sum(train, steps):
    out = box_sum(train, steps)
    assert out.shape == (len(train) - steps + 1, train.shape[1])
    for j in range(len(out)):
        np.testing.assert_array_equal(out[j], train[j : j + steps].sum(axis=0))
    assert out.max(initial=0) <= steps  # binary 4 ms bins saturate at the width


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(3, 40), st.just(2)),
              elements=st.floats(-200, 200, allow_nan=False)))
def test_velocity_equals_torch_gradient(position):
    expected = torch.gradient(torch.from_numpy(position.T.copy()).float(), dim=1)[0].numpy().T
    np.testing.assert_array_equal(velocity_labels(position), expected)


def test_width_must_be_a_multiple_of_the_step():
    assert width_in_steps(0.028) == 7
    for bad in (0.0, 0.006, -0.004):
        try:
            width_in_steps(bad)
        except ValueError as exc:
            assert "multiple of 4 ms" in str(exc)
        else:
            raise AssertionError(f"{bad} accepted")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(9.8, 10.6, allow_nan=False), st.sampled_from([np.nan, np.inf, -np.inf])),
                max_size=40),
       st.sampled_from([0.004, 0.028, 0.08]), st.floats(1.0, 5000.0))
def test_histogram_bins_equal_a_binary_search(times, width, t0):
    from motordecode.data.binning import histogram_bins

    t = t0 + np.arange(150) * STEP_S
    edges = bin_edges(t[0], t[-1], width)
    # spikes at, just below and just above every kind of edge, plus arbitrary ones
    picks = edges[[0, 1, len(edges) // 2, -2, -1]]
    times = np.concatenate([np.array(times) - 10.0 + t0, picks, np.nextafter(picks, -np.inf),
                            np.nextafter(picks, np.inf)])
    expected = np.searchsorted(edges, times, side="right") - 1
    expected[times == edges[-1]] = len(edges) - 2
    expected[(expected < 0) | (expected > len(edges) - 2) | np.isnan(times)] = -1
    np.testing.assert_array_equal(histogram_bins(times, edges), expected)
