"""Training the delta GRU on the stream, with a checkpoint after every epoch.

The training part is cut into ``batch_size`` parallel streams of equal length (each epoch from a
random offset, so chunk borders move). Each stream starts from the zero state and runs in chunks
of ``tbptt_ms``: the loss of a chunk is back-propagated through it (truncated BPTT), then the
state (h, x^, h^, M) is carried, detached, into the next chunk, so training sees one state and
one step per sample, as the decoder does when it streams. A chunk's forward pass, loss and BPTT
run as fused loops on the CPU (:mod:`~motordecode.decoders.delta.delta_kernels`; the PyTorch loop
elsewhere), and so does the validation stream.

Augmentation (AEGRU's): each sub-window count n is replaced, with probability ``jitter_p``, by a
draw from Poisson(n) before the transform. Loss: MSE on standardised labels + ``delta_penalty`` (mean |Dx| + mean |Du| + mean |Dh|). The thresholds are
in the loop: they rise linearly from 0 to (Theta_x, Theta_u, Theta_h) over ``anneal_epochs``, and only
epochs at the full thresholds can be the best one (validation R2, the validation part streamed
from a zero state). Stages: ``train`` (Adam, cosine schedule), then with a pruning rate
``finetune`` (global L1 pruning of the best model; constant small rate on train + validation, the
masks held), then quantisation. On a GPU (``device``) the network and each chunk's inputs and labels
live there (the chunks are cut and jittered on the CPU); the finished network comes back on the CPU.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import torch

from motordecode.data.splits import contiguous_runs
from motordecode.data.features import WindowFeatures
from motordecode.decoders.delta.delta_kernels import chunk_loss, predict
from motordecode.decoders.gru.batches import poisson_jitter
from motordecode.decoders.gru.inference import window_features
from motordecode.errors import ConfigError
from motordecode.metrics.r2 import r2_score
from motordecode.recipes import samples_in
from motordecode.training.epochs import EpochTrainer, TrainResult
from motordecode.training.labels import LabelScale
from motordecode.training.finetune import TrainThenFinetune
from motordecode.training.prune import apply_masks
from motordecode.training.quantize import quantize_weights


class DeltaTrainer(TrainThenFinetune, EpochTrainer):
    def __init__(self, recipe, recording, split, *, seed: int = 0, run_dir: str | os.PathLike | None = None,
                 progress: bool = True, threads: int | None = None, initial: dict | None = None, device="auto"):
        super().__init__(recipe, seed, run_dir, progress, threads, initial, device)
        self.recording = recording
        if len(split.train) == 0 or len(split.val) == 0:
            raise ConfigError("training needs non-empty train and validation splits.")
        features = window_features(recipe, recording.step_ms, n_sub=1)
        self.counts = WindowFeatures(1, features.sub_width)(recording.spikes)[:, 0]    # (T, C) sub-window sums
        self.transform = features.transform or (lambda counts: counts)
        self.inputs = torch.from_numpy(np.asarray(self.transform(self.counts), dtype=np.float32))
        self.scale = (LabelScale.fit(recording.velocity, split.train) if recipe.standardize_labels
                      else LabelScale.identity(recording.velocity.shape[1]))
        self.labels = torch.from_numpy(self.scale.apply(recording.velocity))
        self.chunk = samples_in(recipe.tbptt_ms, recording.step_ms)
        self.train_runs = contiguous_runs(split.train)
        self.finetune_runs = contiguous_runs(np.concatenate([split.train, split.val]))
        self.val_runs = contiguous_runs(split.val)
        if sum(b - a for a, b in self.train_runs) < recipe.batch_size:
            raise ConfigError(f"{recording.name}: the train part is shorter than {recipe.batch_size} streams of one sample.")

    def stage_sizes(self) -> dict:
        """Training samples per epoch of each stage."""
        return {"train": sum(b - a for a, b in self.train_runs), "finetune": sum(b - a for a, b in self.finetune_runs)}

    # -- state ---------------------------------------------------------------------------------
    def _fresh_state(self) -> dict:
        from motordecode.decoders.delta import FAMILY

        torch.manual_seed(self.seed)
        model = FAMILY.build(self.recipe, self.recording.n_channels, self.recording.velocity.shape[1],
                             self.recording.step_ms)
        self._start_from_initial(model, self.recording.n_channels)
        model = self.placed(model)
        state = {"stage": "train", "epoch": 0, "model": model, "best_val": -np.inf, "best": None, "history": [],
                 "masks": None, "np_rng": np.random.default_rng(self.seed)}
        state["optimizer"], state["scheduler"] = self._optimizer(state)
        return state

    def _threshold_share(self, state) -> float:
        """The fraction of the target thresholds this epoch trains with."""
        if state["stage"] != "train" or self.recipe.anneal_epochs == 0:
            return 1.0
        return min(1.0, (state["epoch"] + 1) / self.recipe.anneal_epochs)

    # -- loop ----------------------------------------------------------------------------------
    def _streams(self, runs, rng) -> tuple[np.ndarray, int]:
        """(start indices (B,), common length) of the epoch's parallel streams: ``batch_size``
        pieces of equal length cut from the contiguous runs, all shifted by one random offset (so
        chunk borders move between epochs) where the run is long enough."""
        total = sum(b - a for a, b in runs)
        length = max(1, total // self.recipe.batch_size)
        offset = int(rng.integers(0, min(self.chunk, length)))
        starts: list[int] = []
        for a, b in runs:
            shift = offset if b - a - offset >= length else 0
            starts += range(a + shift, b - length + 1, length)
        if not starts:
            raise ConfigError(f"{self.recording.name}: no stream of {length} samples fits in the training part.")
        return np.asarray(starts[:self.recipe.batch_size], dtype=np.int64), length

    def _epoch(self, state) -> None:
        import time

        stage, model, opt, r = state["stage"], state["model"], state["optimizer"], self.recipe
        share = self._threshold_share(state)
        model.set_thresholds(share * r.theta_x, share * r.theta_u, share * r.theta_h)
        model.train()
        starts, length = self._streams(self.train_runs if stage == "train" else self.finetune_runs, state["np_rng"])
        n_chunks = -(-length // self.chunk)
        bar = self._progress_bar(n_chunks, f"{stage} {state['epoch'] + 1}/{self._epochs(stage)}")
        started, carried, loss_sum, seen = time.perf_counter(), None, 0.0, 0
        for begin in range(0, length, self.chunk):
            index = torch.from_numpy(starts[:, None] + np.arange(begin, min(begin + self.chunk, length))[None])
            counts = poisson_jitter(self.counts[index.numpy()], r.jitter_p, state["np_rng"])
            x = self.placed(torch.from_numpy(np.asarray(self.transform(counts), dtype=np.float32)))
            _, loss, carried = chunk_loss(model, x, self.placed(self.labels[index]), carried, r.delta_penalty)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), r.clip_norm)
            opt.step()
            if state["masks"] is not None:
                apply_masks(model.pruned_weights(), state["masks"])
            carried = carried._replace(x_ref=carried.x_ref.detach(),
                                       cell=type(carried.cell)(*(t.detach() for t in carried.cell)))
            loss_sum += float(loss.detach()) * index.numel()
            seen += index.numel()
            if bar is not None:
                bar.update(1)
        if state["scheduler"] is not None:
            state["scheduler"].step()
        val = self.validation_r2(model)
        full = share >= 1.0
        self._end_epoch(state, loss_sum, seen, val, bar, keep_best=stage == "train" and full,
                        snapshot=lambda: copy.deepcopy(model.state_dict()), seconds=time.perf_counter() - started,
                        threshold_share=share)

    def validation_r2(self, model) -> float:
        """R2 of the validation part streamed from a zero state (each contiguous run), eval mode, on the
        model's device."""
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        preds, labels = [], []
        with torch.no_grad():
            for a, b in self.val_runs:
                preds.append(predict(model, self.inputs[a:b][None].to(device))[0].cpu())
                labels.append(self.labels[a:b])
        model.train(was_training)
        return float(r2_score(torch.cat(preds).numpy(), torch.cat(labels).numpy()))

    @staticmethod
    def _restore_best(state) -> None:
        if state["best"] is not None:
            state["model"].load_state_dict(state["best"])

    def _finish(self, state) -> TrainResult:
        r = self.recipe
        if r.prune_rate == 0:  # no pruning: the best epoch is the result
            self._restore_best(state)
        model = state["model"] = state["model"].cpu()
        model.set_thresholds(r.theta_x, r.theta_u, r.theta_h)
        model.eval()
        if self.for_pretraining:
            return TrainResult(model=model, val_r2=float(state["best_val"]), history=state["history"])
        if r.standardize_labels:
            model.set_output_scale(self.scale.scale, self.scale.shift)
        bits = quantize_weights(model.pruned_weights(), r.quant_bits, r.quant_frac_bits) if r.quant_bits else {}
        return TrainResult(model=model, val_r2=float(state["best_val"]), history=state["history"], deployed_bits=bits)
