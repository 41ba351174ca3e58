"""The GRU family's recipes: AEGRU (challenge winner), AEGRU pruned 50% + Q1.7, the vanilla GRU.

Window lengths are in milliseconds: a sub-window of ``window_ms / n_sub`` ms covers
``samples_in(sub_ms, step_ms)`` samples (20 samples of 4 ms for the published 400 ms in 5
sub-windows; 2 bins of 50 ms on a 50 ms recording).
"""

from __future__ import annotations

from dataclasses import dataclass

from motordecode.recipes import RecipeFields, check, samples_in


@dataclass(frozen=True)
class GRURecipe(RecipeFields):
    name: str
    # model
    model: str = "aegru"            # "aegru" (input FC + autoencoder branch) or "gru" (vanilla)
    hidden: int = 32
    logvar_hidden: int = 128
    batchnorm: bool = False
    layernorm: bool = False
    dropout: float = 0.0
    # features
    window_ms: float = 400.0        # N samples of 4 ms (N = 100)
    n_sub: int = 5                  # k sub-windows, the GRU steps of the windowed decoder
    train_steps: int = 0            # sub-windows per training example (0: n_sub)
    transform: str = "log_softplus"
    bin_ms: float = 4.0             # sample width when reading a session .mat
    # training
    epochs: int = 50
    pretrain_epochs: int = 0        # > 0: pre-train on several sessions first (--pretrain FILE ...)
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-3
    mse_weight: float = 10.0
    pnll_weight: float = 1.0
    jitter_p: float = 0.5
    standardize_labels: bool = True  # train on (v - mean) / std of the training labels (see models)
    # compression
    prune_rate: float = 0.0
    finetune_epochs: int = 10
    finetune_lr: float = 1e-4
    quant_bits: int = 0             # 0: float32 weights; 8 with quant_frac_bits 7: Q1.7
    quant_frac_bits: int = 7

    def __post_init__(self):
        checks = [
            (self.model in ("aegru", "gru"), f"model must be 'aegru' or 'gru', got {self.model!r}"),
            (self.hidden >= 1 and self.logvar_hidden >= 1, "hidden sizes must be >= 1"),
            (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}"),
            (self.window_ms > 0 and self.n_sub >= 1, "window_ms must be > 0 and n_sub >= 1"),
            (self.train_steps >= 0, "train_steps must be >= 0"),
            (self.transform in ("log_softplus", "none"), f"transform must be log_softplus or none, got {self.transform!r}"),
            (self.bin_ms > 0, "bin_ms must be > 0"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1"),
            (self.pretrain_epochs >= 0, "pretrain_epochs must be >= 0"),
            (self.lr > 0 and self.finetune_lr > 0 and self.weight_decay >= 0, "learning rates must be > 0 and weight_decay >= 0"),
            (0.0 <= self.jitter_p <= 1.0, f"jitter_p must be in [0, 1], got {self.jitter_p}"),
            (0.0 <= self.prune_rate < 1.0, f"prune_rate must be in [0, 1), got {self.prune_rate}"),
            (self.finetune_epochs >= 0, "finetune_epochs must be >= 0"),
            (self.quant_bits == 0 or 0 <= self.quant_frac_bits < self.quant_bits <= 16,
             "quant_bits must be 0 (float) or 2..16 with 0 <= quant_frac_bits < quant_bits"),
            (not (self.batchnorm and self.model == "gru"), "batchnorm follows the input FC, which the vanilla GRU lacks"),
        ]
        check(self.name, checks)

    @property
    def steps_per_example(self) -> int:
        return self.train_steps or self.n_sub

    def sub_width(self, step_ms: float) -> int:
        """Samples per sub-window on a recording with samples ``step_ms`` apart."""
        return samples_in(self.window_ms / self.n_sub, step_ms)


RECIPES = {
    "aegru": GRURecipe("aegru"),
    "aegru-pruned": GRURecipe("aegru-pruned", prune_rate=0.5, quant_bits=8, quant_frac_bits=7),
    "gru": GRURecipe("gru", model="gru", pnll_weight=0.0),
}
