"""Training a GRU decoder as the AEGRU paper does, with a checkpoint after every epoch.

Stages: ``train`` (Adam, weight decay, cosine annealing over the epochs, best epoch by validation
R2), then, when a pruning rate is set, ``finetune`` (global L1 pruning of the best model, then
epochs at a constant small learning rate on train + validation with the masks re-applied after every
step), then quantisation. All randomness comes from the seed: one numpy generator (order, jitter) and
torch's generator (initialisation, reparameterisation noise, dropout); both are saved in the
checkpoint, so a resumed run ends exactly where an uninterrupted one would.
"""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from motordecode.errors import ConfigError
from motordecode.fileio import atomic_write_path
from motordecode.inference import WindowedInference, make_inference
from motordecode.metrics.r2 import r2_score
from motordecode.models.build import build_branch, build_decoder
from motordecode.training.batches import WindowBatches, prefetched
from motordecode.training.losses import decoder_loss
from motordecode.training.prune import apply_masks, global_l1_masks
from motordecode.training.quantize import quantize_weights

STATE_FILE = "train_state.pt"
EVAL_CHUNK = 16384


@dataclass
class TrainResult:
    model: torch.nn.Module
    val_r2: float
    history: list = field(default_factory=list)
    deployed_bits: dict = field(default_factory=dict)


def predict_windows(model, inputs: torch.Tensor) -> np.ndarray:
    """Windowed predictions (last step) for (n, k, C) inputs, in chunks, eval mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = [WindowedInference.run(model, inputs[i : i + EVAL_CHUNK]) for i in range(0, len(inputs), EVAL_CHUNK)]
    model.train(was_training)
    return torch.cat(out).numpy()


class EpochTrainer:
    """What the GRU and spiking trainers share: where checkpoints go, how many cores torch uses
    (default: all but one, which cuts the batches), and starting fresh or from ``train_state.pt``.
    Subclasses provide ``_fresh_state()``, ``_load()`` and ``_fit(state, stop_after_epochs)``."""

    def __init__(self, recipe, seed: int, run_dir: str | os.PathLike | None, progress: bool, threads: int | None):
        self.recipe, self.seed = recipe, int(seed)
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.progress = progress
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)

    def fit(self, resume: bool = False, stop_after_epochs: int | None = None) -> TrainResult | None:
        """Train (or resume) to the end; with ``stop_after_epochs`` stop early (returns None)."""
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._fit(self._initial_state(resume), stop_after_epochs)
        finally:
            torch.set_num_threads(threads)

    def _restore_progress(self, state: dict, blob: dict) -> None:
        """Optimiser, schedule and random generators of a checkpoint (``state`` holds its model)."""
        state["optimizer"], state["scheduler"] = self._optimizer(state)
        state["optimizer"].load_state_dict(blob["optimizer"])
        if state["scheduler"] is not None:
            state["scheduler"].load_state_dict(blob["scheduler"])
        state["np_rng"].bit_generator.state = blob["np_rng"]
        torch.set_rng_state(blob["torch_rng"])

    def _initial_state(self, resume: bool) -> dict:
        if not resume:
            return self._fresh_state()
        if self.run_dir is None or not (self.run_dir / STATE_FILE).exists():
            raise ConfigError(f"nothing to resume: no {STATE_FILE} in {self.run_dir}.")
        return self._load()


class Trainer(EpochTrainer):
    def __init__(self, recipe, recording, split, seed: int = 0, run_dir: str | os.PathLike | None = None,
                 progress: bool = True, threads: int | None = None):
        super().__init__(recipe, seed, run_dir, progress, threads)
        self.recording, self.split = recording, split
        if len(split.train) == 0 or len(split.val) == 0:
            raise ConfigError("training needs non-empty train and validation splits.")
        self.val_inputs = make_inference("windowed", recipe, recording.step_s).inputs(recording.spikes, split.val)
        labels = recording.velocity
        self.label_shift = np.zeros(labels.shape[1], np.float32)
        self.label_scale = np.ones(labels.shape[1], np.float32)
        if recipe.standardize_labels:
            train_labels = labels[split.train].astype(np.float64)
            std = train_labels.std(axis=0)
            self.label_shift = train_labels.mean(axis=0).astype(np.float32)
            self.label_scale = np.where(std > 0, std, 1.0).astype(np.float32)
            labels = ((labels - self.label_shift) / self.label_scale).astype(np.float32)
        self.val_labels = labels[split.val]
        self.train_batches = WindowBatches(recording.spikes, labels, split.train, recipe.sub_width(recording.step_s),
                                           recipe.steps_per_example, recipe.transform)
        self.finetune_batches = self.train_batches.with_ends(np.concatenate([split.train, split.val]))
        if len(self.train_batches) == 0:
            raise ConfigError("no training window fits in the recording; shorten window_ms or n_sub.")

    # -- state ---------------------------------------------------------------------------------
    def _fresh_state(self) -> dict:
        torch.manual_seed(self.seed)
        n_out = self.recording.velocity.shape[1]
        model = build_decoder(self.recipe, self.recording.n_channels, n_out)
        branch = build_branch(self.recipe, self.recording.n_channels)
        state = {"stage": "train", "epoch": 0, "model": model, "branch": branch, "best_val": -np.inf,
                 "best": None, "history": [], "masks": None, "np_rng": np.random.default_rng(self.seed)}
        state["optimizer"], state["scheduler"] = self._optimizer(state)
        return state

    def _params(self, state):
        params = list(state["model"].parameters())
        if state["branch"] is not None:
            params += list(state["branch"].parameters())
        return params

    def _stage(self, stage: str) -> tuple[float, int, bool]:
        """(learning rate, epochs, cosine annealing) of a stage."""
        if stage == "train":
            return self.recipe.lr, self.recipe.epochs, True
        return self.recipe.finetune_lr, self.recipe.finetune_epochs, False

    def _optimizer(self, state):
        lr, epochs, cosine = self._stage(state["stage"])
        opt = torch.optim.Adam(self._params(state), lr=lr, weight_decay=self.recipe.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs) if cosine else None
        return opt, sched

    def _save(self, state) -> None:
        if self.run_dir is None:
            return
        blob = {
            "stage": state["stage"], "epoch": state["epoch"], "best_val": float(state["best_val"]),
            "history": state["history"], "model": state["model"].state_dict(),
            "branch": None if state["branch"] is None else state["branch"].state_dict(),
            "best": state["best"], "masks": state["masks"],
            "optimizer": state["optimizer"].state_dict(),
            "scheduler": None if state["scheduler"] is None else state["scheduler"].state_dict(),
            "np_rng": state["np_rng"].bit_generator.state, "torch_rng": torch.get_rng_state(),
        }
        with atomic_write_path(self.run_dir / STATE_FILE) as tmp:
            torch.save(blob, tmp)

    def _load(self) -> dict:
        path = self.run_dir / STATE_FILE
        blob = torch.load(path, weights_only=True)
        state = self._fresh_state()
        state["model"].load_state_dict(blob["model"])
        if state["branch"] is not None:
            state["branch"].load_state_dict(blob["branch"])
        state.update(stage=blob["stage"], epoch=blob["epoch"], best_val=blob["best_val"], best=blob["best"],
                     history=blob["history"], masks=blob["masks"])
        self._restore_progress(state, blob)
        return state

    # -- loop ----------------------------------------------------------------------------------
    def _fit(self, state: dict, stop_after_epochs: int | None) -> TrainResult | None:
        done_now = 0
        while True:
            _, total, _ = self._stage(state["stage"])
            if state["epoch"] >= total:
                if not self._next_stage(state):
                    break
                continue
            if stop_after_epochs is not None and done_now >= stop_after_epochs:
                return None
            self._epoch(state, total)
            done_now += 1
            self._save(state)
        return self._finish(state)

    def _epoch(self, state, total: int) -> None:
        stage, model, branch = state["stage"], state["model"], state["branch"]
        batches = self.train_batches if stage == "train" else self.finetune_batches
        model.train()
        if branch is not None:
            branch.train()
        opt, rng = state["optimizer"], state["np_rng"]
        n_batches = -(-len(batches) // self.recipe.batch_size)
        bar = _bar(n_batches, f"{stage} {state['epoch'] + 1}/{total}", self.progress)
        def loss_of(batch):
            x, counts, labels = batch
            if model.bn is not None and len(x) * x.shape[1] < 2:
                return None  # BatchNorm needs two values
            return self._loss(model, branch, x, counts, labels)[0]

        loss_sum, seen = optimise_epoch(batches.epoch(self.recipe.batch_size, rng, self.recipe.jitter_p), loss_of,
                                        opt, model, state["masks"], bar)
        if state["scheduler"] is not None:
            state["scheduler"].step()
        val = r2_score(predict_windows(model, self.val_inputs), self.val_labels)
        state["epoch"] += 1
        state["history"].append({"stage": stage, "epoch": state["epoch"], "loss": loss_sum / max(seen, 1),
                                 "val_r2": float(val)})
        if stage == "train" and val > state["best_val"]:
            state["best_val"] = float(val)
            state["best"] = {"model": copy.deepcopy(model.state_dict()),
                             "branch": None if branch is None else copy.deepcopy(branch.state_dict())}
        if bar is not None:
            bar.set_postfix(loss=f"{loss_sum / max(seen, 1):.4f}", val_r2=f"{val:.4f}")
            bar.close()

    def _loss(self, model, branch, x, counts, labels):
        mu = model.encode(x)
        if branch is None:
            pred, _ = model.recur(mu)
            return decoder_loss(pred, labels, mse_weight=self.recipe.mse_weight)
        z = branch.sample(x, mu)
        pred, _ = model.recur(z)
        return decoder_loss(pred, labels, branch.log_rate(z), counts, self.recipe.mse_weight, self.recipe.pnll_weight)

    def _next_stage(self, state) -> bool:
        """After ``train``: prune the best model and go on to ``finetune`` when asked; False at the end."""
        if state["stage"] != "train" or self.recipe.prune_rate == 0:
            return False
        self._restore_best(state)
        state["masks"] = global_l1_masks(state["model"].pruned_weights(), self.recipe.prune_rate)
        apply_masks(state["model"].pruned_weights(), state["masks"])
        state["stage"], state["epoch"] = "finetune", 0
        state["optimizer"], state["scheduler"] = self._optimizer(state)
        return True

    def _restore_best(self, state) -> None:
        if state["best"] is not None:
            state["model"].load_state_dict(state["best"]["model"])
            if state["branch"] is not None and state["best"]["branch"] is not None:
                state["branch"].load_state_dict(state["best"]["branch"])

    def _finish(self, state) -> TrainResult:
        model = state["model"]
        if state["stage"] == "train":  # no pruning: the best epoch is the result
            self._restore_best(state)
        model.eval()
        if self.recipe.standardize_labels:
            model.set_output_scale(self.label_scale, self.label_shift)
        bits = {}
        if self.recipe.quant_bits:
            bits = quantize_weights(model.pruned_weights(), self.recipe.quant_bits, self.recipe.quant_frac_bits)
        return TrainResult(model=model, val_r2=float(state["best_val"]), history=state["history"], deployed_bits=bits)


def optimise_epoch(batches, loss_of, optimizer, model, masks, bar) -> tuple[float, int]:
    """One pass of optimiser steps over ``batches`` (cut on the spare core): ``loss_of(batch)`` gives
    the loss (None skips the batch); pruned weights are re-zeroed after every step. Returns
    (sum of batch losses x batch size, examples seen)."""
    loss_sum, seen = 0.0, 0
    for batch in prefetched(batches):
        loss = loss_of(batch)
        if loss is None:
            continue
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if masks is not None:
            apply_masks(model.pruned_weights(), masks)
        loss_sum += float(loss.detach()) * len(batch[0])
        seen += len(batch[0])
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
    return loss_sum, seen


def _bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="batch", leave=True, file=sys.stderr, dynamic_ncols=True)
