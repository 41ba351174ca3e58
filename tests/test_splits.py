"""Splits: disjoint, complete, in reach order; contiguous split for sources without reaches."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from motordecode.data.splits import reach_bounds, split_by_reaches, split_contiguous


@st.composite
def target_sequences(draw):
    lengths = draw(st.lists(st.integers(1, 15), min_size=1, max_size=40))
    values = draw(st.lists(st.integers(-3, 3), min_size=2 * len(lengths), max_size=2 * len(lengths)))
    targets = []
    for i, n in enumerate(lengths):
        targets += [(values[2 * i], values[2 * i + 1])] * n
    return np.array(targets, dtype=float)


@settings(max_examples=200, deadline=None)
@given(target_sequences(), st.sampled_from([0.5, 0.8, 0.3]), st.integers(1, 3))
def test_reach_split_properties(targets, ratio, stride):
    bounds = reach_bounds(targets)
    n = len(targets)
    assert bounds[0, 0] == 0 and bounds[-1, 1] == n
    np.testing.assert_array_equal(bounds[1:, 0], bounds[:-1, 1])  # contiguous reaches
    for start, end in bounds[1:]:
        assert (targets[start] != targets[start + 1]).any()  # a reach starts where the target changes
    split = split_by_reaches(bounds, ratio, stride)
    parts = [split.train, split.val, split.test]
    every = np.concatenate(parts)
    assert len(np.unique(every)) == len(every)  # no sample in two splits
    if stride == 1:
        np.testing.assert_array_equal(np.sort(every), np.arange(n))
    for earlier, later in zip(parts[:-1], parts[1:]):
        if len(earlier) and len(later):
            assert earlier.max() < later.min()  # chronological order of reaches
    n_train = math.floor(ratio * len(bounds))
    assert len(split.train) == sum(len(range(s, e, stride)) for s, e in bounds[:n_train])


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 500))
def test_contiguous_split_is_50_25_25(n):
    split = split_contiguous(n)
    np.testing.assert_array_equal(np.concatenate([split.train, split.val, split.test]), np.arange(n))
    assert len(split.train) == n // 2
    assert abs(len(split.val) - len(split.test)) <= 1
