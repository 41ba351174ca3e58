"""The one streaming face every decoder has, and the :class:`Stream` that serves every recipe.

A decoder maps a stream of samples x_0, x_1, ... (spike counts of C channels, one per bin of the
recording) to velocities y_0, y_1, ..., carrying a state s (a NamedTuple, norse's style):

    (y_t, s_t) = step(x_t, s_{t-1}),      s_{-1} = initial_state(batch)
    (y, s_T)   = sequence(x, s)           the same as T steps, x of shape (T, batch, C)

``history`` is the number of samples before a stream's first one that a decoder's input window
reads (the GRU's sub-windows; 0 for the others); ``warm(state, samples)`` fills that window
without decoding, so the first windows of a stream that starts in the middle of a recording hold
real samples. Recurrent state still starts at zero, as in the published evaluations.
``model`` is the ``nn.Module`` whose layers the metrics harness records and counts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NamedTuple

import numpy as np
import torch

from motordecode.decoders.samples import as_float32, check_samples
from motordecode.errors import ConfigError


class Decoder(ABC):
    mode: str = "stream"
    history: int = 0

    def __init__(self, model: torch.nn.Module, n_channels: int):
        self.model = model.eval()
        self.n_channels = int(n_channels)

    @abstractmethod
    def initial_state(self, batch: int = 1) -> NamedTuple:
        """The state before the first sample: zeros, empty windows."""

    @abstractmethod
    def sequence(self, x: torch.Tensor, state: NamedTuple) -> tuple[torch.Tensor, NamedTuple]:
        """(T, batch, C) samples -> ((T, batch, D) velocities, state after the last sample)."""

    def step(self, x_t: torch.Tensor, state: NamedTuple) -> tuple[torch.Tensor, NamedTuple]:
        """(batch, C) one sample -> ((batch, D) velocity, next state)."""
        y, state = self.sequence(x_t[None], state)
        return y[0], state

    def warm(self, state: NamedTuple, samples: torch.Tensor) -> NamedTuple:
        """The state with the input window filled from ``samples`` (H, batch, C) that precede the
        stream; nothing is decoded. Decoders without an input window (``history`` 0) keep ``state``."""
        return state

    def fast_step(self):
        """The same step on NumPy state with compiled loops (:mod:`motordecode.decoders.fast`), or
        None where the family has none."""
        return None


class Stream:
    """Real-time use of any decoder: ``push(sample) -> velocity``, or call it on a block,
    ``stream(samples) -> velocities``.

    Samples are spike counts of one bin of the recording, (C,) for ``push`` and (T, C) for a call;
    velocities are in the recording's units, (D,) and (T, D). The state carries across calls
    until ``reset()``; ``reset(history=samples)`` starts from the samples before the stream.
    """

    def __init__(self, decoder: Decoder):
        self.decoder = decoder
        self.reset()

    @property
    def mode(self) -> str:
        return self.decoder.mode

    def reset(self, history=None) -> None:
        """Back to the initial state; ``history``: the samples before the stream (only the last
        ``decoder.history`` of them are read)."""
        self.state = self.decoder.initial_state(1)
        if history is not None and self.decoder.history > 0:
            recent = self._samples(history[max(0, len(history) - self.decoder.history):], "history")
            self.state = self.decoder.warm(self.state, recent[:, None])

    def _samples(self, samples, what: str) -> torch.Tensor:
        return torch.from_numpy(check_samples(samples, self.decoder.n_channels, what))

    @torch.no_grad()
    def push(self, sample) -> np.ndarray:
        x = torch.from_numpy(as_float32(sample, "sample"))
        if x.shape != (self.decoder.n_channels,):
            raise ConfigError(f"expected one sample of {self.decoder.n_channels} channels, got shape "
                              f"{tuple(x.shape)}.")
        y, self.state = self.decoder.step(x[None], self.state)
        return y[0].float().numpy()

    @torch.no_grad()
    def __call__(self, samples) -> np.ndarray:
        x = self._samples(samples, "stream")
        if len(x) == 0:
            raise ConfigError("no samples to decode: pass (T, C) samples with T >= 1.")
        y, self.state = self.decoder.sequence(x[:, None], self.state)
        return y[:, 0].float().numpy()


# -- decoders whose network keeps its state in module buffers --------------------------------------
class BufferedDecoder(Decoder):
    """The face of a network that streams (T, C) -> (T, D) and keeps its state in buffers (the
    NeuroBench baselines keep theirs under the published names, so the footprint matches).

    The model provides ``reset()``, ``stream_state() -> NamedTuple`` and ``load_stream_state(s)``.
    Each call loads the given state, runs, reads the new state and leaves the model at rest again,
    so the state lives only in what ``sequence`` takes and returns. Batch elements run in turn;
    tensor fields of the state get a leading batch dimension."""

    def initial_state(self, batch: int = 1) -> NamedTuple:
        self.model.reset()
        return stack_states([self.model.stream_state()] * batch)

    def sequence(self, x: torch.Tensor, state: NamedTuple) -> tuple[torch.Tensor, NamedTuple]:
        outputs, states = [], []
        try:
            for b in range(x.shape[1]):
                self.model.load_stream_state(select_state(state, b))
                outputs.append(self.model(x[:, b]))
                states.append(self.model.stream_state())
        finally:
            self.model.reset()
        return torch.stack(outputs, dim=1), stack_states(states)


def stack_states(states: list[NamedTuple]) -> NamedTuple:
    """One state of a batch from per-element states: tensors stacked on a new dim 0, other
    fields (step counters) equal across the batch and kept."""
    first = states[0]
    fields = []
    for i, value in enumerate(first):
        if torch.is_tensor(value):
            fields.append(torch.stack([s[i] for s in states]))
        else:
            fields.append(value)
    return type(first)(*fields)


def select_state(state: NamedTuple, b: int) -> NamedTuple:
    """Batch element ``b`` of a stacked state."""
    return type(state)(*(v[b] if torch.is_tensor(v) else v for v in state))


def carried_windows(features, recent: torch.Tensor, x: torch.Tensor, raw: bool = False):
    """Window features of a run of samples continuing a stream: ((T, batch, k, C) features of the
    windows ending at each sample of ``x`` (T, batch, C), new ``recent``), where ``recent`` holds
    the stream's last ``span - 1`` samples (batch rows are separate streams). ``features`` is a
    :class:`~motordecode.data.features.WindowFeatures`; ``raw`` gives the float64 sums."""
    steps, batch, channels = x.shape
    flat = lambda t: t.detach().cpu().reshape(len(t), batch * channels).numpy()  # noqa: E731 - all rows' channels
    f, recent = features.carried(flat(recent), flat(x.to(recent.dtype)), raw=raw)
    f = torch.from_numpy(f).reshape(steps, features.n_sub, batch, channels).transpose(1, 2)
    return f, torch.from_numpy(recent).reshape(-1, batch, channels)
