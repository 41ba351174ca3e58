"""The stages the GRU families share (AEGRU, the vanilla GRU, the delta GRU).

``train``: Adam with weight decay, a cosine schedule over ``epochs``, the best epoch by validation
R2 kept. Then, with a pruning rate, ``finetune``: global L1 pruning of the best model to
``prune_rate``, then ``finetune_epochs`` at the constant ``finetune_lr`` with the masks re-applied
after every step (:func:`~motordecode.training.epochs.optimise_epoch`). A trainer mixes this into
its :class:`~motordecode.training.epochs.EpochTrainer` and provides ``_restore_best(state)``.
"""

from __future__ import annotations

import torch

from motordecode.training.prune import apply_masks, global_l1_masks


class TrainThenFinetune:
    def _params(self, state) -> list:
        return list(state["model"].parameters())

    def _epochs(self, stage: str) -> int:
        return self.recipe.epochs if stage == "train" else self.recipe.finetune_epochs

    def _optimizer(self, state):
        """Adam; a cosine schedule over the training epochs, a constant small rate when fine-tuning."""
        train = state["stage"] == "train"
        lr = self.recipe.lr if train else self.recipe.finetune_lr
        opt = torch.optim.Adam(self._params(state), lr=lr, weight_decay=self.recipe.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.recipe.epochs) if train else None
        return opt, sched

    def _next_stage(self, state) -> None:
        """After ``train``: prune the best model and go on to ``finetune`` when asked; else done."""
        if state["stage"] != "train" or self.recipe.prune_rate == 0:
            state["stage"] = "done"
            return
        self._restore_best(state)
        state["masks"] = global_l1_masks(state["model"].pruned_weights(), self.recipe.prune_rate)
        apply_masks(state["model"].pruned_weights(), state["masks"])
        state["stage"], state["epoch"] = "finetune", 0
        state["optimizer"], state["scheduler"] = self._optimizer(state)
