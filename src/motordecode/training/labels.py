"""Label standardisation shared by the trainers: train on standardised labels, then fold the scale
into the readout, so the trained decoder outputs velocity in the recording's units.

    v' = (v - mu) / sigma,    mu, sigma: mean and std of the training labels per axis

(sigma = 1 where a label axis is constant; mu = 0 for decoders whose readout has no bias). The
network learns v'; afterwards ``v = sigma * y + mu`` is folded into the readout
(``model.set_output_scale(scale, shift)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelScale:
    shift: np.ndarray   # mu (D,), float32
    scale: np.ndarray   # sigma (D,), float32, never 0

    @classmethod
    def fit(cls, labels: np.ndarray, index: np.ndarray, center: bool = True) -> "LabelScale":
        """mu and sigma of ``labels[index]`` (float64 statistics, kept as float32)."""
        rows = np.asarray(labels)[index].astype(np.float64)
        std = rows.std(axis=0)
        shift = rows.mean(axis=0) if center else np.zeros(rows.shape[1])
        return cls(shift.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32))

    @classmethod
    def identity(cls, n_outputs: int) -> "LabelScale":
        return cls(np.zeros(n_outputs, np.float32), np.ones(n_outputs, np.float32))

    def apply(self, labels: np.ndarray) -> np.ndarray:
        """v' = (v - mu) / sigma, float32."""
        return ((np.asarray(labels) - self.shift) / self.scale).astype(np.float32)
