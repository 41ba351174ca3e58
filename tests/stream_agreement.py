"""The check the real-recording tests share: a trained decoder's fast step path against its PyTorch
stream over the test split of a recording (the decoder window filled from the samples before it)."""

from __future__ import annotations

import numpy as np

from motordecode.data.splits import default_split
from motordecode.decoders.base import Stream
from motordecode.decoders.fast import FastStream
from motordecode.metrics.r2 import r2_per_axis


def assert_fast_path_agrees(decoder, recording, exact: bool = False) -> tuple[float, float]:
    """The fast stream's velocities equal the PyTorch stream's to 1e-5 of the largest (``exact``:
    bit for bit); returns both test R2s (they must agree to 1e-5)."""
    test = default_split(recording).test
    history, samples = recording.spikes[:test[0]], recording.spikes[test]
    velocities = []
    for stream in (Stream(decoder), FastStream(decoder)):
        stream.reset(history=history)
        velocities.append(stream(samples))
    reference, fast = velocities
    if exact:
        np.testing.assert_array_equal(fast, reference)
    else:
        np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-5 * np.abs(reference).max())
    r2 = [float(r2_per_axis(v, recording.velocity[test]).mean()) for v in velocities]
    assert abs(r2[0] - r2[1]) < 1e-5
    return r2[0], r2[1]
