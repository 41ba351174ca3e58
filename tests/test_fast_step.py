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


def test_a_decoder_without_a_fast_step_is_refused():
    from motordecode.decoders.base import Decoder

    class Plain(Decoder):
        def initial_state(self, batch=1):
            return ()

        def sequence(self, x, state):
            return x, state

    with pytest.raises(ConfigError, match="no fast step path"):
        FastStream(Plain(torch.nn.Identity(), 4))
