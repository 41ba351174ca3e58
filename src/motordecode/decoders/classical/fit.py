"""Fitting the classical decoders (closed form, no epochs): Wiener and Kalman filters.

Both see the session's samples as one stream; the Wiener filter's ridge strength is chosen by R2
on the validation split, the Kalman filter is fitted on the training split (validation only scored).
A fit takes seconds and is deterministic, so ``resume`` simply fits again.
"""

from __future__ import annotations

import time

from motordecode.decoders.classical.kalman import KalmanFilter
from motordecode.decoders.classical.wiener import WienerFilter
from motordecode.errors import ConfigError
from motordecode.training.epochs import TrainResult
from motordecode.training.stream_validation import stream_r2


def make_estimator(recipe, step_ms: float):
    """The unfitted estimator a classical recipe describes, for samples ``step_ms`` apart."""
    bin_samples = recipe.count_samples(step_ms)
    if recipe.model == "wiener":
        return WienerFilter(history=recipe.history, bin_samples=bin_samples, alphas=recipe.alpha_list())
    return KalmanFilter(bin_samples=bin_samples, steady_state=recipe.steady_state, ridge=recipe.ridge)


class ClassicalTrainer:
    def __init__(self, recipe, recording, split, **_options):
        """Seeds, threads, run directories, pre-training and the device do not apply to a closed-form
        fit: it always fits on the CPU (seconds, in float64 numpy)."""
        self.recipe, self.recording, self.split = recipe, recording, split

    def fit(self, resume: bool = False, stop_after_epochs: int | None = None) -> TrainResult:
        """Fit on the training split; returns the streaming module with the validation R2."""
        started = time.perf_counter()
        rec, split = self.recording, self.split
        if len(split.val) == 0:
            raise ConfigError(f"{rec.name}: the validation split is empty; the {self.recipe.model} fit is scored "
                              "(and the Wiener filter's ridge strength chosen) on it. Use a longer recording, with "
                              "enough reaches (or samples) for a validation part.")
        estimator = make_estimator(self.recipe, rec.step_ms)
        X, y = rec.spikes, rec.velocity
        if self.recipe.model == "wiener":
            estimator.fit(X, y, index=split.train, val_index=split.val)
        else:
            estimator.fit(X, y, index=split.train)
        from motordecode.decoders.classical import FAMILY

        module = estimator.to_module().eval()
        val_r2 = stream_r2(FAMILY.decoder(module, self.recipe, rec.step_ms), X, y, split.val)
        entry = {"stage": "fit", "val_r2": val_r2, "seconds": time.perf_counter() - started}
        if self.recipe.model == "wiener":
            entry["alpha"] = estimator.alpha_
        else:
            entry["gain_steps"] = int(len(estimator.gains_))
        return TrainResult(model=module, val_r2=val_r2, history=[entry], deployed_bits={})
