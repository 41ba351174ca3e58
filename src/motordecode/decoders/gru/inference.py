"""The two inference modes of a GRU decoder, as two faces (:class:`~motordecode.decoders.base.Decoder`).

Both read k sub-window features of the raw samples: at sample j, sub-window m sums the w samples
ending at j - (k - 1 - m) w (see :mod:`motordecode.data.features`); the state carries the last
k w - 1 samples.

Windowed (as published, AEGRU challenge entry): at every sample j the k sub-window features ending
at j are fed to the GRU from h = 0, and the velocity after the k-th step is the prediction. Each
sample costs k GRU steps and k input FCs.

Stateful: the GRU keeps its state. With sub-windows of s samples, sample j belongs to phase
p = j mod s; each phase is its own GRU stream that advances once every s samples on the newest
sub-window (the same sub-window sequence, spaced s apart, that a window of the windowed mode
holds). Each sample costs one GRU step and one input FC, 1/k of the windowed cost, and the state
carries the history beyond the k sub-windows. States start at zero. Over a run of samples the
phases advance together as one GRU batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from motordecode.data.features import WindowFeatures
from motordecode.decoders.base import Decoder, carried_windows

def window_features(recipe, step_ms: float, n_sub: int | None = None) -> WindowFeatures:
    """The recipe's sub-window features (``n_sub`` of them, default the recipe's k)."""
    return WindowFeatures(recipe.n_sub if n_sub is None else n_sub, recipe.sub_width(step_ms),
                          transform=recipe.transform)


class WindowedState(NamedTuple):
    recent: torch.Tensor          # the last k w - 1 samples (k w - 1, batch, C)


class StatefulState(NamedTuple):
    recent: torch.Tensor          # the last w - 1 samples (w - 1, batch, C)
    h: tuple                      # GRU state of each of the s phases, (1, batch, H) each
    count: int                    # samples seen: the next sample is phase count mod s


class WindowReader(Decoder):
    """Features of a run of samples, continuing the carried window."""

    def __init__(self, model, n_channels: int, features: WindowFeatures):
        super().__init__(model, n_channels)
        if features.spacing != features.sub_width:
            raise ValueError("the GRU decoders read contiguous sub-windows (spacing = sub_width).")
        self.features = features
        self.history = features.span - 1
        self.dtype = model.fc_out.weight.dtype  # float32, or float16 for a model converted to it

    def _empty_window(self, batch: int) -> torch.Tensor:
        return torch.zeros(self.history, batch, self.n_channels)

    def _read(self, recent: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """((T, batch, k, C) features of the windows ending at each sample of x (T, batch, C), new recent)."""
        features, recent = carried_windows(self.features, recent, x)
        return features.to(self.dtype), recent

    def _newest(self, recent: torch.Tensor, x_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-sample shortcut of :meth:`_read` (tested equal): ((batch, k, C) features of the
        window ending at x_t (batch, C), new recent), the k contiguous sub-windows of the carried
        samples summed directly (exact for counts) instead of through running sums."""
        window = torch.cat([recent, x_t[None].to(recent.dtype)])
        f = self.features
        sums = window.reshape(f.n_sub, f.sub_width, *x_t.shape).sum(dim=1).transpose(0, 1)
        features = sums if f.transform is None else torch.from_numpy(f.transform(sums.numpy()))
        return features.to(self.dtype), window[1:]

    def warm(self, state, samples: torch.Tensor):
        _, recent = self._read(state.recent, samples)
        return state._replace(recent=recent)


class WindowedGRU(WindowReader):
    mode = "windowed"

    def initial_state(self, batch: int = 1) -> WindowedState:
        return WindowedState(self._empty_window(batch))

    def sequence(self, x: torch.Tensor, state: WindowedState):
        f, recent = self._read(state.recent, x)
        steps, batch = f.shape[:2]
        y = self.model(f.reshape(steps * batch, *f.shape[2:]))[:, -1]
        return y.reshape(steps, batch, y.shape[-1]), WindowedState(recent)

    def step(self, x_t: torch.Tensor, state: WindowedState):
        features, recent = self._newest(state.recent, x_t)
        return self.model(features)[:, -1], WindowedState(recent)

    def fast_step(self):
        from motordecode.decoders.gru.fast_step import WindowedGRUFast

        return WindowedGRUFast(self.model, self.n_channels, self.features)


class StatefulGRU(WindowReader):
    mode = "stateful"

    def __init__(self, model, n_channels: int, features: WindowFeatures):
        super().__init__(model, n_channels, features)
        self.phases = features.sub_width

    def initial_state(self, batch: int = 1) -> StatefulState:
        h = tuple(torch.zeros(1, batch, self.model.config.hidden, dtype=self.dtype) for _ in range(self.phases))
        return StatefulState(self._empty_window(batch), h, 0)

    def sequence(self, x: torch.Tensor, state: StatefulState):
        """The run split where the phase wraps: a partial round up to phase 0, whole rounds of s
        samples (every phase advances once per round, all in one GRU call), then the rest."""
        f, recent = self._read(state.recent, x)
        u = f[:, :, 0]                                   # (T, batch, C): the newest sub-window
        steps, batch, channels = u.shape
        s, h = self.phases, torch.cat(state.h, dim=1)  # (1, s batch, H), phase-major
        first = state.count % s
        head = min(steps, (s - first) % s)
        rounds = (steps - head) // s
        rest = steps - head - rounds * s
        outputs = [u.new_zeros(0, batch, self.model.config.n_outputs)]
        for start, n, phase, length in ((0, head, first, 1), (head, rounds * s, 0, rounds),
                                        (head + rounds * s, rest, 0, 1)):
            if n == 0:
                continue
            width = n // length                           # phases this call advances
            rows = slice(phase * batch, (phase + width) * batch)
            run = u[start:start + n].reshape(length, width * batch, channels).transpose(0, 1)
            y, h_new = self.model.sequence(run, h[:, rows].contiguous())
            h[:, rows] = h_new
            outputs.append(y.transpose(0, 1).reshape(n, batch, -1))
        return torch.cat(outputs), StatefulState(recent, tuple(h.split(batch, dim=1)), state.count + steps)

    def step(self, x_t: torch.Tensor, state: StatefulState):
        """Phase ``count mod s`` advances one GRU step on the newest sub-window."""
        features, recent = self._newest(state.recent, x_t)
        phase = state.count % self.phases
        y, h_new = self.model.sequence(features, state.h[phase])
        h = state.h[:phase] + (h_new,) + state.h[phase + 1:]
        return y[:, 0], StatefulState(recent, h, state.count + 1)

    def fast_step(self):
        from motordecode.decoders.gru.fast_step import StatefulGRUFast

        return StatefulGRUFast(self.model, self.n_channels, self.features)


def make_decoder(model, recipe, n_channels: int, step_ms: float, mode: str) -> Decoder:
    """The GRU decoder's face in ``mode`` ("windowed" or "stateful", see the family's ``modes``)."""
    if mode == "windowed":
        return WindowedGRU(model, n_channels, window_features(recipe, step_ms))
    return StatefulGRU(model, n_channels, window_features(recipe, step_ms, n_sub=1))
