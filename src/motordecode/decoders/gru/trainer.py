"""Training a GRU decoder as the AEGRU paper does, with a checkpoint after every epoch.

Stages: ``train`` (Adam, weight decay, cosine annealing over the epochs, best epoch by validation
R2), then, when a pruning rate is set, ``finetune`` (global L1 pruning of the best model, then
epochs at a constant small learning rate on train + validation with the masks re-applied after every
step), then quantisation. All randomness comes from the seed: one numpy generator (order, jitter) and
torch's generator (initialisation, reparameterisation noise, dropout); both are saved in the
checkpoint, so a resumed run ends exactly where an uninterrupted one would.

On a GPU (``device``) the network, its branch and each batch live there; batches are cut on the CPU,
the validation windows go to the device in chunks, and the finished network comes back on the CPU.
"""

from __future__ import annotations

import copy
import os
import time

import numpy as np
import torch

from motordecode.errors import ConfigError
from motordecode.metrics.r2 import r2_score
from motordecode.decoders.gru.autoencoder import AutoencoderBranch
from motordecode.decoders.gru.batches import WindowBatches
from motordecode.decoders.gru.inference import window_features
from motordecode.training.epochs import EpochTrainer, TrainResult, optimise_epoch
from motordecode.training.finetune import TrainThenFinetune
from motordecode.training.labels import LabelScale
from motordecode.training.losses import decoder_loss
from motordecode.training.quantize import quantize_weights

EVAL_CHUNK = 16384


def predict_windows(model, inputs: torch.Tensor) -> np.ndarray:
    """Windowed predictions (last step) for (n, k, C) inputs, in chunks on the model's device, eval mode."""
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    with torch.no_grad():
        out = [model(inputs[i : i + EVAL_CHUNK].to(device))[:, -1].cpu() for i in range(0, len(inputs), EVAL_CHUNK)]
    model.train(was_training)
    return torch.cat(out).numpy()


def build_branch(recipe, n_channels: int) -> AutoencoderBranch | None:
    """AEGRU's autoencoder branch, or None (vanilla GRU, or a zero reconstruction weight)."""
    if recipe.model != "aegru" or recipe.pnll_weight == 0:
        return None
    return AutoencoderBranch(n_channels, recipe.hidden, recipe.logvar_hidden)


class Trainer(TrainThenFinetune, EpochTrainer):
    modules = ("model", "branch")

    def __init__(self, recipe, recording, split, *, seed: int = 0, run_dir: str | os.PathLike | None = None,
                 progress: bool = True, threads: int | None = None, initial: dict | None = None, device="auto"):
        super().__init__(recipe, seed, run_dir, progress, threads, initial, device)
        self.recording, self.split = recording, split
        if len(split.train) == 0 or len(split.val) == 0:
            raise ConfigError("training needs non-empty train and validation splits.")
        self.val_inputs = torch.from_numpy(window_features(recipe, recording.step_ms)(recording.spikes, split.val))
        n_outputs = recording.velocity.shape[1]
        self.labels = (LabelScale.fit(recording.velocity, split.train) if recipe.standardize_labels
                       else LabelScale.identity(n_outputs))
        labels = self.labels.apply(recording.velocity)
        self.val_labels = labels[split.val]
        self.train_batches = WindowBatches(recording.spikes, labels, split.train, recipe.sub_width(recording.step_ms),
                                           recipe.steps_per_example, recipe.transform)
        self.finetune_batches = self.train_batches.with_ends(np.concatenate([split.train, split.val]))
        if len(self.train_batches) == 0:
            raise ConfigError("no training window fits in the recording; shorten window_ms or n_sub.")

    def stage_sizes(self) -> dict:
        """Training examples per epoch of each stage."""
        return {"train": len(self.train_batches), "finetune": len(self.finetune_batches)}

    # -- state ---------------------------------------------------------------------------------
    def _fresh_state(self) -> dict:
        from motordecode.decoders.gru import FAMILY

        torch.manual_seed(self.seed)
        n_out = self.recording.velocity.shape[1]
        model = FAMILY.build(self.recipe, self.recording.n_channels, n_out, self.recording.step_ms)
        self._start_from_initial(model, self.recording.n_channels)
        branch = build_branch(self.recipe, self.recording.n_channels)
        model, branch = self.placed(model), self.placed(branch)
        state = {"stage": "train", "epoch": 0, "model": model, "branch": branch, "best_val": -np.inf,
                 "best": None, "history": [], "masks": None, "np_rng": np.random.default_rng(self.seed)}
        state["optimizer"], state["scheduler"] = self._optimizer(state)
        return state

    def _params(self, state):
        params = list(state["model"].parameters())
        if state["branch"] is not None:
            params += list(state["branch"].parameters())
        return params

    # -- loop ----------------------------------------------------------------------------------
    def _epoch(self, state) -> None:
        started = time.perf_counter()
        stage, model, branch = state["stage"], state["model"], state["branch"]
        batches = self.train_batches if stage == "train" else self.finetune_batches
        model.train()
        if branch is not None:
            branch.train()
        opt, rng = state["optimizer"], state["np_rng"]
        n_batches = -(-len(batches) // self.recipe.batch_size)
        bar = self._progress_bar(n_batches, f"{stage} {state['epoch'] + 1}/{self._epochs(stage)}")
        def loss_of(batch):
            x, counts, labels = batch
            if model.bn is not None and len(x) * x.shape[1] < 2:
                return None  # BatchNorm needs two values
            return self._loss(model, branch, x, counts, labels)[0]

        loss_sum, seen = optimise_epoch(batches.epoch(self.recipe.batch_size, rng, self.recipe.jitter_p), loss_of,
                                        opt, model, state["masks"], bar, self.device)
        if state["scheduler"] is not None:
            state["scheduler"].step()
        val = r2_score(predict_windows(model, self.val_inputs), self.val_labels)
        self._end_epoch(state, loss_sum, seen, val, bar, keep_best=stage == "train", snapshot=lambda: {
            "model": copy.deepcopy(model.state_dict()),
            "branch": None if branch is None else copy.deepcopy(branch.state_dict())},
            seconds=time.perf_counter() - started)

    def _loss(self, model, branch, x, counts, labels):
        mu = model.encode(x)
        if branch is None:
            pred, _ = model.recur(mu)
            return decoder_loss(pred, labels, mse_weight=self.recipe.mse_weight)
        z = branch.sample(x, mu)
        pred, _ = model.recur(z)
        return decoder_loss(pred, labels, branch.log_rate(z), counts, self.recipe.mse_weight, self.recipe.pnll_weight)

    def _restore_best(self, state) -> None:
        if state["best"] is not None:
            state["model"].load_state_dict(state["best"]["model"])
            if state["branch"] is not None and state["best"]["branch"] is not None:
                state["branch"].load_state_dict(state["best"]["branch"])

    def _finish(self, state) -> TrainResult:
        if self.recipe.prune_rate == 0:  # no pruning: the best epoch is the result
            self._restore_best(state)
        model = state["model"] = state["model"].cpu()
        model.eval()
        if self.for_pretraining:
            return TrainResult(model=model, val_r2=float(state["best_val"]), history=state["history"])
        if self.recipe.standardize_labels:
            model.set_output_scale(self.labels.scale, self.labels.shift)
        bits = {}
        if self.recipe.quant_bits:
            bits = quantize_weights(model.pruned_weights(), self.recipe.quant_bits, self.recipe.quant_frac_bits)
        return TrainResult(model=model, val_r2=float(state["best_val"]), history=state["history"], deployed_bits=bits)
