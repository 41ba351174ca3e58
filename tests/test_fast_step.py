"""The fast step path (decoders/fast.py): every recipe's compiled step equals its PyTorch Stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motordecode.decoders.base import Stream
from motordecode.decoders.fast import FastStream
from motordecode.decoders.registry import family_of, recipes
from motordecode.decoders.untrained import deployed_network
from motordecode.errors import ConfigError
from motordecode.recipes import get_recipe

CHANNELS = 48
RECIPE_MODES = [(name, mode) for name in recipes() for mode in family_of(get_recipe(name)).modes]


def spike_counts(steps: int, seed: int, rate: float = 0.1) -> np.ndarray:
    """Counts of 0, 1 and 2 spikes per channel and sample, with a slow rate modulation."""
    rng = np.random.default_rng(seed)
    drive = rate * (1.0 + np.sin(np.arange(steps) / 15.0))[:, None] * rng.uniform(0.3, 1.7, CHANNELS)
    return (rng.random((steps, CHANNELS)) < drive).astype(np.float32) + (rng.random((steps, CHANNELS)) < drive / 4)


def half_precision(model) -> bool:
    return any(p.dtype == torch.float16 for p in model.parameters())


@pytest.mark.parametrize("step_ms", [4.0, 50.0])
@pytest.mark.parametrize("name,mode", RECIPE_MODES)
def test_fast_step_equals_the_stream(name, mode, step_ms):
    recipe, model = deployed_network(name, CHANNELS, step_ms, seed=3)
    decoder = family_of(recipe).decoder(model, recipe, step_ms, mode)
    samples = spike_counts(400 if step_ms == 4.0 else 120, seed=5)
    history, stream_part = samples[:60], samples[60:]

    reference = Stream(decoder)
    reference.reset(history=history)
    expected = reference(stream_part)
    fast = FastStream(decoder)
    fast.reset(history=history)
    got = np.concatenate([np.stack([fast.push(x) for x in stream_part[:30]]), fast(stream_part[30:])])

    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.ptp(expected, axis=0).min() > 0, "the test stream must move every output"
    scale = np.abs(expected).max()
    if half_precision(model):
        np.testing.assert_array_equal(got, expected)        # float16 emulated operation by operation
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * scale)

    fast.reset()
    reference.reset()
    np.testing.assert_allclose(fast(stream_part[:20]), reference(stream_part[:20]), rtol=0, atol=1e-5 * scale)


def test_fast_stream_checks_its_input():
    recipe, model = deployed_network("aegru-pruned", CHANNELS)
    fast = FastStream(family_of(recipe).decoder(model, recipe, 4.0, "stateful"))
    with pytest.raises(ConfigError, match=f"{CHANNELS} channels"):
        fast.push(np.zeros(CHANNELS + 1))
    with pytest.raises(ConfigError, match="spike counts"):
        fast.push(["a"] * CHANNELS)
    with pytest.raises(ConfigError, match=r"\(T, 48\)"):
        fast(np.zeros((4, 3)))
    with pytest.raises(ConfigError, match="no samples"):
        fast(np.zeros((0, CHANNELS)))
    for bad in ([None] * CHANNELS, np.full(CHANNELS, np.nan, np.float32), np.r_[np.zeros(CHANNELS - 1), np.inf]):
        with pytest.raises(ConfigError, match="finite"):
            fast.push(bad)
    with pytest.raises(ConfigError, match="finite"):
        fast(np.full((3, CHANNELS), np.nan))


def test_read_only_and_strided_samples_decode_like_plain_ones():
    recipe, model = deployed_network("aegru-pruned", CHANNELS)
    decoder = family_of(recipe).decoder(model, recipe, 4.0, "windowed")
    samples = spike_counts(50, seed=2)
    expected = FastStream(decoder)(samples)
    read_only = samples.copy()
    read_only.setflags(write=False)
    strided = np.asfortranarray(samples)
    for block in (read_only, strided):
        fast = FastStream(decoder)
        np.testing.assert_array_equal(np.stack([fast.push(x) for x in block]), expected)


def test_a_decoder_without_a_fast_step_is_refused():
    from motordecode.decoders.base import Decoder

    class Plain(Decoder):
        def initial_state(self, batch=1):
            return ()

        def sequence(self, x, state):
            return x, state

    with pytest.raises(ConfigError, match="no fast step path"):
        FastStream(Plain(torch.nn.Identity(), 4))


def perturb_normalisation_and_neurons(model) -> None:
    """Move what random weights leave at defaults: BatchNorm statistics and affine terms, LayerNorm
    affine terms, and the NeuroBench neurons' beta (one past the clamp at 1), spike value and
    threshold dtypes."""
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.normal_(0, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2, generator=g)
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.LayerNorm)):
                m.weight.normal_(1, 0.3, generator=g)
                m.bias.normal_(0, 0.3, generator=g)
    lifs = [m for name, m in model.named_modules() if name.startswith("lif") and hasattr(m, "graded_spikes_factor")]
    for i, lif in enumerate(lifs):
        lif.beta = torch.tensor(1.3 if i == 0 else 0.7)
        lif.graded_spikes_factor = torch.tensor(1.5)
        lif.threshold = torch.tensor(1) if i == 0 else torch.tensor(0.25, dtype=torch.float64)


@pytest.mark.parametrize("name,mode", [("aegru", "windowed"), ("aegru", "stateful"), ("ann2d", None), ("ann3d", None),
                                       ("snn2", None), ("snn3d", None)])
def test_fast_step_follows_normalisation_statistics_and_neuron_settings(name, mode):
    # AEGRU as in the challenge code: BatchNorm after the input FC, LayerNorm before the readout
    overrides = {"batchnorm": True, "layernorm": True} if name == "aegru" else None
    recipe, model = deployed_network(name, CHANNELS, 4.0, seed=7, overrides=overrides)
    perturb_normalisation_and_neurons(model)
    assert name != "aegru" or (model.bn is not None and model.ln is not None)
    decoder = family_of(recipe).decoder(model, recipe, 4.0, mode)
    samples = spike_counts(300, seed=9) + np.random.default_rng(1).random((300, CHANNELS)).astype(np.float32) * 0.3
    expected = Stream(decoder)(samples)
    assert np.ptp(expected, axis=0).min() > 0
    np.testing.assert_allclose(FastStream(decoder)(samples), expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_the_install_compiles_every_recipe_modes_fast_step():
    """`make install` runs compile_fast_steps (a float16 RSNN refuses its fractional warm-up input and
    is warmed on counts): every recipe-mode with a fast step is compiled, none fails."""
    from motordecode.decoders.fast import compile_fast_steps
    from motordecode.decoders.registry import family_of, recipes
    from motordecode.recipes import get_recipe

    assert compile_fast_steps() == sum(len(family_of(get_recipe(name)).modes) for name in recipes())
