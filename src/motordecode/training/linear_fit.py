"""Fitting the classical decoders (closed form, no epochs): Wiener and Kalman filters.

Both see the session's samples as one stream; the Wiener filter's ridge strength is chosen by R2
on the validation split, the Kalman filter is fitted on the training split (validation only scored).
"""

from __future__ import annotations

import time

from motordecode.models.kalman import KalmanFilter
from motordecode.models.wiener import WienerFilter
from motordecode.training.stream_validation import stream_r2
from motordecode.training.trainer import TrainResult


def make_linear(recipe, step_s: float):
    """The unfitted estimator a linear recipe describes, for samples of ``step_s``."""
    bin_samples = recipe.count_samples(step_s)
    if recipe.model == "wiener":
        return WienerFilter(history=recipe.history, bin_samples=bin_samples, alphas=recipe.alpha_list())
    return KalmanFilter(bin_samples=bin_samples, steady_state=recipe.steady_state, ridge=recipe.ridge)


def fit_linear(recipe, recording, split) -> TrainResult:
    """Fit on the training split; returns the streaming module with the validation R2."""
    started = time.perf_counter()
    estimator = make_linear(recipe, recording.step_s)
    X, y = recording.spikes, recording.velocity
    if recipe.model == "wiener":
        estimator.fit(X, y, index=split.train, val_index=split.val)
    else:
        estimator.fit(X, y, index=split.train)
    module = estimator.to_module().eval()
    val_r2 = stream_r2(module, X, y, split.val)
    entry = {"stage": "fit", "val_r2": val_r2, "seconds": time.perf_counter() - started}
    if recipe.model == "wiener":
        entry["alpha"] = estimator.alpha_
    else:
        entry["gain_steps"] = int(len(estimator.gains_))
    return TrainResult(model=module, val_r2=val_r2, history=[entry], deployed_bits={})
