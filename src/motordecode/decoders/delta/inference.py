"""The delta GRU's streaming face: at every sample, the newest sub-window's transformed counts
go through the delta input layer and one delta GRU step (the window reader is the GRU family's,
with k = 1)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from motordecode.decoders.delta.model import DeltaNetState
from motordecode.decoders.gru.inference import WindowReader, window_features


class DeltaStreamState(NamedTuple):
    recent: torch.Tensor      # the last w - 1 samples (w - 1, batch, C)
    net: DeltaNetState        # x^ of the input layer; h, u^, h^, M of the cell


class DeltaDecoder(WindowReader):
    mode = "stream"

    def initial_state(self, batch: int = 1) -> DeltaStreamState:
        return DeltaStreamState(self._empty_window(batch), self.model.initial_state(batch))

    def sequence(self, x: torch.Tensor, state: DeltaStreamState):
        features, recent = self._read(state.recent, x)
        y, net, _ = self.model(features[:, :, 0].transpose(0, 1), state.net)
        return y.transpose(0, 1), DeltaStreamState(recent, net)

    def step(self, x_t: torch.Tensor, state: DeltaStreamState):
        features, recent = self._newest(state.recent, x_t)
        y, net, _ = self.model(features, state.net)
        return y[:, 0], DeltaStreamState(recent, net)

    def fast_step(self):
        from motordecode.decoders.delta.fast_step import DeltaGRUFast

        return DeltaGRUFast(self.model, self.n_channels, self.features)


def make_decoder(model, recipe, step_ms: float) -> DeltaDecoder:
    return DeltaDecoder(model, model.config.n_channels, window_features(recipe, step_ms, n_sub=1))
