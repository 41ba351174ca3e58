"""The fast step path: a decoder's one-sample step on NumPy state, its loops compiled with numba.

``Stream.push`` runs the PyTorch model one sample at a time; most of its 150-500 us per sample is
PyTorch's per-call overhead, not arithmetic. A :class:`FastStep` computes the same step

    (y_t, s_t) = step(x_t, s_{t-1})

with the state s in preallocated NumPy arrays and the arithmetic in a few ``@njit`` kernels, in
the model's precision: float32 (float64 where the model computes in it, the Kalman filter) and
a float16 RSNN's arithmetic as :mod:`~motordecode.decoders.rsnn.half_arithmetic` defines it. Outputs
equal the model's to float32 rounding (the sums may be taken in another order); a float16 RSNN's are
identical (one definition, with exact sums, on every CPU). The tests hold
every recipe's fast step to its ``Stream`` over whole streams.

A decoder family provides it through ``Decoder.fast_step()``; :class:`FastStream` is its real-time
face, the same as :class:`~motordecode.decoders.base.Stream`'s (``push``, a call on a block,
``reset(history=...)``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from motordecode.decoders.base import Stream
from motordecode.decoders.samples import as_float32, check_finite, check_samples
from motordecode.errors import ConfigError


class FastStep(ABC):
    """One decoder's compiled step; the state lives in the object. ``history``: samples before a
    stream that the input window reads (see ``Decoder.history``)."""

    history: int = 0

    def __init__(self, n_channels: int, n_outputs: int):
        self.n_channels, self.n_outputs = int(n_channels), int(n_outputs)

    @abstractmethod
    def reset(self) -> None:
        """Back to the initial state: zeros, empty windows."""

    @abstractmethod
    def step(self, x: np.ndarray) -> np.ndarray:
        """One sample x_t (C,) float32, C-contiguous -> a new (D,) float32 velocity."""

    def warm(self, samples: np.ndarray) -> None:
        """Fill the input window from ``samples`` (H, C) that precede the stream, decoding nothing."""


class FastStream(Stream):
    """``push(sample) -> velocity`` through a decoder's :class:`FastStep`; a call on (T, C) samples
    pushes them in turn. The face of ``Stream``, with the same input checks."""

    def __init__(self, decoder):
        step = decoder.fast_step()
        if step is None:
            raise ConfigError(f"the {type(decoder).__name__} decoder has no fast step path; use the PyTorch "
                              "stream (the torch step).", setting="step")
        self.fast = step
        super().__init__(decoder)

    def reset(self, history=None) -> None:
        self.fast.reset()
        if history is not None and self.fast.history > 0:
            recent = check_samples(history[max(0, len(history) - self.fast.history):], self.fast.n_channels, "history")
            self.fast.warm(np.require(recent, requirements="CW"))

    def push(self, sample) -> np.ndarray:
        if type(sample) is np.ndarray and sample.dtype == np.float32:
            x = check_finite(sample, "sample")
        else:
            x = as_float32(sample, "sample")
        if x.shape != (self.fast.n_channels,):
            raise ConfigError(f"expected one sample of {self.fast.n_channels} channels, got shape {x.shape}.")
        # C-contiguous and writeable: the kernels were compiled for that (a read-only array would compile anew)
        return self.fast.step(x if x.flags.c_contiguous and x.flags.writeable else np.array(x, order="C"))

    def __call__(self, samples) -> np.ndarray:
        x = check_samples(samples, self.fast.n_channels, "stream")
        if len(x) == 0:
            raise ConfigError("no samples to decode: pass (T, C) samples with T >= 1.")
        out = np.empty((len(x), self.fast.n_outputs), dtype=np.float32)
        for t in range(len(x)):
            out[t] = self.fast.step(np.array(x[t], order="C"))
        return out


def compile_fast_steps(n_channels: int = 8) -> int:
    """Compile (and cache, numba's ``cache=True``) every recipe's fast step kernels by decoding two
    samples with each recipe's deployed network; the install runs it, so that a first ``serve`` or
    stream does not wait ~30 s for the compiler. Returns the number of recipe-modes compiled."""
    from motordecode.decoders.registry import family_of, recipes
    from motordecode.decoders.untrained import deployed_network
    from motordecode.recipes import get_recipe

    compiled = 0
    for name in recipes():
        family = family_of(get_recipe(name))
        recipe, model = deployed_network(name, n_channels)
        for mode in family.modes:
            stream = FastStream(family.decoder(model, recipe, 4.0, mode))
            try:
                stream(np.ones((2, n_channels), np.float32) + np.float32(0.5))  # the table's fallback path too
            except ConfigError:  # a float16 RSNN takes integer counts only (decoders/rsnn/half_arithmetic.py)
                stream(np.ones((2, n_channels), np.float32))
            stream.push(np.ones(n_channels, np.float32))
            compiled += 1
    return compiled
