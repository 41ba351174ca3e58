"""Pre-training tinyRSNN / bigRSNN on several sessions of one monkey, once, for all of them.

One stage, ``pretrain``: ``pretrain_epochs`` of SMORMS3 (cosine schedule) over the training
windows of every recording, each batch from one recording, the recordings interleaved. Each
recording's labels are divided by their own training std. The kept epoch is the one with the best
validation R2, averaged over the recordings (each on its own validation part), so the result
depends on the recipe, the recordings and the seed only, never on the session fine-tuned next.
The network starts from the fluctuation-driven initialisation for the recordings' mean input
rate (weighted by training samples).
"""

from __future__ import annotations

import numpy as np

from motordecode.data.splits import default_split
from motordecode.decoders.rsnn.trainer import SpikingEpochs
from motordecode.errors import ConfigError
from motordecode.training.epochs import TrainResult
from motordecode.training.sequences import index_mean, time_split


class SpikingPretrainer(SpikingEpochs):
    def __init__(self, recipe, recordings, *, seed: int = 0, run_dir=None, progress: bool = True,
                 threads: int | None = None, device="auto"):
        from motordecode.pretraining import check_compatible

        first = check_compatible(recordings)
        super().__init__(recipe, first.step_ms, seed=seed, run_dir=run_dir, progress=progress, threads=threads,
                         device=device)
        self.shape = (first.n_channels, first.velocity.shape[1])
        self.sessions, self.vals, rates, weights = [], [], [], []
        for recording in recordings:
            train_idx, val_idx = time_split(default_split(recording), recipe.val_fraction)
            session = self._session(recording, train_idx)
            self.sessions.append(session)
            val = session.train.over(val_idx, self.length)
            if len(val):
                self.vals.append(val)
            rates.append(index_mean(recording.spikes, train_idx) / recording.step_s)
            weights.append(len(train_idx))
        if not self.vals:
            raise ConfigError(f"no pre-training recording has a validation part of one {recipe.window_ms:g} ms window.")
        self.input_rate_hz = float(np.average(rates, weights=weights))

    def stage_sizes(self) -> dict:
        return {"pretrain": sum(len(s.train) for s in self.sessions)}

    def _fresh_state(self) -> dict:
        return self._state(self._network(*self.shape, self.input_rate_hz), "pretrain")

    def _training_sets(self, state) -> list:
        return [s.train for s in self.sessions]

    def _validate(self, model) -> float:
        """Validation R2 averaged over the recordings."""
        return float(np.mean([self.r2(model, val) for val in self.vals]))

    def _next_stage(self, state) -> None:
        if state["best"] is not None:  # None when no epoch had a finite validation R2: keep the last
            state["model"].load_state_dict(state["best"])
        state["stage"] = "done"

    def _finish(self, state) -> TrainResult:
        return TrainResult(model=state["model"].cpu().eval(), val_r2=float(state["best_val"]), history=state["history"])
