"""Training tinyRSNN / bigRSNN as the RSNN repository does, with a checkpoint after every epoch.

Stages, each an SMORMS3 run with a cosine learning-rate schedule over its epochs:

1. ``pretrain`` (its own run, :class:`~motordecode.decoders.rsnn.pretrainer.SpikingPretrainer`,
   shared by the fine-tunings on a monkey's sessions): the trainer starts from its weights.
2. ``train``: training (or fine-tuning) on the target session; best epoch by validation R2.
3. ``prune`` (when ``prune_start`` > 0): iterative per-matrix magnitude pruning. A candidate rate is
   applied to the last accepted model and retrained ``prune_epochs`` with the pruned weights held
   at zero; it is accepted if its train R2 >= (1 - tolerance) x the unpruned model's. Rates go up
   from ``prune_start`` in the first step size until one fails, then in the next (finer) one from
   the last accepted rate, never past ``prune_max`` or a rate that failed.
4. float16 conversion (``half``).

Loss: RMSE + firing-rate bounds. Initialisation: fluctuation-driven (input rate measured on the
training part). Labels are divided by their training std (the scale is folded into the readout
weights at the end). All randomness comes from the seed; both generators are checkpointed.

On a GPU (``device``) the network and each batch live there: the windows are cut and dropped out on
the CPU, the LIF and readout loops run as the fused Triton kernels where Triton is installed, else as
PyTorch operations (:func:`~motordecode.decoders.rsnn.loops.choose`; the fused numba kernels are the
CPU's), validation runs on the device, and the
finished network comes back on the CPU before its float16 conversion.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from motordecode.decoders.rsnn import loops
from motordecode.decoders.rsnn.lif import fluctuation_driven_init
from motordecode.errors import ConfigError
from motordecode.metrics.r2 import r2_score
from motordecode.notices import warn
from motordecode.recipes import samples_in
from motordecode.training.epochs import EpochTrainer, TrainResult, optimise_epoch
from motordecode.training.labels import LabelScale
from motordecode.training.losses import firing_regularisers, rmse
from motordecode.training.prune import apply_masks, per_matrix_masks
from motordecode.training.sequences import SequenceWindows, index_mean, mixed_batches, time_split
from motordecode.training.smorms3 import SMORMS3

EVAL_BATCH = 64


@dataclass
class Session:
    """One recording prepared for training: windows of its train part, its label scale."""
    train: SequenceWindows
    labels: LabelScale = field(repr=False)


class SpikingEpochs(EpochTrainer):
    """What the pre-training and the session's training share: windows, the network, SMORMS3 with a
    cosine schedule per stage, and one epoch (loss: RMSE + firing-rate bounds)."""

    def __init__(self, recipe, step_ms: float, *, seed: int, run_dir, progress: bool, threads: int | None,
                 initial: dict | None = None, device="auto"):
        super().__init__(recipe, seed, run_dir, progress, threads, initial, device)
        loops.requested()  # a bad MOTORDECODE_LIF_PATH is refused before any data is read
        self.dt_ms = step_ms
        self.length = samples_in(recipe.window_ms, step_ms)
        self.stride = samples_in(recipe.stride_ms, step_ms)

    def _session(self, recording, train_idx) -> Session:
        n_outputs = recording.velocity.shape[1]
        labels = (LabelScale.fit(recording.velocity, train_idx, center=False) if self.recipe.standardize_labels
                  else LabelScale.identity(n_outputs))
        windows = SequenceWindows(recording.spikes, labels.apply(recording.velocity), train_idx, self.length,
                                  self.stride)
        if len(windows) == 0:
            raise ConfigError(f"{recording.name}: no {self.recipe.window_ms:g} ms training window fits in the "
                              "train part.")
        return Session(windows, labels)

    def _network(self, n_channels: int, n_outputs: int, input_rate_hz: float):
        """The recipe's network (torch seeded with the seed): the pre-trained weights when there
        are some, else the fluctuation-driven initialisation for inputs firing at ``input_rate_hz``."""
        from motordecode.decoders.rsnn import FAMILY

        torch.manual_seed(self.seed)
        model = FAMILY.build(self.recipe, n_channels, n_outputs, self.dt_ms)
        model.lif.input_dropout = 0.0  # applied to the batches instead
        if not self._start_from_initial(model, n_channels):
            fluctuation_driven_init(model.lif, max(input_rate_hz, 1e-3), sigma_u=self.recipe.sigma_u,
                                    feedforward_share=self.recipe.feedforward_share)
        return self.placed(model)

    def _state(self, model, stage: str) -> dict:
        state = {"stage": stage, "rate": 0.0, "epoch": 0, "model": model, "best_val": -np.inf, "best": None,
                 "history": [], "masks": None, "np_rng": np.random.default_rng(self.seed),
                 "prune": {"reference": None, "accepted_rate": 0.0, "accepted": None, "step_index": 0,
                           "failed": None}}
        state["optimizer"], state["scheduler"] = self._optimizer(state)
        return state

    def _epochs(self, stage: str) -> int:
        return {"pretrain": self.recipe.pretrain_epochs, "train": self.recipe.epochs,
                "prune": self.recipe.prune_epochs}[stage]

    def _optimizer(self, state):
        opt = SMORMS3(state["model"].parameters(), lr=self.recipe.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, self._epochs(state["stage"])))
        return opt, sched

    def _training_sets(self, state) -> list[SequenceWindows]:
        """The windows the current stage trains on (interleaved when several)."""
        raise NotImplementedError

    def _validate(self, model) -> float:
        raise NotImplementedError

    # -- loop ----------------------------------------------------------------------------------
    def _batches(self, state):
        """Shuffled windows with the input dropout applied (by the batch thread, see sequences)."""
        rng, p, sets = state["np_rng"], self.recipe.dropout, self._training_sets(state)
        if state["stage"] == "pretrain":  # each batch from one recording, the recordings interleaved
            return mixed_batches(sets, self.recipe.batch_size, rng, p)
        return sets[0].batches(self.recipe.batch_size, rng, p)

    def _epoch(self, state) -> None:
        stage, model, opt = state["stage"], state["model"], state["optimizer"]
        r = self.recipe
        model.train()
        total = self._epochs(stage)
        n = sum(len(windows) for windows in self._training_sets(state))
        label = f"{stage}" + (f" {state['rate']:.2f}" if stage == "prune" else "")
        bar = self._progress_bar(-(-n // r.batch_size), f"{label} {state['epoch'] + 1}/{total}")
        def loss_of(batch):
            x, y = batch
            pred, _, spikes = model.sequence(x)
            return rmse(pred, y) + firing_regularisers(spikes, r.lb_strength, r.lb_threshold, r.ub_strength,
                                                       r.ub_threshold)

        started = time.perf_counter()
        loss_sum, seen = optimise_epoch(self._batches(state), loss_of, opt, model, state["masks"], bar, self.device)
        state["scheduler"].step()
        val = self._validate(model)
        rate = {"rate": state["rate"]} if stage == "prune" else {}
        self._end_epoch(state, loss_sum, seen, val, bar, keep_best=stage in ("pretrain", "train"),
                        snapshot=lambda: copy.deepcopy(model.state_dict()), seconds=time.perf_counter() - started,
                        **rate)

    @staticmethod
    def r2(model, windows: SequenceWindows) -> float:
        """R2 over non-overlapping windows (each from a zero state), eval mode, on the model's device."""
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        preds, labels = [], []
        with torch.no_grad():
            for x, y in windows.batches(EVAL_BATCH):
                preds.append(model(x.to(device)).reshape(-1, y.shape[-1]).float().cpu())
                labels.append(y.reshape(-1, y.shape[-1]))
        model.train(was_training)
        return float(r2_score(torch.cat(preds).numpy(), torch.cat(labels).numpy()))


class SpikingTrainer(SpikingEpochs):
    """Training on one session (from a pre-trained network when ``initial`` is given), then pruning
    and float16 conversion."""

    def __init__(self, recipe, recording, split, *, seed: int = 0, run_dir: str | os.PathLike | None = None,
                 progress: bool = True, threads: int | None = None, initial: dict | None = None, device="auto"):
        """``initial``: the state dict of a pre-trained network to start from; ``device``: where to train."""
        super().__init__(recipe, recording.step_ms, seed=seed, run_dir=run_dir, progress=progress, threads=threads,
                         initial=initial, device=device)
        self.recording = recording
        train_idx, val_idx = time_split(split, recipe.val_fraction)
        self.target = self._session(recording, train_idx)
        self.val = self.target.train.over(val_idx, self.length)
        if len(self.val) == 0:
            raise ConfigError(f"{recording.name}: the validation part is shorter than one {recipe.window_ms:g} ms window.")
        self.train_eval = self.target.train.over(train_idx, self.length)
        self.input_rate_hz = index_mean(recording.spikes, train_idx) / recording.step_s

    def stage_sizes(self) -> dict:
        """Training windows per epoch of each stage."""
        return {"train": len(self.target.train), "prune": len(self.target.train)}

    def _fresh_state(self) -> dict:
        model = self._network(self.recording.n_channels, self.recording.velocity.shape[1], self.input_rate_hz)
        return self._state(model, "train")

    def _training_sets(self, state) -> list[SequenceWindows]:
        return [self.target.train]

    def _validate(self, model) -> float:
        return self.r2(model, self.val)

    # -- stages --------------------------------------------------------------------------------
    def _restart(self, state, stage: str, rate: float = 0.0) -> None:
        state.update(stage=stage, rate=rate, epoch=0)
        state["optimizer"], state["scheduler"] = self._optimizer(state)

    def _next_stage(self, state) -> None:
        model, r, prune = state["model"], self.recipe, state["prune"]
        if state["stage"] == "train":
            if state["best"] is not None:
                model.load_state_dict(state["best"])
            if r.prune_start <= 0:
                state["stage"] = "done"
                return
            prune["reference"] = self.r2(model, self.train_eval)
            prune["accepted"] = copy.deepcopy(model.state_dict())
            self._start_candidate(state, r.prune_start)
            return
        # end of a pruning candidate: accept or reject, then choose the next rate
        score = self.r2(model, self.train_eval)
        accepted = score >= (1.0 - r.prune_tolerance) * prune["reference"]
        state["history"].append({"stage": "prune-decision", "rate": state["rate"], "train_r2": score,
                                 "reference_train_r2": prune["reference"], "accepted": bool(accepted)})
        if accepted:
            prune["accepted_rate"], prune["accepted"] = state["rate"], copy.deepcopy(model.state_dict())
        else:
            prune["failed"] = state["rate"] if prune["failed"] is None else min(prune["failed"], state["rate"])
        self._choose_next_rate(state)

    def _choose_next_rate(self, state) -> None:
        prune, r = state["prune"], self.recipe
        steps = r.prune_step_list()
        # nothing accepted means the start rate itself failed: stay unpruned
        while prune["accepted_rate"] > 0 and prune["step_index"] < len(steps):
            rate = round(prune["accepted_rate"] + steps[prune["step_index"]], 6)
            if rate <= r.prune_max + 1e-9 and (prune["failed"] is None or rate < prune["failed"] - 1e-9):
                self._start_candidate(state, rate)
                return
            prune["step_index"] += 1
        state["model"].load_state_dict(prune["accepted"])
        state["masks"], state["stage"] = None, "done"

    def _start_candidate(self, state, rate: float) -> None:
        model = state["model"]
        model.load_state_dict(state["prune"]["accepted"])
        state["masks"] = per_matrix_masks(model.pruned_weights(), rate)
        apply_masks(model.pruned_weights(), state["masks"])
        self._restart(state, "prune", rate)

    def _finish(self, state) -> TrainResult:
        model = state["model"] = state["model"].cpu().eval()
        reference = state["prune"].get("reference")
        if reference is not None and reference <= 0:
            warn(f"{self.recording.name}: the unpruned model's train R2 is {reference:.3f} (<= 0), so the pruning "
                 f"rule (accept a rate whose R2 >= {1 - self.recipe.prune_tolerance:g} x the unpruned one) accepts "
                 f"almost any rate (it pruned to {state['prune']['accepted_rate']:g}); train longer before pruning.")
        if self.recipe.standardize_labels:
            model.set_output_scale(self.target.labels.scale)
        if self.recipe.half:
            model.half()
        return TrainResult(model=model, val_r2=float(state["best_val"]), history=state["history"], deployed_bits={})
