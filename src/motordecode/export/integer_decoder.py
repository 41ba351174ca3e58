"""A trained GRU-family run (AEGRU, vanilla GRU, delta GRU) as an integer decoder in one inference
mode: the quantised network and the sub-window counts it reads, run on streams of samples."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from motordecode.data.features import WindowFeatures
from motordecode.errors import ConfigError
from motordecode.export.integer_delta import from_delta_model, run_delta
from motordecode.export.integer_gru import SAMPLE_MAX, IntegerGRU, from_model, run_stateful, run_windowed

INTEGER_FAMILIES = ("gru", "delta")


@dataclass
class IntegerDecoder:
    net: IntegerGRU
    mode: str                  # "windowed", "stateful" (GRU family) or "stream" (delta GRU)
    features: WindowFeatures   # sums only; the transform is the net's table
    n_channels: int

    def outputs(self, samples: np.ndarray) -> np.ndarray:
        """Raw int outputs (T, D) of a stream of integer samples (T, C) from the zero state."""
        samples = np.asarray(samples)
        if samples.ndim != 2 or samples.shape[1] != self.n_channels:
            raise ConfigError(f"samples must be (T, {self.n_channels}), got shape {samples.shape}.")
        if samples.size and (samples.min() < 0 or not np.array_equal(samples, np.round(samples))):
            raise ConfigError("the integer decoder reads non-negative integer spike counts.")
        samples = np.minimum(samples.astype(np.int64), SAMPLE_MAX)
        zeros = np.zeros((self.features.span - 1, self.n_channels))
        sums, _ = self.features.carried(zeros, samples.astype(np.float64), raw=True)
        sums = np.rint(sums).astype(np.int64)                       # (T, k, C)
        if self.mode == "windowed":
            return run_windowed(self.net, sums)
        if self.mode == "stateful":
            return run_stateful(self.net, sums[:, 0], self.features.sub_width)
        return run_delta(self.net, sums[:, 0])

    def velocity(self, samples: np.ndarray) -> np.ndarray:
        """(T, D) velocities in the recording's units."""
        return self.net.velocity(self.outputs(samples))


def integer_decoder(run, mode: str | None, train_samples: np.ndarray) -> IntegerDecoder:
    """The integer form of ``run`` (a loaded :class:`~motordecode.api.Run`) in ``mode`` (default: the
    recipe's published one); ``train_samples`` (T, C) calibrate the input layer's output format."""
    from motordecode.decoders.gru.inference import window_features
    from motordecode.decoders.registry import family_of
    from motordecode.runs import step_ms

    family = family_of(run.recipe)
    if family.name not in INTEGER_FAMILIES:
        raise ConfigError(f"{run.recipe.name} ({family.name} family) has no integer form; integer export "
                          f"covers the GRU and delta GRU families.")
    mode = family.resolve_mode(mode)
    step = step_ms(run.config)
    if run.model.fc_out.weight.dtype != torch.float32:
        raise ConfigError(f"{run.recipe.name}: the integer export quantises float32 models.")
    calibration = window_features(run.recipe, step, n_sub=1)(np.asarray(train_samples, dtype=np.float32))[:, 0]
    if family.name == "delta":
        net = from_delta_model(run.model, calibration, run.recipe.transform)
    else:
        net = from_model(run.model, calibration, run.recipe.transform)
    n_sub = run.recipe.n_sub if mode == "windowed" else 1
    features = WindowFeatures(n_sub, run.recipe.sub_width(step))
    return IntegerDecoder(net, mode, features, run.model.config.n_channels)
