"""Window features: batch == streaming, no future leakage, log-softplus, configuration errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from motordecode.data.features import WindowFeatures, log_softplus
from motordecode.data.load import load_reaching
from motordecode.errors import ConfigError


def _streamed(feats, x, chunk=1):
    """The features of x computed as a stream, ``chunk`` samples per call, carrying the window."""
    recent, out = np.zeros((feats.span - 1, x.shape[1]), dtype=x.dtype), []
    for start in range(0, len(x), chunk):
        f, recent = feats.carried(recent, x[start:start + chunk])
        out.append(f)
    return np.concatenate(out)


def test_streaming_equals_batch_over_a_whole_session(indy_file):
    rec = load_reaching(indy_file, 0.004)
    feats = WindowFeatures.summed(100, 5, transform="log_softplus")
    batch = feats(rec.spikes)
    assert batch.shape == (rec.n_samples, 5, rec.n_channels)
    np.testing.assert_array_equal(_streamed(feats, rec.spikes[:3000]), batch[:3000])
    np.testing.assert_array_equal(_streamed(feats, rec.spikes, chunk=997), batch)


@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(1, 4), st.integers(1, 6), st.integers(1, 6), st.booleans())
def test_stream_matches_batch_and_ignores_the_future(data, k, width, spacing, floats):
    dtype = np.float32 if floats else np.int16
    elements = st.floats(0, 5, width=32) if floats else st.integers(0, 3)
    x = data.draw(arrays(dtype, st.tuples(st.integers(1, 40), st.integers(1, 3)), elements=elements))
    feats = WindowFeatures(k, width, spacing, transform="log_softplus")
    batch = feats(x)
    for chunk in (1, 7):
        if floats:  # running sums restarted at each block's carried window: equal to float64 rounding
            np.testing.assert_allclose(_streamed(feats, x, chunk), batch, rtol=1e-6, atol=1e-6)
        else:  # counts: bit-identical
            np.testing.assert_array_equal(_streamed(feats, x, chunk), batch)
    # changing samples after j never changes the features at j
    j = data.draw(st.integers(0, len(x) - 1))
    changed = x.copy()
    changed[j + 1 :] = changed[j + 1 :] + 1
    np.testing.assert_array_equal(feats(changed, np.arange(j + 1)), batch[: j + 1])


@settings(max_examples=60, deadline=None)
@given(arrays(np.int16, st.tuples(st.integers(12, 40), st.integers(1, 3)), elements=st.integers(0, 3)),
       st.integers(1, 4), st.integers(1, 3), st.integers(1, 3))
def test_features_equal_explicit_sums(x, k, width, spacing):
    feats = WindowFeatures(k, width, spacing)
    for wrap in (False, True):
        if wrap and feats.span > len(x):
            continue
        out = WindowFeatures(k, width, spacing, wrap=wrap)(x)
        for j in range(len(x)):
            for m in range(k):
                q = j - (k - 1 - m) * spacing
                idx = np.arange(q - width + 1, q + 1)
                if wrap:
                    expected = x[idx % len(x)].sum(axis=0)  # negative indices read the end, like Python
                else:
                    expected = x[idx[idx >= 0]].sum(axis=0)
                np.testing.assert_array_equal(out[j, m], expected)


def test_log_softplus_matches_torch():
    x = np.linspace(-30, 60, 1001, dtype=np.float32)
    expected = torch.log(torch.nn.functional.softplus(torch.from_numpy(x))).numpy()
    np.testing.assert_allclose(log_softplus(x), expected, rtol=1e-5, atol=1e-6)
    assert np.isfinite(log_softplus(np.array([0.0, 1e4], dtype=np.float32))).all()


def test_configuration_errors():
    with pytest.raises(ConfigError, match="equal sub-windows"):
        WindowFeatures.summed(100, 3)
    with pytest.raises(ConfigError, match="unknown transform"):
        WindowFeatures(5, 20, transform="sqrt")
    with pytest.raises(ConfigError, match="cannot stream"):
        WindowFeatures(5, 20, wrap=True).carried(np.zeros((99, 4)), np.zeros((1, 4)))
    with pytest.raises(ConfigError, match="window ends"):
        WindowFeatures(2, 2)(np.zeros((5, 1)), np.array([5]))
