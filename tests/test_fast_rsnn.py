"""The RSNN fast step (decoders/rsnn/fast_step.py): float16 rounding, PyTorch's float16 arithmetic,
and whole spiking streams (spikes and outputs) against the PyTorch model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numba import njit

from motordecode.decoders.base import Stream
from motordecode.decoders.fast import FastStream
from motordecode.decoders.registry import family_of
from motordecode.decoders.rsnn.fast_step import _lerp_fused, _sum_as_dot, _sum_in_order, round_half
from motordecode.decoders.untrained import deployed_network


@njit(cache=True)
def _round_all(values, out):
    for i in range(values.shape[0]):
        out[i] = round_half(values[i])


@njit(cache=True)
def _lerp_all(start, end, weight, out):
    for i in range(start.shape[0]):
        out[i] = round_half(_lerp_fused(start[i], end[i], weight[i]))


def as_half(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).astype(np.float16).astype(np.float32)


def test_round_half_equals_numpy_float16():
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    halves = halves[np.isfinite(halves)].astype(np.float32)                      # every finite float16
    ordered = np.sort(halves[halves >= 0])
    ties = ((ordered[:-1].astype(np.float64) + ordered[1:]) / 2).astype(np.float32)  # exact midpoints
    ties = np.concatenate([ties, -ties, [np.float32(65520.0), np.float32(-65520.0)]])
    near = np.concatenate([halves, ties])
    rng = np.random.default_rng(0)
    values = np.concatenate([
        near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, np.float32(-np.inf)),
        rng.integers(0, 1 << 32, 2_000_000, dtype=np.uint64).astype(np.uint32).view(np.float32),
        (rng.uniform(-1, 1, 500_000) * 2.0 ** -14).astype(np.float32),            # the subnormal range
        (rng.uniform(-1, 1, 200_000) * 2.0 ** -24).astype(np.float32),            # around the smallest
        np.float32([65504, 65519.996, 65520, 65536, 1e6, 3e38, np.inf, -np.inf, 0.0, -0.0, 2.0 ** -25,
                    2.0 ** -25 * 1.0000001, 2.0 ** -24 * 1.5, 2.0 ** -24 * 2.5, 1e-45]),
    ]).astype(np.float32)
    got = np.empty_like(values)
    _round_all(values, got)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16).astype(np.float32)
    finite = ~np.isnan(values)
    np.testing.assert_array_equal(got[finite].view(np.uint32), expected[finite].view(np.uint32))  # signed zeros too
    nan = np.float32([np.nan])
    _round_all(nan, got[:1])
    assert np.isnan(got[0])


def test_float16_operations_equal_torchs():
    """lerp (vectorised and not), and the products in the order of PyTorch's float16 kernels, on
    weights spread over many binades (where the order of the float32 sums shows)."""
    rng = np.random.default_rng(1)
    for n in (64, 2):  # PyTorch's vectorised loop and its scalar tail
        start, end = (as_half(rng.normal(0, 1, 64_000) * np.exp(rng.uniform(-9, 2, 64_000))) for _ in range(2))
        weight = np.tile(as_half(rng.uniform(0.1, 1.0, n)), 64_000 // n)
        got = np.empty_like(start)
        _lerp_all(start, end, weight, got)
        t = lambda a: torch.from_numpy(a).half().view(-1, n)  # noqa: E731
        expected = torch.lerp(t(start), t(end), t(weight)[0]).float().numpy().ravel()
        np.testing.assert_array_equal(got, expected)

    for inputs, outputs in ((64, 64), (96, 64), (200, 16), (40, 8), (1024, 10)):
        weight = as_half(rng.normal(0, 0.3, (outputs, inputs)) * np.exp(rng.uniform(-10, 1, (outputs, inputs))))
        w_half, rows_t = torch.from_numpy(weight).half(), np.ascontiguousarray(weight.T)
        slots, out = np.zeros((72, outputs), np.float32), np.zeros(outputs, np.float32)
        for _ in range(40):  # one row of spikes times V^T: a dot product per output
            spikes = (rng.random(inputs) < 0.4).astype(np.float32)
            idx = np.flatnonzero(spikes).astype(np.int32)
            _sum_as_dot(rows_t, idx, len(idx), slots, out)
            expected = (torch.from_numpy(spikes).half()[None] @ w_half.t())[0].float().numpy()
            np.testing.assert_array_equal(as_half(out), expected)
        if inputs > 512:  # PyTorch splits longer sums of several rows into blocks
            continue
        x = as_half((rng.random((60, inputs)) < 0.5) * rng.integers(1, 4, (60, inputs)) / np.float32(12))
        expected = torch.nn.functional.linear(torch.from_numpy(x).half()[None], w_half)[0].float().numpy()
        for t in range(len(x)):  # several rows: sums in index order
            idx = np.flatnonzero(x[t]).astype(np.int32)
            _sum_in_order(rows_t, idx, x[t][idx], len(idx), out)
            np.testing.assert_array_equal(as_half(out), expected[t])


def spiking_network(name: str, channels: int, step_ms: float, seed: int = 3, input_rate_hz: float = 30.0):
    """The deployed network, initialised for the test stream's input rate so that it spikes."""
    return deployed_network(name, channels, step_ms, seed=seed, input_rate_hz=input_rate_hz)


def spike_counts(steps: int, channels: int, seed: int, rate: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    drive = rate * (1.0 + np.sin(np.arange(steps) / 15.0))[:, None] * rng.uniform(0.3, 1.7, channels)
    return (rng.random((steps, channels)) < drive).astype(np.float32) + (rng.random((steps, channels)) < drive / 4)


def fast_run(decoder, samples, pushed: int):
    """(outputs, spikes (T substeps, H)) of the fast stream: the first ``pushed`` samples one by one."""
    fast = FastStream(decoder)
    outputs, spikes = [], []
    for t, x in enumerate(samples):
        outputs.append(fast.push(x) if t < pushed else fast(x[None])[0])
        spikes.append(fast.fast.spikes.copy())
    return np.stack(outputs), np.concatenate(spikes).astype(np.float32)


@pytest.mark.parametrize("step_ms", [4.0, 50.0])
@pytest.mark.parametrize("name", ["tinyrsnn", "bigrsnn"])
def test_spiking_streams_equal_the_model(name, step_ms):
    """Spikes identical; outputs identical for float16, to float32 rounding for float32."""
    channels = 48
    samples = spike_counts(500 if step_ms == 4.0 else 150, channels, seed=7, rate=0.12 if step_ms == 4.0 else 1.0)
    recipe, model = spiking_network(name, channels, step_ms, input_rate_hz=samples.mean() * 1000.0 / step_ms)
    decoder = family_of(recipe).decoder(model, recipe, step_ms, None)
    with torch.no_grad():
        _, _, spikes = model.sequence(torch.from_numpy(samples)[None])
    expected = Stream(decoder)(samples)
    got, got_spikes = fast_run(decoder, samples, pushed=40)
    assert spikes.float().mean() > 0.005 and np.ptp(expected, axis=0).min() > 0
    np.testing.assert_array_equal(got_spikes, spikes[0].float().numpy())
    if recipe.half:
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_bigrsnn_long_stream():
    """2,000 samples at 4 ms on 96 channels: the spikes stay identical, the outputs within 1e-5."""
    recipe, model = spiking_network("bigrsnn", 96, 4.0)
    decoder = family_of(recipe).decoder(model, recipe, 4.0, None)
    samples = spike_counts(2000, 96, seed=11, rate=0.1)
    with torch.no_grad():
        _, _, spikes = model.sequence(torch.from_numpy(samples)[None])
    expected = Stream(decoder)(samples)
    fast = FastStream(decoder)
    got, got_spikes = [], []
    for x in samples:
        got.append(fast.push(x))
        got_spikes.append(fast.fast.spikes[0].copy())
    assert spikes.float().mean() > 0.005
    np.testing.assert_array_equal(np.stack(got_spikes).astype(np.float32), spikes[0].float().numpy())
    np.testing.assert_allclose(np.stack(got), expected, rtol=0, atol=1e-5 * np.abs(expected).max())
