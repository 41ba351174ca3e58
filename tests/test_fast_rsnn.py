"""The RSNN fast step (decoders/rsnn/fast_step.py): float16 rounding, the float16 arithmetic of
decoders/rsnn/half_arithmetic.py in every implementation (PyTorch, fast step, ONNX, C) against an
independent NumPy reading of it, and whole spiking streams (spikes and outputs) against the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numba import njit

from motordecode.decoders.base import Stream
from motordecode.decoders.fast import FastStream
from motordecode.decoders.registry import family_of
from motordecode.decoders.rsnn.fast_step import round_half
from motordecode.decoders.rsnn.model import RSNN, RSNNConfig
from motordecode.decoders.untrained import deployed_network
from motordecode.errors import ConfigError
from motordecode.recipes import get_recipe
from half_reference import reference_stream


@njit(cache=True)
def _round_all(values, out):
    for i in range(values.shape[0]):
        out[i] = round_half(values[i])


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


def hard_half_network(substeps: int, heads, seed: int = 5) -> RSNN:
    """A float16 RSNN whose sums are not exact in float32: 5% of the weights are float16 subnormals
    (multiples of 2^-24) beside weights near 1, so an order-dependent float32 sum would show."""
    torch.manual_seed(seed)
    model = RSNN(RSNNConfig(n_channels=40, hidden=32, substeps=substeps, readout_heads=heads))
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for weight, scale in ((model.lif.input.weight, 0.35), (model.lif.recurrent.weight, 0.3),
                              (model.readout.fc.weight, 0.4)):
            values = rng.normal(0.0, scale, weight.shape)
            tiny = rng.random(weight.shape) < 0.05
            values[tiny] = rng.integers(-1023, 1024, int(tiny.sum())) * 2.0 ** -24
            weight.copy_(torch.from_numpy(values))
    return model.half().eval()


def poisson_counts(samples: int, channels: int, mean: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).poisson(mean, (samples, channels)).astype(np.float32)


@pytest.mark.parametrize("substeps,heads", [(1, ((10.0, 50.0),)), (5, ((10.0, 50.0), (5.0, 20.0), (30.0, 100.0)))])
def test_float16_arithmetic_is_one_definition(substeps, heads, tmp_path):
    """The model's PyTorch evaluation, the fast step, the ONNX step and the C export all equal an
    independent NumPy reading of the definition, spikes and outputs bit for bit, on fractional
    sub-step drives (count / 5) and sums that float32 does not hold exactly."""
    from motordecode.export.c_build import run_binary, run_binary_lines
    from motordecode.export.c_export import _spike_lines, compiled
    from motordecode.export.c_main import MAIN_C
    from motordecode.export.c_rsnn import rsnn_header, rsnn_source
    from motordecode.export.onnx_export import OnnxStream, to_onnx
    from motordecode.export.onnx_steps import RSNNStep
    model = hard_half_network(substeps, heads)
    counts = poisson_counts(160, 40, 0.25 * substeps, seed=substeps)
    want_y, want_spikes = reference_stream(model, counts)
    w_in = model.lif.input.weight.detach().double().numpy()
    in_order = np.stack([np.cumsum((w_in * c).astype(np.float32), axis=1, dtype=np.float32)[:, -1] for c in counts])
    exact = np.stack([w_in @ c for c in counts.astype(np.float64)])
    assert np.mean(in_order != exact) > 0.01, "the test network's sums are exact in float32: it would not catch an order"
    assert want_spikes.mean() > 0.02 and np.ptp(want_y, axis=0).min() > 0

    with torch.no_grad():
        y, _, spikes = model.sequence(torch.from_numpy(counts)[None])
    np.testing.assert_array_equal(spikes[0].float().numpy(), want_spikes)
    np.testing.assert_array_equal(y[0].float().numpy(), want_y)

    recipe = get_recipe("tinyrsnn")
    decoder = family_of(recipe).decoder(model, recipe, 4.0 * substeps, None)
    np.testing.assert_array_equal(Stream(decoder)(counts), want_y)
    got, got_spikes = fast_run(decoder, counts, pushed=60)
    np.testing.assert_array_equal(got, want_y)
    np.testing.assert_array_equal(got_spikes, want_spikes)

    hidden, units = model.config.hidden, model.readout.fc.weight.shape[0]
    state = {"x_prev": torch.zeros(40), "s": torch.zeros(hidden), "syn": torch.zeros(hidden),
             "mem": torch.zeros(hidden), "out_syn": torch.zeros(units), "out_mem": torch.zeros(units)}
    onnx = OnnxStream(to_onnx(RSNNStep(model), state, 40), state)
    np.testing.assert_array_equal(np.stack([onnx.push(c) for c in counts]), want_y)

    (tmp_path / "decoder.c").write_text(rsnn_source(model))
    (tmp_path / "decoder.h").write_text(rsnn_header(model))
    (tmp_path / "main.c").write_text(MAIN_C)
    with compiled(tmp_path) as (binary, _):
        c_spikes = _spike_lines(run_binary_lines(binary, counts, ["-s"]), hidden, substeps)
        c_y = run_binary(binary, counts).astype(np.float32)
    np.testing.assert_array_equal(c_spikes, want_spikes)
    np.testing.assert_array_equal(c_y, want_y)


def test_float16_network_refuses_counts_it_cannot_compute_exactly():
    """Non-integer inputs and counts past the exact range are refused by the model and the fast step."""
    model = hard_half_network(5, ((10.0, 50.0),))
    recipe = get_recipe("tinyrsnn")
    decoder = family_of(recipe).decoder(model, recipe, 20.0, None)
    fractional = poisson_counts(4, 40, 1.0, seed=0)
    fractional[2, 3] = 0.5
    huge = poisson_counts(4, 40, 1.0, seed=0)
    huge[1, :] = 2.0 ** 26
    for bad in (fractional, huge):
        with pytest.raises(ConfigError):
            Stream(decoder)(bad)
        fast = FastStream(decoder)
        with pytest.raises(ConfigError):
            for c in bad:
                fast.push(c)


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
