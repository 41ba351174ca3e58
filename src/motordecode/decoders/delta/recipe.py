"""The delta GRU family's recipe: one GRU step per sample on the newest sub-window, one state,
delta thresholds on input and state, trained on the stream.

``window_ms`` is the one sub-window summed per step (50 ms: 12 samples of 4 ms, or the 50 ms bin
itself); ``tbptt_ms`` the length of the truncated back-propagation chunks. The defaults were
chosen on the real recording in ../shared/data (seed 0; docs/models.md gives the search).
"""

from __future__ import annotations

from dataclasses import dataclass

from motordecode.recipes import RecipeFields, check, samples_in


@dataclass(frozen=True)
class DeltaRecipe(RecipeFields):
    name: str
    model: str = "deltagru"
    hidden: int = 32                # the input layer's width and the GRU's state
    # features
    window_ms: float = 50.0         # the sub-window summed at every step (12 samples of 4 ms, 1 bin of 50 ms)
    transform: str = "log_softplus"
    bin_ms: float = 4.0             # sample width when reading a session .mat
    # delta thresholds: on the transformed counts, on the GRU's input u and on its state h
    theta_x: float = 0.1
    theta_u: float = 0.1
    theta_h: float = 0.1
    anneal_epochs: int = 5          # thresholds rise linearly from 0 over these training epochs
    delta_penalty: float = 0.0      # weight of mean |Dx| + mean |Du| + mean |Dh| in the loss
    # training on the stream
    epochs: int = 150
    pretrain_epochs: int = 0        # > 0: pre-train on several sessions first (--pretrain FILE ...)
    batch_size: int = 8             # parallel streams cut from the training part
    tbptt_ms: float = 4000.0        # truncated back-propagation chunk
    lr: float = 2e-3
    weight_decay: float = 0.0
    clip_norm: float = 1.0
    jitter_p: float = 0.5           # AEGRU's Poisson jitter of the sub-window counts
    standardize_labels: bool = True
    # compression
    prune_rate: float = 0.0
    finetune_epochs: int = 30
    finetune_lr: float = 5e-4
    quant_bits: int = 0             # 8 with quant_frac_bits 7: Q1.7
    quant_frac_bits: int = 7

    n_sub = 1                       # one sub-window per step (the GRU features' k)

    def __post_init__(self):
        check(self.name, [
            (self.model == "deltagru", f"model must be 'deltagru', got {self.model!r}"),
            (self.hidden >= 1, "hidden must be >= 1"),
            (self.window_ms > 0 and self.bin_ms > 0 and self.tbptt_ms > 0, "window_ms, bin_ms and tbptt_ms must be > 0"),
            (self.transform in ("log_softplus", "none"), f"transform must be log_softplus or none, got {self.transform!r}"),
            (min(self.theta_x, self.theta_u, self.theta_h) >= 0, "theta_x, theta_u and theta_h must be >= 0"),
            (self.anneal_epochs >= 0 and self.delta_penalty >= 0, "anneal_epochs and delta_penalty must be >= 0"),
            (self.epochs >= 1 and self.batch_size >= 1 and self.pretrain_epochs >= 0,
             "epochs and batch_size must be >= 1, pretrain_epochs >= 0"),
            (self.lr > 0 and self.finetune_lr > 0 and self.weight_decay >= 0 and self.clip_norm > 0,
             "learning rates and clip_norm must be > 0, weight_decay >= 0"),
            (0.0 <= self.jitter_p <= 1.0, f"jitter_p must be in [0, 1], got {self.jitter_p}"),
            (0.0 <= self.prune_rate < 1.0, f"prune_rate must be in [0, 1), got {self.prune_rate}"),
            (self.finetune_epochs >= 0, "finetune_epochs must be >= 0"),
            (self.quant_bits == 0 or 0 <= self.quant_frac_bits < self.quant_bits <= 16,
             "quant_bits must be 0 (float) or 2..16 with 0 <= quant_frac_bits < quant_bits"),
        ])

    def sub_width(self, step_ms: float) -> int:
        """Samples in the sub-window on a recording with samples ``step_ms`` apart."""
        return samples_in(self.window_ms, step_ms)


RECIPES = {
    "deltagru": DeltaRecipe("deltagru", prune_rate=0.6, quant_bits=8, quant_frac_bits=7),
}
