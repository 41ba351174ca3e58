"""Training the NeuroBench baselines (NeuroBench publishes weights, not training code).

The setup is that of the public code the architectures come from: AdamW (lr 5e-3, weight decay
0.01), cosine schedule (T_max 64 epochs), MSE on the velocity, 50 epochs, the epoch with the best
validation R2 kept. ANN2D, ANN3D and SNN3D train on single samples (batches of 512) with the
buffer features cut from running sums of the session (:func:`history_table`; samples whose
buffer is not yet full are left out); SNN2 trains on 2 s sequences (batches of 32, BPTT), each
from a reset state, on labels divided by their training std (folded into fc_out at the end).
Validation runs the validation split as one stream, like the test. A checkpoint is written after
every epoch, so ``--resume`` continues exactly.

On a GPU (``device``) the network and each batch live there (the batches are cut on the CPU); the
validation stream runs on a CPU copy of the network (the streaming face and its input buffers are
the CPU's), and the finished network comes back on the CPU.
"""

from __future__ import annotations

import copy
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from motordecode.decoders.neurobench.history import history_table
from motordecode.errors import ConfigError
from motordecode.training.epochs import EpochTrainer, TrainResult, optimise_epoch
from motordecode.training.labels import LabelScale
from motordecode.training.sequences import SequenceWindows
from motordecode.training.stream_validation import stream_r2


class BaselineTrainer(EpochTrainer):
    def __init__(self, recipe, recording, split, *, seed: int = 0, run_dir: str | os.PathLike | None = None,
                 progress: bool = False, threads: int | None = None, initial: dict | None = None, device="auto"):
        super().__init__(recipe, seed, run_dir, progress, threads or torch.get_num_threads(), initial, device)
        self.recording, self.split = recording, split
        n_outputs = recording.velocity.shape[1]
        # SNN2 trains on scaled labels (its readout has no bias: no shift); the others on velocity
        self.labels = (LabelScale.fit(recording.velocity, split.train, center=False) if recipe.model == "snn2"
                       else LabelScale.identity(n_outputs))
        self.scaled = self.labels.apply(recording.velocity)
        self.epoch_batches, self.loss_of = self._sequences() if recipe.model == "snn2" else self._samples()

    # -- state ---------------------------------------------------------------------------------
    def _fresh_state(self) -> dict:
        from motordecode.decoders.neurobench import FAMILY

        rec = self.recording
        torch.manual_seed(self.seed)
        model = FAMILY.build(self.recipe, rec.n_channels, rec.velocity.shape[1], rec.step_ms)
        self._start_from_initial(model, rec.n_channels)
        model = self.placed(model)
        state = {"stage": "train", "epoch": 0, "model": model, "best_val": -np.inf, "best": None, "history": [],
                 "np_rng": np.random.default_rng(self.seed)}
        state["optimizer"], state["scheduler"] = self._optimizer(state)
        return state

    def _optimizer(self, state):
        r = self.recipe
        optimizer = torch.optim.AdamW(state["model"].parameters(), lr=r.lr, weight_decay=r.weight_decay)
        return optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=r.cosine_epochs)

    def _epochs(self, stage: str) -> int:
        return self.recipe.epochs

    def _next_stage(self, state) -> None:
        state["stage"] = "done"

    # -- loop ----------------------------------------------------------------------------------
    def _epoch(self, state) -> None:
        model, rng = state["model"], state["np_rng"]
        started = time.perf_counter()
        from motordecode.decoders.neurobench import FAMILY

        model.train()
        bar = self._progress_bar(self.n_batches, f"train {state['epoch'] + 1}/{self.recipe.epochs}")
        total, seen = optimise_epoch(self.epoch_batches(rng), lambda batch: self.loss_of(model, batch),
                                     state["optimizer"], model, None, bar, self.device)
        state["scheduler"].step()
        decoder = FAMILY.decoder(self._on_cpu(model), self.recipe, self.recording.step_ms)
        val = stream_r2(decoder, self.recording.spikes, self.scaled, self.split.val)
        self._end_epoch(state, total, seen, val, bar, keep_best=True,
                        snapshot=lambda: copy.deepcopy(model.state_dict()), seconds=time.perf_counter() - started)

    def _on_cpu(self, model):
        """The network itself on the CPU; else its weights in a CPU twin (built once, without drawing
        from torch's generator)."""
        if self.on_cpu:
            return model
        if getattr(self, "_twin", None) is None:
            from motordecode.decoders.neurobench import FAMILY

            rec = self.recording
            with torch.random.fork_rng(devices=[]):
                self._twin = FAMILY.build(self.recipe, rec.n_channels, rec.velocity.shape[1], rec.step_ms)
        self._twin.load_state_dict(model.state_dict())
        return self._twin

    def _finish(self, state) -> TrainResult:
        if state["best"] is None:
            raise ConfigError(f"{self.recipe.name}: the validation R2 was not finite in any epoch (training "
                              "diverged); try a lower lr.")
        model = state["model"] = state["model"].cpu()
        model.load_state_dict(state["best"])
        if self.recipe.model == "snn2" and not self.for_pretraining:
            model.set_output_scale(self.labels.scale)
        model.eval()
        model.reset()
        return TrainResult(model=model, val_r2=float(state["best_val"]), history=state["history"], deployed_bits={})

    def _samples(self):
        """(batches (x, y) of an epoch drawn with ``rng``, loss of a batch for ``model``): buffer
        features of the training samples with a full buffer, cut from running sums."""
        r, rec = self.recipe, self.recording
        window = r.window_samples(rec.step_ms)
        kind = "summed" if r.model == "ann2d" else "binned"
        table, end_offset = history_table(rec.spikes, window, r.bins, kind)
        rows = self.split.train[self.split.train >= window - 1]
        labels = torch.as_tensor(np.asarray(rec.velocity, dtype=np.float32))
        self.n_batches = -(-len(rows) // r.batch_size)

        def epoch(rng):
            order = rows[rng.permutation(len(rows))]
            for start in range(0, len(order), r.batch_size):
                ends = order[start:start + r.batch_size]
                if len(ends) < 2:  # batch norm needs two samples
                    continue
                x = torch.as_tensor(table(ends - end_offset)).reshape(len(ends), -1, rec.n_channels)
                yield (x[:, 0] if kind == "summed" else x), labels[ends]
        return epoch, lambda model, batch: F.mse_loss(model.readout(model.arrange(batch[0])), batch[1])

    def _sequences(self):
        """(batches of training sequences (B, L, C) of an epoch, loss of a batch run time-major from
        a reset state)."""
        r, rec = self.recipe, self.recording
        length = r.sequence_samples(rec.step_ms)
        windows = SequenceWindows(rec.spikes, self.scaled, self.split.train, length, length)
        self.n_batches = -(-len(windows) // r.batch_size)

        def loss_of(model, batch):
            model.reset()
            return F.mse_loss(model(batch[0].transpose(0, 1)), batch[1].transpose(0, 1))
        return lambda rng: windows.batches(r.batch_size, rng), loss_of
