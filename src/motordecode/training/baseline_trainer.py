"""Training the NeuroBench baselines (NeuroBench publishes weights, not training code).

The setup is that of the public code the architectures come from: AdamW (lr 5e-3, weight decay
0.01), cosine schedule (T_max 64 epochs), MSE on the velocity, 50 epochs, the epoch with the best
validation R2 kept. ANN2D, ANN3D and SNN3D train on single samples (batches of 512) with the
buffer features cut from running sums of the session (:func:`history_table`; samples whose
buffer is not yet full are left out); SNN2 trains on 2 s sequences (batches of 32, BPTT), each
from a reset state. Validation runs the validation split as one stream, like the test.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

from motordecode.errors import ConfigError
from motordecode.models.build import build_model
from motordecode.models.nb_history import history_table
from motordecode.training.sequences import SequenceWindows
from motordecode.training.stream_validation import stream_r2
from motordecode.training.trainer import TrainResult, optimise_epoch


class BaselineTrainer:
    def __init__(self, recipe, recording, split, seed: int = 0, threads: int | None = None):
        self.recipe, self.recording, self.split, self.seed = recipe, recording, split, int(seed)
        self.threads = threads

    def fit(self, resume: bool = False) -> TrainResult:
        """Train (minutes on a CPU; there is no per-epoch checkpoint, so ``resume`` starts over)."""
        threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        try:
            return self._fit()
        finally:
            torch.set_num_threads(threads)

    def _fit(self) -> TrainResult:
        r, rec = self.recipe, self.recording
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        model = build_model(r, rec.n_channels, rec.velocity.shape[1], rec.step_s)
        optimizer = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=r.weight_decay)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=r.cosine_epochs)
        self.label_scale = np.ones(rec.velocity.shape[1])  # SNN2 trains on scaled labels (see _sequences)
        epoch_batches, loss_of = self._sequences(model, rng) if r.model == "snn2" else self._samples(model, rng)
        best, best_state, history = -np.inf, None, []
        for epoch in range(1, r.epochs + 1):
            started = time.perf_counter()
            model.train()
            total, seen = optimise_epoch(epoch_batches(), loss_of, optimizer, model, None, None)
            schedule.step()
            val = stream_r2(model, rec.spikes, rec.velocity / self.label_scale, self.split.val)
            history.append({"stage": "train", "epoch": epoch, "loss": total / max(seen, 1), "val_r2": val,
                            "seconds": time.perf_counter() - started})
            if val > best:
                best, best_state = val, copy.deepcopy(model.state_dict())
        if best_state is None:
            raise ConfigError(f"{r.name}: the validation R2 was not finite in any epoch (training diverged); "
                              "try a lower lr.")
        model.load_state_dict(best_state)
        if r.model == "snn2":
            with torch.no_grad():
                model.fc_out.weight.mul_(torch.as_tensor(self.label_scale, dtype=model.fc_out.weight.dtype)[:, None])
        model.eval()
        model.reset()
        return TrainResult(model=model, val_r2=float(best), history=history, deployed_bits={})

    def _samples(self, model, rng):
        """(epoch of batches (x, y), loss of a batch): buffer features of training samples with a
        full buffer."""
        r, rec = self.recipe, self.recording
        window = r.window_samples(rec.step_s)
        kind = "summed" if r.model == "ann2d" else "binned"
        table, end_offset = history_table(rec.spikes, window, r.bins, kind)
        rows = self.split.train[self.split.train >= window - 1]
        labels = torch.as_tensor(np.asarray(rec.velocity, dtype=np.float32))

        def epoch():
            order = rows[rng.permutation(len(rows))]
            for start in range(0, len(order), r.batch_size):
                ends = order[start:start + r.batch_size]
                if len(ends) < 2:  # batch norm needs two samples
                    continue
                x = torch.as_tensor(table(ends - end_offset)).reshape(len(ends), -1, rec.n_channels)
                yield (x[:, 0] if kind == "summed" else x), labels[ends]
        return epoch, lambda batch: F.mse_loss(model.readout(model.arrange(batch[0])), batch[1])

    def _sequences(self, model, rng):
        """(epoch of batches of training sequences (B, L, C), loss of a batch run time-major from a
        reset state). The labels
        are divided by their training std (the output is linear in fc_out, so the scale is folded
        into fc_out at the end: no extra parameter)."""
        r, rec = self.recipe, self.recording
        length = max(2, round(r.sequence_ms / (rec.step_s * 1000.0)))
        self.label_scale = np.asarray(rec.velocity[self.split.train], dtype=np.float64).std(0)
        labels = (rec.velocity / self.label_scale).astype(np.float32)
        windows = SequenceWindows(rec.spikes, labels, self.split.train, length, length)

        def loss_of(batch):
            model.reset()
            return F.mse_loss(model(batch[0].transpose(0, 1)), batch[1].transpose(0, 1))
        return lambda: windows.batches(r.batch_size, rng), loss_of
